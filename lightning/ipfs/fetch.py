"""Drivers for the UnixFS state machines: where blocks come from.

A *block getter* is any callable ``get_block(cid)`` returning the block's bytes (verified here) or a verified
:class:`Block`; async for the node (a gateway's ``?format=raw``, a peer, a cache), sync for tests and tools. Identity
CIDs never reach it. Composition for a trustless-gateway CAR response (``GET /ipfs/{root}/{path}?format=car&
dag-scope=entity``), streaming bytes out as the blocks arrive::

    source = CarBlockSource(response.aiter_bytes(), root, fallback=fetch_raw_block)
    target = await resolve_path(root, path, source.get)         # consumes the directory blocks
    stream = await open_file(target.cid, source.get)            # consumes the file's root block
    stream.size                                                 # -> Content-Length, Range checks
    async for chunk in stream.chunks():                         # verified bytes, in order
        ...

:class:`CarBlockBuffer` is the sans-IO core of :class:`CarBlockSource`: it decodes (and verifies) the CAR and
holds blocks until the traversal asks for them. A CAR in DFS order (``order=dfs``) needs no buffering at all;
blocks that arrive early (``order=unk``) or that are never needed are held up to ``buffer_bytes_max``, then the
stream is rejected. Duplicates: with ``dups=n`` a block repeated in the DAG comes once, so recently handed-out
blocks stay in a small LRU cache (``cache_bytes_max``); one wanted again after eviction is fetched through
``fallback`` (a raw-block request), or the fetch fails with MissingBlock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Final, TypeAlias

from lightning.errors import LocalProtocolError
from lightning.ipfs.car import BLOCK_BYTES_MAX, HEADER_BYTES_MAX, CarDecoder, CarHeader
from lightning.ipfs.cid import Block, BytesLike, Cid, inline_block, verify_block
from lightning.ipfs.errors import CarRootMismatch, LimitExceeded, MissingBlock
from lightning.ipfs.unixfs import DEPTH_MAX, DirectoryLister, DirEntry, FileReader, PathResolver, Resolved, parse_path

__all__ = [
    "CarBlockBuffer",
    "CarBlockSource",
    "FileStream",
    "GetBlock",
    "SyncGetBlock",
    "list_directory",
    "list_directory_sync",
    "open_file",
    "read_file_sync",
    "resolve_path",
    "resolve_path_sync",
]

GetBlock: TypeAlias = Callable[[Cid], Awaitable[Block | bytes]]
SyncGetBlock: TypeAlias = Callable[[Cid], Block | bytes]
BUFFER_BYTES_MAX: Final = 16 * 1024 * 1024
CACHE_BYTES_MAX: Final = 4 * 1024 * 1024
_DELIVERED_MAX: Final = 1_000_000


def _as_block(cid: Cid, got: Block | BytesLike) -> Block:
    if isinstance(got, Block):
        if got.cid.multihash != cid.multihash:
            raise LocalProtocolError(f"block getter returned {got.cid} for {cid}")
        return got
    return verify_block(cid, got)


def _segments(path: str | Sequence[str]) -> tuple[str, ...]:
    return parse_path(path) if isinstance(path, str) else tuple(path)


# -- async drivers ------------------------------------------------------------------------------------------------


async def _get(get_block: GetBlock, cid: Cid) -> Block:
    return inline_block(cid) or _as_block(cid, await get_block(cid))


async def resolve_path(root: Cid, path: str | Sequence[str], get_block: GetBlock) -> Resolved:
    """Follow ``path`` (a string, parsed with ``parse_path``, or segments) from ``root``.

    Raises InvalidPath, PathNotFound, Unsupported, and whatever the blocks or ``get_block`` raise.
    """
    resolver = PathResolver(root, _segments(path))
    while (cid := resolver.wanted()) is not None:
        resolver.feed(await _get(get_block, cid))
    return resolver.result


class FileStream:
    """A UnixFS file being read: ``size`` is known (its root block is in); ``chunks()`` yields the rest."""

    def __init__(self, reader: FileReader, first: bytes, get_block: GetBlock) -> None:
        assert reader.size is not None and reader.stop is not None
        self.cid = reader.cid
        self.size: int = reader.size
        """The whole file's size (``FileReader.size``)."""
        self.start = reader.start
        self.stop: int = reader.stop
        """The byte range ``[start, stop)`` that ``chunks()`` yields, clamped to the file."""
        self._reader = reader
        self._first = first
        self._get_block = get_block

    def upcoming(self, n: int) -> list[Cid]:
        """CIDs of the next blocks needed, for a fetcher that prefetches (see ``FileReader.upcoming``)."""
        return self._reader.upcoming(n)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the file's bytes in order, each chunk as soon as its block is in and verified (no empty chunks)."""
        first, self._first = self._first, b""
        if first:
            yield first
        reader = self._reader
        while (cid := reader.wanted()) is not None:
            data = reader.feed(await _get(self._get_block, cid))
            if data:
                yield data


