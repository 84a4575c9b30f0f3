"""The blockstore as a node component: async API over :class:`BlockStore`, one writer thread, GC, metrics."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import lmdb
import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from lightning.blockstore.config import BlockstoreConfig
from lightning.blockstore.store import BlockStore, ObjectInfo, StoreStatistics
from lightning.blockstore.verify import BLOCK_SIZE, BytesLike
from lightning.blockstore.writer import UntrustedCore, WriterCore
from lightning.writer import Job, WriterThread

__all__ = ["AsyncObjectWriter", "Blockstore"]

logger = logging.getLogger(__name__)

TOUCH_FLUSH_S = 1.0
STREAM_BATCH_BLOCKS = 8  # 2 MiB hashed per hand-off to the verifier thread
MAX_PENDING_TOUCHES = 10_000


class Blockstore:
    """Node component. Reads run inline (LMDB reads are cheap and thread-safe); writes run on the writer thread."""

    def __init__(
        self,
        config: BlockstoreConfig,
        path: Path,
        *,
        registry: CollectorRegistry | None = None,
        inline: bool = False,
    ) -> None:
        self.config = config
        self.path = path
        self._writer = WriterThread(f"blockstore-writer:{path}", inline=inline)
        self._verifier = WriterThread(f"blockstore-verifier:{path}", inline=inline)
        self._registry = registry
        self._store: BlockStore | None = None
        self._touched: set[bytes] = set()
        self._reading: dict[bytes, int] = {}  # roots being streamed → readers (GC spares them)

    @property
    def store(self) -> BlockStore:
        assert self._store is not None, "blockstore is not running"
        return self._store

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._store = BlockStore(self.path, map_size=self.config.map_size_bytes)
        collector = _Collector(self) if self._registry is not None else None
        if collector is not None and self._registry is not None:
            self._registry.register(collector)
        self._writer.start()
        self._verifier.start()
        try:
            stats = self._store.statistics()
            logger.info(
                "blockstore %s: %d objects, %d bytes (capacity %d)",
                self.path,
                stats.objects,
                stats.bytes,
                self.config.capacity_bytes,
            )
            task_status.started()
            while True:
                await trio.sleep(TOUCH_FLUSH_S)
                await self._flush_touches()
        finally:
            with trio.CancelScope(shield=True):
                await self._flush_touches()
            self._writer.stop()
            self._verifier.stop()
            if collector is not None and self._registry is not None:
                self._registry.unregister(collector)
            self._store.close()
            self._store = None

    # -- reads --------------------------------------------------------------------------------------------------
    def info(self, root: bytes) -> ObjectInfo | None:
        return self.store.info(root)

    def has(self, root: bytes) -> bool:
        return self.store.has(root)

    def statistics(self) -> StoreStatistics:
        return self.store.statistics()

    async def read_range(self, root: bytes, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Verified bytes of an object, block by block (a checkpoint between blocks). Raises UnknownObject,
        CorruptObject, CorruptBlock."""
        self._touch(root)
        for chunk in self.store.read_range(root, start, end):
            yield chunk
            await trio.lowlevel.checkpoint()

    async def stream(
        self, info: ObjectInfo, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes | memoryview]:
        """Verified bytes [start, end) of an object as zero-copy views, pipelined: while one batch of blocks is
        sent, the next is hashed on the verifier thread (blake3 releases the GIL). Each view is valid until the
        generator is resumed. Raises CorruptObject, CorruptBlock (after yielding every block before the bad one).
        """
        store = self.store
        store.tree(info)
        self._touch(info.root)
        self._reading[info.root] = self._reading.get(info.root, 0) + 1
        try:
            async with contextlib.aclosing(self._stream(info, start, end)) as views:
                async for view in views:
                    yield view
        finally:
            left = self._reading.pop(info.root) - 1
            if left:
                self._reading[info.root] = left

    async def _stream(
        self, info: ObjectInfo, start: int, end: int | None
    ) -> AsyncGenerator[bytes | memoryview, None]:
        store = self.store
        end = info.length if end is None else min(end, info.length)
        if start >= end:
            return
        indices = list(range(start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE + 1))
        batches = [indices[k : k + STREAM_BATCH_BLOCKS] for k in range(0, len(indices), STREAM_BATCH_BLOCKS)]
        pending: list[_Batch] = []

        def open_batch(idxs: list[int]) -> None:
            txn = store.read_txn()
            views = [store.block_view(txn, info, i) for i in idxs]
            pending.append(_Batch(txn, idxs, views, self._verifier.submit(store.first_bad_block, info, idxs, views)))

        try:
            open_batch(batches[0])
            for k in range(len(batches)):
                batch = pending[0]
                bad = await batch.job.wait()
                if k + 1 < len(batches):
                    open_batch(batches[k + 1])
                for index, view in zip(batch.indices, batch.views, strict=True):
                    if index == bad or view is None:
                        raise store.corrupt(info, index)
                    offset = index * BLOCK_SIZE
                    lo, hi = max(start - offset, 0), min(end - offset, len(view))
                    yield view if (lo, hi) == (0, len(view)) else view[lo:hi]
                pending.pop(0).txn.abort()
        finally:
            with trio.CancelScope(shield=True):
                for batch in pending:  # a hash may still read these pages: let it finish before the txn ends
                    with contextlib.suppress(Exception):
                        await batch.job.wait()
                    batch.txn.abort()

    def _touch(self, root: bytes) -> None:
        if len(self._touched) < MAX_PENDING_TOUCHES:
            self._touched.add(root)

    async def _flush_touches(self) -> None:
        if self._touched and self._store is not None:
            roots, self._touched = self._touched, set()
            await self._writer.call(self._store.touch, roots)

    # -- writes -------------------------------------------------------------------------------------------------
    def writer(self, *, pin: bool = False, expected_root: bytes | None = None) -> AsyncObjectWriter:
        """A streaming writer: trusted (hashes content itself) or, with ``expected_root``, untrusted (takes a proof
        stream and stores only what verifies against that root)."""
        return AsyncObjectWriter(self, pin=pin, expected_root=expected_root)

    async def put(self, data: BytesLike, *, pin: bool = False) -> bytes:
        async with self.writer(pin=pin) as w:
            await w.write(data)
            return await w.close()

    async def record_alias(self, alias: str, root: bytes) -> None:
        await self._writer.call(self.store.record_alias, alias, root)

    def resolve_alias(self, alias: str) -> bytes | None:
        return self.store.resolve_alias(alias)

    async def delete(self, root: bytes) -> bool:
        return await self._writer.call(self.store.delete, root)

    async def pin(self, root: bytes, pinned: bool = True) -> None:
        await self._writer.call(self.store.pin, root, pinned)

    async def _after_publish(self, root: bytes) -> None:
        if self.store.statistics().bytes > self.config.capacity_bytes:
            collect = functools.partial(self.store.collect, keep=[root, *self._reading])  # not what is being read
            await self._writer.call(collect, self.config.capacity_bytes)


