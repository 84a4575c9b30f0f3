"""Config of the state inside a node: its LMDB file, the mempool, the sequencer and the epoch driver (``[state]``).
Stdlib only: see :mod:`lightning.config_fields`."""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning.config_fields import doc, positive

__all__ = ["StateConfig"]


@dataclass(frozen=True)
class StateConfig:
    map_size_bytes: int = field(
        default=64 * 1024**3, metadata=doc("LMDB map size of the application state (sparse file)", positive)
    )
    block_time_s: float = field(
        default=0.25,
        metadata=doc("the single-node sequencer cuts a block at most this often while transactions wait", positive),
    )
    mempool_max_txs: int = field(default=10_000, metadata=doc("transactions the mempool holds at most", positive))
    mempool_max_per_sender: int = field(
        default=64, metadata=doc("pending transactions per sender at most (also the accepted nonce window)", positive)
    )
    mempool_max_per_peer: int = field(
        default=2_048,
        metadata=doc("pending transactions one forwarding peer brought at most (local clients: no limit)", positive),
    )
    mempool_max_bytes: int = field(
        default=32 * 1024 * 1024, metadata=doc("signed bytes of all pending transactions at most", positive)
    )
    mempool_tx_ttl_s: float = field(
        default=600.0, metadata=doc("a pending transaction not ordered within this is dropped", positive)
    )
    epoch_driver: bool = field(
        default=True,
        metadata=doc("as a committee member, send ChangeEpoch and beacon transactions automatically"),
    )