async def open_file(
    cid: Cid, get_block: GetBlock, *, start: int = 0, stop: int | None = None, depth_max: int = DEPTH_MAX
) -> FileStream:
    """Fetch the root block of file ``cid`` and return a stream over ``[start, stop)`` of its bytes.

    Raises NotAFile (a directory or symlink: ``exc.kind``), UnixFsError, Unsupported, and whatever ``get_block``
    raises. Iterating the stream raises the same, plus LimitExceeded.
    """
    reader = FileReader(cid, start=start, stop=stop, depth_max=depth_max)
    first = reader.feed(await _get(get_block, cid))
    return FileStream(reader, first, get_block)


async def list_directory(cid: Cid, get_block: GetBlock, *, entries_max: int = 1_000_000) -> list[DirEntry]:
    """All entries of directory ``cid`` (plain or HAMT-sharded), in link order (shards depth-first).

    Raises NotADirectory, UnixFsError, LimitExceeded, and whatever ``get_block`` raises.
    """
    lister = DirectoryLister(cid, entries_max=entries_max)
    entries: list[DirEntry] = []
    while (wanted := lister.wanted()) is not None:
        entries += lister.feed(await _get(get_block, wanted))
    return entries


# -- sync drivers (tests, tools, the test gateway) ----------------------------------------------------------------


def _get_sync(get_block: SyncGetBlock, cid: Cid) -> Block:
    return inline_block(cid) or _as_block(cid, get_block(cid))


def resolve_path_sync(root: Cid, path: str | Sequence[str], get_block: SyncGetBlock) -> Resolved:
    """:func:`resolve_path` with a sync block getter."""
    resolver = PathResolver(root, _segments(path))
    while (cid := resolver.wanted()) is not None:
        resolver.feed(_get_sync(get_block, cid))
    return resolver.result


def read_file_sync(
    cid: Cid, get_block: SyncGetBlock, *, start: int = 0, stop: int | None = None, depth_max: int = DEPTH_MAX
) -> Iterator[bytes]:
    """Yield the bytes of file ``cid`` (``[start, stop)``) with a sync block getter; raises as :func:`open_file`."""
    reader = FileReader(cid, start=start, stop=stop, depth_max=depth_max)
    while (wanted := reader.wanted()) is not None:
        data = reader.feed(_get_sync(get_block, wanted))
        if data:
            yield data


def list_directory_sync(cid: Cid, get_block: SyncGetBlock, *, entries_max: int = 1_000_000) -> list[DirEntry]:
    """:func:`list_directory` with a sync block getter."""
    lister = DirectoryLister(cid, entries_max=entries_max)
    entries: list[DirEntry] = []
    while (wanted := lister.wanted()) is not None:
        entries += lister.feed(_get_sync(get_block, wanted))
    return entries


# -- CAR streams as a block source --------------------------------------------------------------------------------


