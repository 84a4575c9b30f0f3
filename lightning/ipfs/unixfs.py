"""UnixFS traversal, sans-IO: read a file's bytes, resolve a path, list a directory.

Theory of operation
-------------------
Each task is a small state machine that never fetches anything itself. It says which block it needs next
(``wanted()``), and is fed that block, already verified (``feed(block)``, a :class:`~lightning.ipfs.cid.Block`);
drivers (``lightning.ipfs.fetch``) supply the blocks from a CAR stream, a gateway's raw-block endpoint, a cache.
Identity ("inline") CIDs are wanted like any other; drivers answer them with ``inline_block``.

:class:`FileReader` walks a file DAG depth-first, pre-order, left to right: the order in which the file's bytes
appear, and the order a trustless gateway streams ``dag-scope=entity`` CARs (``order=dfs``). It keeps a stack of
*pending* links ``(cid, offset, size, depth)``, nearest on top. Feeding the top block:

    raw block          its bytes are file bytes at ``offset``; their count must equal ``size``
    dag-pb File/Raw    its ``Data.Data`` bytes come first, at ``offset``; then one link per ``blocksizes`` entry,
                       pushed in reverse so the leftmost is on top, at offsets that follow

A node's declared size (``filesize`` = data + blocksizes) must equal what its parent declared for it, so the
size the root declares is checked top-down before a single byte is returned: a Content-Length sent after the
first block is never contradicted by later blocks, and the bytes returned never exceed it. The root's size is
``FileReader.size``. With a byte range, links wholly outside it are not pushed (their blocks are never wanted)
and data is trimmed to it. Memory: the stack holds at most ``depth * links_per_node`` entries.

:class:`PathResolver` walks from a root through directories, one path segment per block: a plain directory is
one block whose links are named entries (first match wins); a HAMT-sharded directory (``HAMTShard``) hashes the
segment with murmur3-x64-64, takes ``log2(fanout)`` bits per level (most significant first) as the bucket
index, and follows the link named by its uppercase hex prefix: exactly the prefix is a sub-shard (next level,
same segment), prefix + segment is the entry. :class:`DirectoryLister` lists entries (walking every shard).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from lightning.errors import LocalProtocolError
from lightning.ipfs._murmur3 import murmur3_x64_64
from lightning.ipfs.cid import DAG_PB, RAW, Block, Cid
from lightning.ipfs.dagpb import DataType, PbNode, UnixFsData, decode_pbnode, decode_unixfs
from lightning.ipfs.errors import (
    InvalidPath,
    LimitExceeded,
    NotADirectory,
    NotAFile,
    PathNotFound,
    UnixFsError,
    Unsupported,
)

__all__ = [
    "DEPTH_MAX",
    "DirEntry",
    "DirectoryLister",
    "FileReader",
    "PathResolver",
    "Resolved",
    "parse_path",
]

DEPTH_MAX: Final = 64
"""Deepest file DAG accepted (balanced DAGs of 174-wide nodes reach depth 4 at a few TiB; trickle DAGs go deeper)."""
PATH_SEGMENTS_MAX: Final = 256
SEGMENT_BYTES_MAX: Final = 1024
MURMUR3_X64_64: Final = 0x22
_KIND: Final = {
    DataType.DIRECTORY: "directory",
    DataType.HAMT_SHARD: "directory",
    DataType.SYMLINK: "symlink",
    DataType.METADATA: "metadata",
}


def parse_path(path: str) -> tuple[str, ...]:
    """Split a content path (already percent-decoded) into segments: empty and ``.`` segments dropped, ``..``
    applied. Raises InvalidPath for ``..`` above the root, a NUL, too many or too long segments."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not out:
                raise InvalidPath(f"path {path[:200]!r} goes above its root CID")
            out.pop()
            continue
        if "\x00" in segment:
            raise InvalidPath("path contains a NUL character")
        if len(segment.encode("utf-8", "surrogatepass")) > SEGMENT_BYTES_MAX:
            raise InvalidPath(f"path segment longer than {SEGMENT_BYTES_MAX} bytes")
        out.append(segment)
        if len(out) > PATH_SEGMENTS_MAX:
            raise InvalidPath(f"path has more than {PATH_SEGMENTS_MAX} segments")
    return tuple(out)


