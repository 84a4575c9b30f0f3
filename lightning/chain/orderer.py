"""The orderer protocol: what the node runs to turn mempool transactions into committed blocks.

Two implementations: the BFT consensus (``lightning.consensus.Consensus``) when the committee has several members,
and the single-node :class:`~lightning.chain.sequencer.Sequencer` for a one-member committee. An orderer takes
transactions from the mempool (:meth:`Mempool.ready`), proposes blocks on top of :meth:`State.head`, and hands each
committed block with its proof to :meth:`State.commit`, which executes it; it never executes or stores anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import trio

from lightning.ids import NodeId

__all__ = ["Orderer"]


class Orderer(Protocol):
    def ordering_nodes(self) -> Sequence[NodeId]:
        """Node ids that currently accept transactions for ordering (where other nodes forward them)."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None: ...
