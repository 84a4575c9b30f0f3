"""Peer admission from the application state: each peer's :class:`~lightning.net.admission.Access` level.

=============  ======================================================================================================
level          who
=============  ======================================================================================================
``CONSENSUS``  members of the current epoch's committee
``FULL``       registered nodes staked at least ``min_stake`` (opted in or not, so a node syncs before it opts in);
               genesis nodes while they keep the stake the genesis lists them with (or ``min_stake`` if that is
               less); the ``[net] allow`` list (the operator's explicit choice)
``LIMITED``    any other authenticated node: transactions and sync reads, rate-limited by the pool
=============  ======================================================================================================

Levels are read from the last executed block, once per height, into one dictionary: the pool asks for a peer's level
on every incoming message, and that must not read storage. Until the state is loaded the genesis file answers (its
nodes full, its committee consensus). At each epoch change ``node.py`` calls ``PeerPool.recheck`` (an epoch hook),
which closes the connections of peers whose level dropped; between changes a drop (an unstake) applies to each new
stream or message at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lightning.chain.component import State
from lightning.genesis import Genesis
from lightning.ids import NodeId
from lightning.net.admission import Access
from lightning.net.wire import Scope

__all__ = ["AdmissionStatistics", "StateAdmission"]


@dataclass(frozen=True)
class AdmissionStatistics:
    height: int  # the block the levels were read at (-1: from the genesis file, the state not loaded yet)
    consensus: int
    full: int  # including consensus


class StateAdmission:
    """The node's peer admission (see the module docstring)."""

    def __init__(self, state: State, genesis: Genesis, allow: Iterable[str | bytes] = ()) -> None:
        self._state = state
        self._genesis_stakes = {NodeId.parse(n.node_key): genesis.stakes[n.node_id] for n in genesis.nodes}
        self._allow = frozenset(NodeId.parse(a) if isinstance(a, str) else NodeId(a) for a in allow)
        genesis_levels = dict.fromkeys(self._genesis_stakes, Access.FULL)
        genesis_levels |= dict.fromkeys((NodeId.parse(n.node_key) for n in genesis.committee), Access.CONSENSUS)
        self._levels = self._with_allow_list(genesis_levels)
        self._height = -1

    def access(self, peer: NodeId) -> Access:
        state = self._state
        if state.running and state.head().height != self._height:
            self._refresh()
        return self._levels.get(peer, Access.LIMITED)

    def admits(self, peer: NodeId) -> bool:
        """May ``peer`` hold a connection at all (any authenticated node may, with limited access)?"""
        return self.access(peer) > Access.NONE

    def allows(self, peer: NodeId, scope: Scope) -> bool:
        return self.access(peer).allows(scope)

    def statistics(self) -> AdmissionStatistics:
        if self._state.running:
            self.access(NodeId(bytes(32)))  # brings the levels to the head
        levels = self._levels.values()
        return AdmissionStatistics(
            height=self._height,
            consensus=sum(1 for a in levels if a is Access.CONSENSUS),
            full=sum(1 for a in levels if a >= Access.FULL),
        )

    def _refresh(self) -> None:
        height = self._state.head().height
        levels: dict[NodeId, Access] = {}
        with self._state.view() as view:
            min_stake = view.param("min_stake")
            for node_id, node in view.nodes():
                listed = self._genesis_stakes.get(node_id)
                floor = min_stake if listed is None else min(listed, min_stake)
                if node.stake >= floor:
                    levels[node_id] = Access.FULL
            committee = view.committee(view.epoch)
        if committee is not None:
            levels |= dict.fromkeys(committee.members, Access.CONSENSUS)
        self._levels = self._with_allow_list(levels)
        self._height = height

    def _with_allow_list(self, levels: dict[NodeId, Access]) -> dict[NodeId, Access]:
        for node_id in self._allow:
            levels[node_id] = max(levels.get(node_id, Access.NONE), Access.FULL)
        return levels
