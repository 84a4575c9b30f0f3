"""Committed blocks with their commit proofs, served and fetched over the pool's sync scope.

Request ``{"from": height, "max": count, "wait_ms": ms}``; reply: a list of stored block records (``{block, proof,
receipts}`` bytes, as in the state's ``blocks`` table) from ``from`` on, at most ``max`` (<= 64) and at most
``REPLY_BYTES_MAX`` in all (always at least one if the block exists). If block ``from`` does not exist yet the server
waits up to ``wait_ms`` (<= 10 s) for it: a long poll, so a follower learns of a block as soon as it is committed.
A fetched record is trusted only after its proof verifies against the committee the fetcher's own state records for
that epoch (``follow.py``; the consensus does the same for members that catch up).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import trio

from lightning.chain.component import State
from lightning.chain.forward import BlockSourceError, decode_block_record
from lightning.ids import NodeId
from lightning.net import BadRequest, NetError, NotHere, Pool, Scope
from lightning.state.block import Block, CommitProof

__all__ = ["MAX_BLOCKS", "PoolBlockSource", "SyncServer"]

logger = logging.getLogger(__name__)

MAX_BLOCKS = 64
MAX_WAIT_MS = 10_000
REPLY_BYTES_MAX = 3 * 1024 * 1024


class SyncServer:
    """Answers block requests on the sync scope from the local state."""

    def __init__(self, pool: Pool, state: State) -> None:
        self.pool = pool
        self.state = state
        pool.on_request(Scope.SYNC, self._handle)

    async def _handle(self, peer: NodeId, msg: Any) -> list[bytes]:
        if not isinstance(msg, dict) or set(msg) != {"from", "max", "wait_ms"}:
            raise BadRequest("expected {from, max, wait_ms}")
        start, count, wait_ms = msg["from"], msg["max"], msg["wait_ms"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, count, wait_ms)):
            raise BadRequest("from, max and wait_ms are integers")
        if start < 1 or not 1 <= count <= MAX_BLOCKS or not 0 <= wait_ms <= MAX_WAIT_MS:
            raise BadRequest(f"from >= 1, 1 <= max <= {MAX_BLOCKS}, 0 <= wait_ms <= {MAX_WAIT_MS}")
        if not self.state.running:  # the pool starts before the state: the requester asks another peer or retries
            raise NotHere("this node's state is not open yet")
        with trio.move_on_after(wait_ms / 1000):
            await self.state.wait_head_change(start - 1)
        out: list[bytes] = []
        size = 0
        for height in range(start, min(start + count, self.state.head().height + 1)):
            raw = self.state.store.block_record(height)
            if raw is None or (out and size + len(raw) > REPLY_BYTES_MAX):
                break
            out.append(raw)
            size += len(raw)
        return out


class PoolBlockSource:
    """A :class:`~lightning.chain.forward.BlockSource` over the sync scope: asks ``node_id`` first, then the other
    ``peers()`` in turn when it cannot be reached."""

    def __init__(self, pool: Pool, peers: Callable[[], Sequence[NodeId]], *, timeout_s: float = 10.0) -> None:
        self.pool = pool
        self._peers = peers
        self._timeout_s = timeout_s

    async def fetch_blocks(
        self, node_id: NodeId, start: int, max_blocks: int, wait_s: float
    ) -> list[tuple[Block, CommitProof]]:
        me = self.pool.node_id
        order = [node_id, *(p for p in self._peers() if p not in (node_id, me))]
        last: Exception | None = None
        for peer in order:
            try:
                return await self.fetch_from(peer, start, max_blocks, wait_s)
            except BlockSourceError as exc:
                last = exc
        raise BlockSourceError(f"no peer served blocks from {start}: {last}")

    async def fetch_from(
        self, peer: NodeId, start: int, max_blocks: int, wait_s: float
    ) -> list[tuple[Block, CommitProof]]:
        """Raises :class:`BlockSourceError` (unreachable peer, refusal, malformed records)."""
        msg = {"from": start, "max": min(max_blocks, MAX_BLOCKS), "wait_ms": int(min(wait_s * 1000, MAX_WAIT_MS))}
        try:
            reply = await self.pool.request(NodeId(peer), Scope.SYNC, msg, timeout_s=wait_s + self._timeout_s)
        except NetError as exc:
            raise BlockSourceError(f"sync from {peer.short()}…: {exc}") from None
        if not isinstance(reply, list) or len(reply) > MAX_BLOCKS or not all(isinstance(r, bytes) for r in reply):
            raise BlockSourceError(f"sync from {peer.short()}…: the reply is not a list of block records")
        out = [decode_block_record(raw) for raw in reply]
        for i, (block, _) in enumerate(out):
            if block.height != start + i:
                raise BlockSourceError(f"sync from {peer.short()}…: block {block.height} out of order")
        return out
