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

Levels are read from the last executed block into one dictionary: the pool asks for a peer's level on every incoming
message, and that must not read storage. They are re-read at the first question after a block that may have changed
them — an epoch change, or a transaction that succeeded with a method outside :data:`LEVEL_NEUTRAL_METHODS` (stakes,
slashing, parameters, any method added later) — and kept over blocks of transfers and the like (a re-read costs about
16 ms per 1000 registered nodes). Until the state is loaded the genesis file answers (its
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
from lightning.state.store import BlockOutcome

__all__ = ["LEVEL_NEUTRAL_METHODS", "AdmissionStatistics", "StateAdmission"]

LEVEL_NEUTRAL_METHODS = frozenset(
    {
        "transfer",
        "mint",
        "update_content_registry",
        "opt_in",  # participation: the committee changes only at the epoch change
        "opt_out",
        "beacon_commit",
        "beacon_reveal",
        "change_epoch",  # the epoch change itself is seen in the head
        "submit_reputation_measurements",
    }
)
"""Transaction methods that never change a registration, a stake or the committee."""


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
        self._height = -1  # the block the levels were read at
        self._epoch = -1
        self._checked = -1  # the last block this object has seen committed (or read at)
        self._dirty = True
        state.add_commit_listener(self._on_commit)

    def access(self, peer: NodeId) -> Access:
        state = self._state
        if state.running and state.head().height != self._height:
            self._catch_up(state.head().height)
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

    def _on_commit(self, outcome: BlockOutcome) -> None:
        if outcome.block.height != self._checked + 1 or outcome.head.epoch != self._epoch:
            self._dirty = True
        elif any(r.status == "ok" and r.method not in LEVEL_NEUTRAL_METHODS for r in outcome.receipts):
            self._dirty = True
        self._checked = outcome.block.height

    def _catch_up(self, height: int) -> None:
        if self._dirty or self._checked != height:  # a change, or blocks this object did not see
            self._refresh()
        self._height = height

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
            epoch = view.epoch
            committee = view.committee(epoch)
        if committee is not None:
            levels |= dict.fromkeys(committee.members, Access.CONSENSUS)
        self._levels = self._with_allow_list(levels)
        self._height = self._checked = height
        self._epoch = epoch
        self._dirty = False

    def _with_allow_list(self, levels: dict[NodeId, Access]) -> dict[NodeId, Access]:
        for node_id in self._allow:
            levels[node_id] = max(levels.get(node_id, Access.NONE), Access.FULL)
        return levels