@dataclass
class _Batch:
    txn: lmdb.Transaction
    indices: list[int]
    views: list[memoryview | None]
    job: Job[int | None]


class AsyncObjectWriter:
    """``async with blockstore.writer() as w: await w.write(b); root = await w.close()``. Leaving the block without
    ``close()`` (exception or cancellation) aborts: the staged blocks are dropped, nothing becomes visible."""

    def __init__(self, blockstore: Blockstore, *, pin: bool, expected_root: bytes | None) -> None:
        self._bs = blockstore
        self._pin = pin
        self._core: WriterCore | UntrustedCore = WriterCore() if expected_root is None else UntrustedCore(expected_root)
        self._id = blockstore.store.new_writer_id()
        self._seq = 0
        self._closed = False

    async def write(self, data: BytesLike) -> None:
        """Trusted mode: content bytes. Untrusted mode: proof-stream bytes. Raises VerificationFailed."""
        assert not self._closed, "write() after close()"
        for batch in self._core.feed(data):
            self._seq = await self._bs._writer.call(self._bs.store.stage, self._id, self._seq, batch)

    async def close(self) -> bytes:
        """Publish the object and return its root."""
        batch, published = self._core.finish()
        store = self._bs.store
        if batch:
            self._seq = await self._bs._writer.call(store.stage, self._id, self._seq, batch)
        publish = functools.partial(store.publish, pin=self._pin)
        await self._bs._writer.call(publish, self._id, published.root, published.length, published.hashes)
        self._closed = True
        await self._bs._after_publish(published.root)
        return published.root

    async def abort(self) -> None:
        if not self._closed:
            self._closed = True
            if self._bs._store is None:
                # The blockstore stopped first (the whole node was cancelled at once: a crash elsewhere, or a
                # simulated kill): what this writer staged is swept as an orphan when the store opens next.
                return
            with trio.CancelScope(shield=True):
                await self._bs._writer.call(self._bs.store.abort, self._id)

    async def __aenter__(self) -> AsyncObjectWriter:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._closed:
            await self.abort()


class _Collector(Collector):
    def __init__(self, blockstore: Blockstore) -> None:
        self._bs = blockstore

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        store = self._bs._store
        if store is None:
            return
        s = store.statistics()
        yield GaugeMetricFamily("lightning_blockstore_bytes", "Unique block bytes stored", value=s.bytes)
        yield GaugeMetricFamily(
            "lightning_blockstore_capacity_bytes", "Configured capacity", value=self._bs.config.capacity_bytes
        )
        yield GaugeMetricFamily("lightning_blockstore_objects", "Objects stored", value=s.objects)
        yield GaugeMetricFamily("lightning_blockstore_pinned_objects", "Pinned objects", value=s.pinned)
        yield GaugeMetricFamily("lightning_blockstore_blocks", "Unique blocks stored", value=s.blocks)
        yield CounterMetricFamily(
            "lightning_blockstore_evictions", "Objects evicted by GC (all processes)", value=s.evictions
        )
        yield CounterMetricFamily(
            "lightning_blockstore_verification_failures",
            "Stored blocks or objects that failed verification on read (this process)",
            value=store.verification_failures,
        )
