"""Which nodes the network has: who may originate broadcast messages and whom the topology connects.

A leaf module (no trio, no sockets) so that sans-IO cores can name the view they are given. :class:`GenesisNodes` is
the fixed set from the genesis and ``[net] allow``; a running node passes ``lightning.chain.RegistryNodes``, which adds
every registered node staked at least ``min_stake``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from lightning.genesis import Genesis
from lightning.ids import NodeId

__all__ = ["GenesisNodes", "KnownNodes"]


class KnownNodes(Protocol):
    """The nodes of the network, as public keys."""

    def nodes(self) -> frozenset[NodeId]: ...

    def __contains__(self, node: object) -> bool: ...


class GenesisNodes:
    """The genesis nodes plus an allow-list (``[net] allow``): a network whose node set never changes (tests,
    simulations, tools)."""

    def __init__(self, nodes: Iterable[NodeId]) -> None:
        self._nodes = frozenset(nodes)

    @classmethod
    def from_genesis(cls, genesis: Genesis, allow: Iterable[str] = ()) -> GenesisNodes:
        keys = [NodeId.parse(n.node_key) for n in genesis.nodes]
        return cls([*keys, *(NodeId.parse(a) for a in allow)])

    def nodes(self) -> frozenset[NodeId]:
        return self._nodes

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)