def _decode(block: Block) -> tuple[PbNode, UnixFsData]:
    node = decode_pbnode(block.data)
    return node, decode_unixfs(node.data)


def _check_codec(cid: Cid) -> None:
    if cid.codec not in (RAW, DAG_PB):
        raise Unsupported(f"block {cid} has codec {cid.codec_name}; UnixFS uses only raw and dag-pb")


def _expect(wanted: Cid | None, block: Block) -> Cid:
    if wanted is None or block.cid.multihash != wanted.multihash:
        raise LocalProtocolError(f"fed block {block.cid}, but the traversal wants {wanted}")
    return wanted


class _Pending(NamedTuple):  # a tuple: one is made per link, and frozen dataclasses are slow to build
    cid: Cid
    offset: int
    size: int | None  # None only for the root
    depth: int


class FileReader:
    """Stream the bytes of the UnixFS file ``cid`` (optionally ``[start, stop)`` of it) from blocks fed in DFS
    pre-order. See the module docstring."""

    def __init__(self, cid: Cid, *, start: int = 0, stop: int | None = None, depth_max: int = DEPTH_MAX) -> None:
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"bad byte range [{start}, {stop})")
        _check_codec(cid)
        self.cid = cid
        self.size: int | None = None
        """Total size of the file, known once the first block was fed."""
        self.start = start
        self.stop = stop
        self._depth_max = depth_max
        self._stack = [_Pending(cid, 0, None, 0)]

    @property
    def done(self) -> bool:
        return not self._stack

    def wanted(self) -> Cid | None:
        """The CID of the next block to feed, or None when the file (range) is complete."""
        return self._stack[-1].cid if self._stack else None

    def upcoming(self, n: int) -> list[Cid]:
        """Up to ``n`` CIDs already known to be needed next, in order (the first is ``wanted()``): for prefetching."""
        return [p.cid for p in reversed(self._stack[-n:])] if n > 0 else []

    def feed(self, block: Block) -> bytes:
        """Feed the block for ``wanted()``; return the file bytes it carries (maybe empty), in file order.

        Raises UnixFsError/DagPbError (bad or inconsistent content), NotAFile (the root is a directory or
        symlink), Unsupported, LimitExceeded (too deep).
        """
        stack = self._stack
        if not stack or block.cid.multihash != stack[-1].cid.multihash:
            _expect(self.wanted(), block)  # raises
        pending = stack.pop()
        is_root = pending.size is None
        if pending.cid.codec == RAW:
            data = block.data
            if is_root:
                self._set_size(len(data))
            elif len(data) != pending.size:
                raise UnixFsError(f"raw block {pending.cid} has {len(data)} bytes; its parent declared {pending.size}")
            return self._slice(data, pending.offset)
        node, fs = _decode(block)
        if fs.type not in (DataType.FILE, DataType.RAW):
            if is_root and fs.type in _KIND:
                raise NotAFile(f"{pending.cid} is a {_KIND[fs.type]}, not a file", cid=pending.cid, kind=_KIND[fs.type])
            raise UnixFsError(f"block {pending.cid} of a file is a UnixFS {fs.type.name}, not a file chunk")
        if len(fs.blocksizes) != len(node.links):
            raise UnixFsError(f"{pending.cid}: {len(node.links)} links but {len(fs.blocksizes)} blocksizes")
        content = fs.data or b""
        total = len(content) + sum(fs.blocksizes)
        declared = fs.filesize or 0
        if declared != total:
            raise UnixFsError(f"{pending.cid}: filesize {declared} but data + blocksizes = {total}")
        if is_root:
            self._set_size(total)
        elif total != pending.size:
            raise UnixFsError(f"{pending.cid} holds {total} bytes; its parent declared {pending.size}")
        if node.links and pending.depth >= self._depth_max:
            raise LimitExceeded(f"file DAG {self.cid} is deeper than {self._depth_max} levels")
        start, stop = self.start, self.stop
        assert stop is not None  # set with the root's size
        offset = pending.offset + total
        for link, size in zip(reversed(node.links), reversed(fs.blocksizes), strict=True):
            offset -= size
            if link.name:
                raise UnixFsError(f"{pending.cid}: a file chunk link has a name ({link.name[:40]!r})")
            _check_codec(link.cid)
            if start < stop and offset < stop and offset + size > start and size > 0:
                self._stack.append(_Pending(link.cid, offset, size, pending.depth + 1))
        return self._slice(content, pending.offset)

    def _set_size(self, size: int) -> None:
        self.size = size
        self.stop = size if self.stop is None else min(self.stop, size)
        self.start = min(self.start, self.stop)

    def _slice(self, data: bytes, offset: int) -> bytes:
        assert self.stop is not None
        if self.start <= offset and offset + len(data) <= self.stop:
            return data
        lo = max(self.start - offset, 0)
        hi = min(self.stop - offset, len(data))
        if lo == 0 and hi == len(data):
            return data
        return data[lo:hi] if lo < hi else b""


