"""Peer admission from the application state, for the connection pool (``lightning/net/admission.py``'s protocol).

Genesis nodes and nodes staked at least ``min_stake`` may hold connections and use every scope but consensus; the
consensus scope is for the current epoch's committee (ARCHITECTURE.md, "Identity and signatures"). Answers come from
the last executed block and are recomputed when the head moves, so a stake or committee change applies without
reconnecting. Not wired into the node yet: ``node.py`` passes the pool a ``StaticAdmission`` (genesis + allow-list).
"""

from __future__ import annotations

from typing import Any

from lightning.chain.component import State
from lightning.genesis import Genesis
from lightning.ids import NodeId

__all__ = ["StateAdmission"]


class StateAdmission:
    def __init__(self, state: State, genesis: Genesis) -> None:
        self._state = state
        self._genesis = frozenset(NodeId.parse(n.node_key) for n in genesis.nodes)
        self._height = -1
        self._members: frozenset[NodeId] = frozenset()
        self._committee: frozenset[NodeId] = frozenset()

    def _refresh(self) -> None:
        head = self._state.head()
        if head.height == self._height:
            return
        with self._state.view() as view:
            min_stake = view.param("min_stake")
            staked = frozenset(nid for nid, n in view.nodes() if n.stake >= min_stake)
            committee = view.committee(view.epoch)
        self._committee = frozenset(committee.members) if committee is not None else frozenset()
        self._members = staked | self._genesis | self._committee
        self._height = head.height

    def admits(self, peer: NodeId) -> bool:
        """May ``peer`` hold a connection to us at all?"""
        self._refresh()
        return peer in self._members

    def allows(self, peer: NodeId, scope: Any) -> bool:
        """May ``peer`` use ``scope`` (a ``lightning.net.wire.Scope``)?"""
        self._refresh()
        if getattr(scope, "name", None) == "CONSENSUS":
            return peer in self._committee
        return peer in self._members
