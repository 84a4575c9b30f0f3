"""In-process chain seams for tests whose nodes have no pool (``tests/sim/test_state_sim.py``): forwarding into another
node's mempool, fetching from its state. Nodes with a pool, real or simulated, use ``lightning.sync.PoolForwarder`` and
``lightning.sync.PoolBlockSource``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from lightning.chain.component import State
from lightning.chain.forward import BlockSourceError, ForwardError, decode_block_record
from lightning.errors import LightningError
from lightning.ids import NodeId
from lightning.state.block import Block, CommitProof

__all__ = ["LocalBlockSource", "LocalForwarder"]

logger = logging.getLogger(__name__)


class LocalForwarder:
    """In-process forwarding between the pools of simulated nodes (``node id -> submit(raw)``)."""

    def __init__(self, submitters: dict[bytes, Callable[..., object]]) -> None:
        """``submitters[node_id](raw, forward=False)`` admits a transaction at that node (its pool's ``submit``)."""
        self._submitters = submitters

    async def forward(self, node_id: NodeId, raw_txs: list[bytes]) -> None:
        await trio.lowlevel.checkpoint()
        submit = self._submitters.get(node_id)
        if submit is None:
            raise ForwardError(f"no simulated node {node_id.short()}…")
        for raw in raw_txs:
            try:
                submit(raw, forward=False)
            except LightningError as exc:  # refused there (as over RPC, the others still go)
                logger.debug("node %s… refused a forwarded transaction: %s", node_id.short(), exc)


class LocalBlockSource:
    """In-process block fetching between simulated nodes (``node id -> State``)."""

    def __init__(self, states: dict[NodeId, State]) -> None:
        self._states = states

    async def fetch_blocks(
        self, node_id: NodeId, start: int, max_blocks: int, wait_s: float
    ) -> list[tuple[Block, CommitProof]]:
        source = self._states.get(node_id)
        if source is None or not source.running:
            raise BlockSourceError(f"no running simulated node {node_id.short()}…")
        with trio.move_on_after(wait_s):
            await source.wait_head_change(start - 1)
        out = []
        for height in range(start, min(start + max_blocks, source.head().height + 1)):
            raw = source.store.block_record(height)
            assert raw is not None
            out.append(decode_block_record(raw))
        await trio.lowlevel.checkpoint()
        return out
