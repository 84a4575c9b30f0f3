"""Errors of the IPFS content layer.

Three families, so a caller can map them without reading messages (docs/ipfs.md has the HTTP table):

    IpfsError
    ├── InvalidCid, InvalidPath         the request is wrong (HTTP 400)
    ├── PathNotFound                    the path names no entry, or goes through a file (404)
    ├── NotAFile, NotADirectory         the entity is of the other kind (a listing or index.html; 404)
    ├── Unsupported                     well-formed content we don't handle: a hash function, a codec, a UnixFS
    │                                   type (HTTP 501 for the request's own CID, else 502)
    └── BadContent                      the origin or peer sent bytes that fail a check (HTTP 502; abort the fetch)
        ├── BlockMismatch               a block doesn't hash to its CID
        ├── CarError                    malformed CAR; CarTruncated, CarRootMismatch
        ├── DagPbError, UnixFsError     malformed dag-pb / UnixFS, or sizes that contradict each other
        ├── MissingBlock                a block the DAG needs never came
        └── LimitExceeded               a limit on something the sender controls (block size, depth, buffer)

``BadContent`` is also a ``RemoteProtocolError``: the bytes came from someone else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning.errors import LightningError, RemoteProtocolError

if TYPE_CHECKING:
    from lightning.ipfs.cid import Cid

__all__ = [
    "BadContent",
    "BlockMismatch",
    "CarError",
    "CarRootMismatch",
    "CarTruncated",
    "DagPbError",
    "InvalidCid",
    "InvalidPath",
    "IpfsError",
    "LimitExceeded",
    "MissingBlock",
    "NotADirectory",
    "NotAFile",
    "PathNotFound",
    "UnixFsError",
    "Unsupported",
]


class IpfsError(LightningError):
    """Root of every error of ``lightning.ipfs``."""


class InvalidCid(IpfsError):
    """A CID given to us is malformed, or uses a codec or hash function we refuse (the message says which)."""


class InvalidPath(IpfsError):
    """A content path is malformed (``..`` above the root, a NUL byte, too many segments)."""


class PathNotFound(IpfsError):
    """A path segment names no entry of its directory, or the path goes through a file."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class NotAFile(IpfsError):
    """The entity is a directory, HAMT shard or symlink, not a file. ``kind`` says which; ``cid`` is its CID."""

    def __init__(self, message: str, *, cid: Cid, kind: str) -> None:
        super().__init__(message)
        self.cid = cid
        self.kind = kind


class NotADirectory(IpfsError):
    """A directory listing was asked of a file (or of a symlink)."""

    def __init__(self, message: str, *, cid: Cid) -> None:
        super().__init__(message)
        self.cid = cid


class Unsupported(IpfsError):
    """Well-formed content this node doesn't handle (hash function, codec, UnixFS type)."""


class BadContent(IpfsError, RemoteProtocolError):
    """Bytes from an origin or peer failed a check; nothing derived from them may be served or stored."""


class BlockMismatch(BadContent):
    """A block's bytes don't hash to the digest in its CID."""

    def __init__(self, cid: Cid, detail: str = "") -> None:
        super().__init__(f"block {cid} does not match its CID" + (f" ({detail})" if detail else ""))
        self.cid = cid


class CarError(BadContent):
    """A CAR stream is malformed."""


class CarTruncated(CarError):
    """A CAR stream ended inside its header or a section."""


class CarRootMismatch(CarError):
    """A CAR's header lists roots, and the requested CID isn't one of them."""


class DagPbError(BadContent):
    """A dag-pb block isn't valid protobuf of the PBNode schema."""


class UnixFsError(BadContent):
    """UnixFS data is malformed, or its sizes contradict each other or the parent's."""


class MissingBlock(BadContent):
    """A block the DAG needs was not delivered."""

    def __init__(self, cid: Cid, detail: str = "") -> None:
        super().__init__(f"block {cid} is missing" + (f": {detail}" if detail else ""))
        self.cid = cid


class LimitExceeded(BadContent):
    """The sender exceeded one of our limits (block size, header size, DAG depth, reorder buffer)."""
