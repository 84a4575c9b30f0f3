"""What runs when the epoch changes, and the node set the registry gives the topology and the broadcast.

:class:`EpochHooks` is a small registry of named callbacks that :class:`~lightning.chain.component.State` fires on the
trio thread after it commits a block that changed the epoch (the ChangeEpoch quorum, docs/state.md), in the order they
were added, once per change, with an :class:`EpochChange`. Hooks run after the block is durable and must not block;
an exception from one propagates out of ``State.commit`` (a bug, not a peer's doing). Changes to the state itself at
the epoch change (committee selection, reputation scores, slashing non-revealers) belong to the executor's
transition (``lightning/state/epoch.py``), which every node runs deterministically; hooks are for local reactions:
the node re-reads the registry and recomputes the topology.

:class:`RegistryNodes` is the :class:`lightning.net.known.KnownNodes` of a running chain: the genesis nodes and the
``[net] allow`` list, plus every registered node staked at least ``min_stake``, read from the state once per epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lightning.genesis import Genesis
from lightning.ids import NodeId

if TYPE_CHECKING:
    from lightning.chain.component import State

__all__ = ["EpochChange", "EpochHook", "EpochHooks", "RegistryNodes"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochChange:
    previous: int
    epoch: int
    height: int  # the block that changed it
    committee: tuple[NodeId, ...]  # the new epoch's members, in committee order


EpochHook = Callable[[EpochChange], object]  # the result is ignored


class EpochHooks:
    def __init__(self) -> None:
        self._hooks: list[tuple[str, EpochHook]] = []

    def add(self, name: str, hook: EpochHook) -> None:
        """Run ``hook(change)`` at every epoch change from now on. Raises ValueError if ``name`` is taken."""
        if any(n == name for n, _ in self._hooks):
            raise ValueError(f"an epoch hook named {name!r} exists already")
        self._hooks.append((name, hook))

    def names(self) -> list[str]:
        return [n for n, _ in self._hooks]

    def fire(self, change: EpochChange) -> None:
        logger.info("epoch %d → %d at block %d", change.previous, change.epoch, change.height)
        for _, hook in self._hooks:
            hook(change)


class RegistryNodes:
    """Genesis nodes + allow-list + staked registered nodes, cached per epoch (``nodes()`` is read often)."""

    def __init__(self, state: State, genesis: Genesis, allow: Iterable[str] = ()) -> None:
        self._state = state
        self._base = frozenset([*(NodeId.parse(n.node_key) for n in genesis.nodes), *map(NodeId.parse, allow)])
        self._nodes = self._base
        self._epoch = -1

    def refresh(self) -> bool:
        """Re-read the registry now; True if the node set changed."""
        if not self._state.running:
            return False
        with self._state.view() as view:
            min_stake = view.param("min_stake")
            staked = [NodeId(nid) for nid, n in view.nodes() if n.stake >= min_stake]
            self._epoch = view.epoch
        nodes = self._base | frozenset(staked)
        changed = nodes != self._nodes
        self._nodes = nodes
        return changed

    def nodes(self) -> frozenset[NodeId]:
        if self._state.running and self._state.epoch() != self._epoch:
            self.refresh()
        return self._nodes

    def __contains__(self, node: object) -> bool:
        return node in self.nodes()

    def __len__(self) -> int:
        return len(self._nodes)