class CarBlockBuffer:
    """Sans-IO: decode a CAR stream and hold its blocks until asked for (see the module docstring).

    ``root``: when given, a header that lists roots must list it (CarRootMismatch); an empty roots list passes,
    since the trustless-gateway spec leaves roots unspecified (what protects us is verifying the DAG from
    ``root``, not the header).
    """

    def __init__(
        self,
        root: Cid | None = None,
        *,
        buffer_bytes_max: int = BUFFER_BYTES_MAX,
        cache_bytes_max: int = CACHE_BYTES_MAX,
        block_bytes_max: int = BLOCK_BYTES_MAX,
        header_bytes_max: int = HEADER_BYTES_MAX,
    ) -> None:
        self._decoder = CarDecoder(header_bytes_max=header_bytes_max, block_bytes_max=block_bytes_max)
        self._root = root
        self._header_checked = False
        self._pending: dict[bytes, Block] = {}  # multihash -> block not yet taken
        self._pending_bytes = 0
        self._cache: OrderedDict[bytes, Block] = OrderedDict()  # recently taken, for duplicates
        self._cache_bytes = 0
        self._delivered: set[bytes] = set()
        self._buffer_bytes_max = buffer_bytes_max
        self._cache_bytes_max = cache_bytes_max
        self.ended = False

    @property
    def header(self) -> CarHeader | None:
        return self._decoder.header

    @property
    def buffered_bytes(self) -> int:
        return self._pending_bytes

    def feed(self, data: BytesLike) -> None:
        """The next bytes of the stream. Raises CarError, CarRootMismatch, BlockMismatch, LimitExceeded."""
        blocks = self._decoder.feed(data)
        if not self._header_checked and self._decoder.header is not None:
            self._header_checked = True
            self._check_roots(self._decoder.header)
        for block in blocks:
            key = block.cid.multihash
            if block.cid.is_identity or key in self._pending or key in self._cache:
                continue
            self._pending[key] = block
            self._pending_bytes += len(block.data)
        if self._pending_bytes > self._buffer_bytes_max:
            raise LimitExceeded(
                f"CAR stream holds {self._pending_bytes} bytes of blocks not needed yet (limit "
                f"{self._buffer_bytes_max}): it is out of order or carries blocks of another DAG"
            )

    def end(self) -> None:
        """The stream ended. Raises CarTruncated if it stopped inside the header or a section."""
        self.ended = True
        self._decoder.finish()

    def take(self, cid: Cid) -> Block | None:
        """The block for ``cid`` if it has arrived (and, for a repeated one, is still cached), else None."""
        key = cid.multihash
        block = self._pending.pop(key, None)
        if block is not None:
            self._pending_bytes -= len(block.data)
            if len(self._delivered) < _DELIVERED_MAX:
                self._delivered.add(key)
            self._remember(key, block)
            return block
        block = self._cache.get(key)
        if block is not None:
            self._cache.move_to_end(key)
        return block

    def delivered(self, cid: Cid) -> bool:
        """A block with ``cid``'s multihash was handed out before (so the stream won't carry it again)."""
        return cid.multihash in self._delivered

    def _remember(self, key: bytes, block: Block) -> None:
        if len(block.data) > self._cache_bytes_max:
            return
        self._cache[key] = block
        self._cache_bytes += len(block.data)
        while self._cache_bytes > self._cache_bytes_max:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= len(old.data)

    def _check_roots(self, header: CarHeader) -> None:
        root = self._root
        if root is None or not header.roots:
            return
        if not any(r.multihash == root.multihash and r.codec == root.codec for r in header.roots):
            listed = ", ".join(str(r) for r in header.roots[:3])
            raise CarRootMismatch(f"CAR roots are {listed}, not the requested {root}")


class CarBlockSource:
    """An async block getter (``get``) over a CAR stream, for the drivers above.

    ``chunks``: the response body. ``fallback``: fetches a block the stream can no longer supply (a duplicate
    evicted from the cache, or one the stream ended without), e.g. with a ``?format=raw`` request; without it,
    those raise MissingBlock.
    """

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        root: Cid | None = None,
        *,
        fallback: GetBlock | None = None,
        buffer_bytes_max: int = BUFFER_BYTES_MAX,
        cache_bytes_max: int = CACHE_BYTES_MAX,
        block_bytes_max: int = BLOCK_BYTES_MAX,
    ) -> None:
        self._chunks = aiter(chunks)
        self._fallback = fallback
        self.buffer = CarBlockBuffer(
            root,
            buffer_bytes_max=buffer_bytes_max,
            cache_bytes_max=cache_bytes_max,
            block_bytes_max=block_bytes_max,
        )
        self.fallbacks = 0
        """How many blocks came through ``fallback``."""

    async def get(self, cid: Cid) -> Block:
        """The verified block for ``cid``, reading the stream as far as needed.

        Raises MissingBlock, and what CarBlockBuffer.feed/end and ``fallback`` raise.
        """
        inline = inline_block(cid)
        if inline is not None:
            return inline
        buffer = self.buffer
        while (block := buffer.take(cid)) is None:
            if buffer.ended or buffer.delivered(cid):
                break
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                buffer.end()
                continue
            buffer.feed(chunk)
        else:
            return block
        if self._fallback is not None:
            self.fallbacks += 1
            return _as_block(cid, await self._fallback(cid))
        why = "the CAR stream ended without it" if buffer.ended else "it came earlier and is no longer cached"
        raise MissingBlock(cid, why)