@dataclass(frozen=True, slots=True)
class Resolved:
    cid: Cid
    """The CID the path leads to (the root itself for an empty path)."""
    name: str | None
    """The last path segment (for a Content-Type guess), None for an empty path."""


class PathResolver:
    """Resolve ``segments`` from ``root`` through plain and HAMT-sharded directories (see the module docstring)."""

    def __init__(self, root: Cid, segments: Sequence[str]) -> None:
        _check_codec(root)
        self._segments = tuple(segments)
        self._index = 0
        self._cid = root
        self._hamt: tuple[int, int] | None = None  # (hash as int, bits consumed) inside a sharded directory

    def wanted(self) -> Cid | None:
        return self._cid if self._index < len(self._segments) else None

    @property
    def result(self) -> Resolved:
        assert self.wanted() is None, "the path isn't resolved yet"
        return Resolved(self._cid, self._segments[-1] if self._segments else None)

    def _here(self) -> str:
        return "/" + "/".join(self._segments[: self._index])

    def feed(self, block: Block) -> None:
        """Feed the block for ``wanted()``. Raises PathNotFound, UnixFsError, Unsupported (symlinks)."""
        cid = _expect(self.wanted(), block)
        segment = self._segments[self._index]
        path = "/" + "/".join(self._segments[: self._index + 1])
        if cid.codec == RAW:
            raise PathNotFound(f"{path}: {self._here()} is a file, it has no entries", path=path)
        node, fs = _decode(block)
        if self._hamt is not None and fs.type != DataType.HAMT_SHARD:
            raise UnixFsError(f"{cid}: a HAMT shard links to a UnixFS {fs.type.name} as a sub-shard")
        if fs.type == DataType.DIRECTORY:
            target = segment.encode("utf-8", "surrogateescape")
            for link in node.links:
                if link.name == target:
                    return self._step(link.cid)
            raise PathNotFound(f"{path}: no entry {segment!r} in {self._here()}", path=path)
        if fs.type == DataType.HAMT_SHARD:
            return self._hamt_step(node, fs, segment, path)
        if fs.type in (DataType.FILE, DataType.RAW):
            raise PathNotFound(f"{path}: {self._here()} is a file, it has no entries", path=path)
        raise Unsupported(f"{path}: {self._here()} is a UnixFS {fs.type.name}; following it isn't supported")

    def _step(self, cid: Cid) -> None:
        _check_codec(cid)
        self._cid = cid
        self._index += 1
        self._hamt = None

    def _hamt_step(self, node: PbNode, fs: UnixFsData, segment: str, path: str) -> None:
        if fs.hash_type != MURMUR3_X64_64:
            raise Unsupported(f"HAMT shard {self._cid} hashes names with 0x{fs.hash_type or 0:x}, not murmur3-x64-64")
        assert fs.fanout is not None  # decode_unixfs checks HAMT fanouts
        name = segment.encode("utf-8", "surrogateescape")
        bits = fs.fanout.bit_length() - 1
        digest, used = self._hamt or (int.from_bytes(murmur3_x64_64(name), "big"), 0)
        if used + bits > 64:
            raise UnixFsError(f"HAMT shard {self._cid} is deeper than its 64-bit hash allows")
        bucket = (digest >> (64 - used - bits)) & (fs.fanout - 1)
        prefix = f"{bucket:0{len(f'{fs.fanout - 1:X}')}X}".encode("ascii")
        for link in node.links:
            if link.name is None or not link.name.startswith(prefix):
                continue
            if link.name == prefix:
                _check_codec(link.cid)
                self._cid = link.cid
                self._hamt = (digest, used + bits)
                return
            if link.name[len(prefix) :] == name:
                return self._step(link.cid)
            break  # one link per bucket: the name isn't in this directory
        raise PathNotFound(f"{path}: no entry {segment!r} in {self._here()}", path=path)


