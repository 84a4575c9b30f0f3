"""Config of the blockstore (``[blockstore]``). Stdlib only: see :mod:`lightning.config_fields`."""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning.config_fields import doc, positive

__all__ = ["BlockstoreConfig"]


@dataclass(frozen=True)
class BlockstoreConfig:
    capacity_bytes: int = field(
        default=16 * 1024**3,
        metadata=doc("bytes of blocks to keep; least-recently-used unpinned objects are evicted beyond it", positive),
    )
    map_size_bytes: int = field(
        default=1024**4,
        metadata=doc("LMDB map size: the largest the store file can grow (sparse; set above capacity)", positive),
    )
