"""Seams to the network: forwarding transactions to the ordering nodes, and fetching committed blocks.

Two protocols, :class:`TxForwarder` and :class:`BlockSource`, and their JSON-RPC implementations, which reach a node's
RPC endpoint as the registry publishes it (host and ``ports.rpc``; genesis nodes publish ``rpc_port`` from the
genesis). ``node.py`` forwards every transaction with :class:`RpcForwarder`; with a one-member committee edge nodes
follow with :class:`RpcBlockSource`, with several they follow over the pool's sync scope
(``lightning.sync.PoolBlockSource``). In-process implementations for tests: ``lightning/testing/chain.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from lightning.chain.errors import ChainError
from lightning.codec import CodecError, decode
from lightning.ids import NodeId
from lightning.rpc.client import RpcClientError, rpc_batch, rpc_request
from lightning.state.block import Block, BlockMalformed, CommitProof

__all__ = [
    "BlockSource",
    "BlockSourceError",
    "ForwardError",
    "RpcBlockSource",
    "RpcForwarder",
    "TxForwarder",
    "decode_block_record",
]

logger = logging.getLogger(__name__)


class ForwardError(ChainError):
    """A transaction could not be handed to the ordering node."""


class BlockSourceError(ChainError):
    """Committed blocks could not be fetched, or the peer sent malformed ones."""


class TxForwarder(Protocol):
    async def forward(self, node_id: NodeId, raw_txs: list[bytes]) -> None:
        """Hand ``raw_txs`` to node ``node_id`` for ordering (it does not forward them again). Raises
        :class:`ForwardError` if the node could not be reached; transactions it refuses are dropped."""
        ...


class BlockSource(Protocol):
    async def fetch_blocks(
        self, node_id: NodeId, start: int, max_blocks: int, wait_s: float
    ) -> list[tuple[Block, CommitProof]]:
        """Committed blocks from ``start`` on (at most ``max_blocks``), as node ``node_id`` has them; waits up to
        ``wait_s`` for block ``start`` to exist. Raises :class:`BlockSourceError`."""
        ...


Resolve = Callable[[NodeId], str | None]


class RpcForwarder:
    """Forwards with ``flk_send_txn`` on the ordering node's RPC endpoint."""

    def __init__(self, resolve: Resolve, *, timeout_s: float = 5.0) -> None:
        self._resolve = resolve
        self._timeout_s = timeout_s

    async def forward(self, node_id: NodeId, raw_txs: list[bytes]) -> None:
        url = self._resolve(node_id)
        if url is None:
            raise ForwardError(f"node {node_id.short()}… publishes no RPC endpoint to forward to")
        calls: list[tuple[str, list[Any]]] = [("flk_send_txn", [raw.hex(), True]) for raw in raw_txs]
        try:
            await rpc_batch(url, calls, timeout_s=self._timeout_s)
        except RpcClientError as exc:
            raise ForwardError(f"forwarding to {node_id.short()}… at {url}: {exc}") from None


def decode_block_record(raw: bytes) -> tuple[Block, CommitProof]:
    """A stored/served ``{block, proof, receipts}`` record. Raises :class:`BlockSourceError`."""
    try:
        rec = decode(raw, max_bytes=256 * 1024 * 1024)
        if not isinstance(rec, dict) or "block" not in rec or "proof" not in rec:
            raise BlockSourceError("block record lacks block or proof")
        return Block.from_wire(rec["block"]), CommitProof.from_wire(rec["proof"])
    except (CodecError, BlockMalformed) as exc:
        raise BlockSourceError(f"malformed block record: {exc}") from None


class RpcBlockSource:
    """Fetches with ``flk_get_blocks`` (a long poll) from the ordering node's RPC endpoint."""

    def __init__(self, resolve: Resolve, *, timeout_s: float = 10.0) -> None:
        self._resolve = resolve
        self._timeout_s = timeout_s

    async def fetch_blocks(
        self, node_id: NodeId, start: int, max_blocks: int, wait_s: float
    ) -> list[tuple[Block, CommitProof]]:
        url = self._resolve(node_id)
        if url is None:
            raise BlockSourceError(f"node {node_id.short()}… publishes no RPC endpoint to fetch blocks from")
        try:
            records = await rpc_request(
                url,
                "flk_get_blocks",
                [start, max_blocks, int(wait_s * 1000)],
                timeout_s=wait_s + self._timeout_s,
            )
        except RpcClientError as exc:
            raise BlockSourceError(f"fetching blocks from {node_id.short()}… at {url}: {exc}") from None
        if not isinstance(records, list) or len(records) > max_blocks:
            raise BlockSourceError(f"{url}: flk_get_blocks answered with something other than a list of blocks")
        out = []
        for text in records:
            try:
                raw = bytes.fromhex(text)
            except (TypeError, ValueError):
                raise BlockSourceError(f"{url}: a block record is not hex") from None
            out.append(decode_block_record(raw))
        return out