@dataclass(frozen=True, slots=True)
class DirEntry:
    name: str
    cid: Cid
    tsize: int | None
    """Cumulative DAG size from the directory's link (a hint: it includes encoding overhead, it isn't checked)."""


class DirectoryLister:
    """List a directory's entries: one block for a plain directory, every shard block (DFS) for a HAMT."""

    def __init__(self, cid: Cid, *, entries_max: int = 1_000_000) -> None:
        _check_codec(cid)
        self.cid = cid
        self._stack = [cid]
        self._fed = False
        self._entries_max = entries_max
        self._count = 0

    def wanted(self) -> Cid | None:
        return self._stack[-1] if self._stack else None

    def feed(self, block: Block) -> list[DirEntry]:
        """Feed the block for ``wanted()``; return the entries it holds, in link order.

        Raises NotADirectory when the root isn't a directory, UnixFsError, LimitExceeded.
        """
        cid = _expect(self.wanted(), block)
        self._stack.pop()
        is_root, self._fed = not self._fed, True
        if cid.codec == RAW:
            raise NotADirectory(f"{cid} is a file, not a directory", cid=cid)
        node, fs = _decode(block)
        entries: list[DirEntry] = []
        if fs.type == DataType.DIRECTORY and is_root:
            entries = [DirEntry(_name(link.name), link.cid, link.tsize) for link in node.links]
        elif fs.type == DataType.HAMT_SHARD:
            assert fs.fanout is not None  # decode_unixfs checks HAMT fanouts
            width = len(f"{fs.fanout - 1:X}")
            shards = []
            for link in node.links:
                name = link.name or b""
                if len(name) < width:
                    raise UnixFsError(f"HAMT shard {cid} has a link without a bucket prefix")
                if len(name) == width:
                    if link.cid.codec != DAG_PB:
                        raise UnixFsError(f"HAMT shard {cid} has a sub-shard that isn't dag-pb")
                    shards.append(link.cid)
                else:
                    entries.append(DirEntry(_name(name[width:]), link.cid, link.tsize))
            self._stack.extend(reversed(shards))
        elif is_root:
            raise NotADirectory(f"{cid} is a UnixFS {fs.type.name}, not a directory", cid=cid)
        else:
            raise UnixFsError(f"{cid}: a HAMT shard links to a UnixFS {fs.type.name} as a sub-shard")
        self._count += len(entries) + 1
        if self._count > self._entries_max:
            raise LimitExceeded(f"directory {self.cid} has more than {self._entries_max} entries and shards")
        return entries


def _name(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "surrogateescape")
