"""Seams to the network: forwarding transactions to the ordering nodes, and fetching committed blocks.

Two protocols, :class:`TxForwarder` and :class:`BlockSource`. Nodes reach each other only through the pool:
``lightning.sync.PoolForwarder`` forwards over the TXS scope and ``lightning.sync.PoolBlockSource`` fetches over the
SYNC scope (``lightning/sync/``). In-process implementations for tests: ``lightning/testing/chain.py``.
"""

from __future__ import annotations

from typing import Protocol

from lightning.chain.errors import ChainError
from lightning.codec import CodecError, decode
from lightning.ids import NodeId
from lightning.state.block import Block, BlockMalformed, CommitProof

__all__ = [
    "BlockSource",
    "BlockSourceError",
    "ForwardError",
    "TxForwarder",
    "decode_block_record",
]


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


def decode_block_record(raw: bytes) -> tuple[Block, CommitProof]:
    """A stored/served ``{block, proof, receipts}`` record. Raises :class:`BlockSourceError`."""
    try:
        rec = decode(raw, max_bytes=256 * 1024 * 1024)
        if not isinstance(rec, dict) or "block" not in rec or "proof" not in rec:
            raise BlockSourceError("block record lacks block or proof")
        return Block.from_wire(rec["block"]), CommitProof.from_wire(rec["proof"])
    except (CodecError, BlockMalformed) as exc:
        raise BlockSourceError(f"malformed block record: {exc}") from None
