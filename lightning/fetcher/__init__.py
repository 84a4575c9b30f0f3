"""Getting content that is not local: from peers that hold it, then from origins (IPFS gateways …)."""

from lightning.fetcher.fetcher import (
    Download,
    Fetcher,
    FetchError,
    NotFound,
    OriginFailed,
    OriginTimeout,
    Pointer,
    Sink,
    Source,
)
from lightning.fetcher.spool import Rewound, Spool, SpoolFailed

__all__ = [
    "Download",
    "FetchError",
    "Fetcher",
    "NotFound",
    "OriginFailed",
    "OriginTimeout",
    "Pointer",
    "Rewound",
    "Sink",
    "Source",
    "Spool",
    "SpoolFailed",
]
