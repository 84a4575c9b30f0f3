"""The fetcher: get content by blake3 root or origin pointer — local blockstore, then peers, then origins.

Theory of operation
-------------------
``start(pointer)`` returns the :class:`Download` for that pointer, creating it if none is in flight, so concurrent
requests for the same content share one transfer (merged). New downloads wait in a bounded queue; ``max_concurrent``
worker tasks (started by ``run``, so the nursery belongs to the component, not to a request) take them in order.
A worker tries each source in turn — the peers that hold the content, then the configured origins — with a timeout
per attempt for the first byte and for every later gap. Sources push only *verified* bytes into a :class:`Sink`,
which appends them to the download's spool (clients stream from it as bytes arrive) and to a blockstore writer; a
retry on another source starts over and skips the bytes the spool already has (content is verified, so any source
yields the same bytes). On success the object is published, its pointer recorded (CID → root), and the spool
finishes with the root; if every source fails the spool fails with the last error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lightning.blockstore.component import AsyncObjectWriter, Blockstore
from lightning.errors import LightningError
from lightning.fetcher.config import FetcherConfig
from lightning.fetcher.spool import Spool

__all__ = [
    "Download",
    "FetchError",
    "Fetcher",
    "NotFound",
    "OriginFailed",
    "OriginTimeout",
    "Pointer",
    "Sink",
    "Source",
]

logger = logging.getLogger(__name__)

HEAD_BYTES = 512  # the object's first bytes a Download keeps, for services to sniff a Content-Type from


class FetchError(LightningError):
    """Root of the fetcher's errors."""


class NotFound(FetchError):
    """No source has the content. ``disabled``: the one kind of source that could have it is turned off in this
    node's config (``origin_url.enabled``), so asking again will not help."""

    def __init__(self, message: str, *, disabled: bool = False) -> None:
        super().__init__(message)
        self.disabled = disabled


class OriginFailed(FetchError):
    """An origin or peer answered with an error or with content that did not verify."""


class OriginTimeout(FetchError):
    """A source sent nothing for too long."""


@dataclass(frozen=True)
class Pointer:
    """What to fetch: ``kind`` is "blake3" (``key`` = root hex), "ipfs" (``key`` = CID, ``path`` inside it)."""

    kind: str
    key: str
    path: str = ""

    @property
    def alias(self) -> str:
        """The name under which the blockstore records this pointer's root."""
        return f"{self.kind}:{self.key}{'/' + self.path if self.path else ''}"

    def __str__(self) -> str:
        return self.alias


class Sink:
    """Where a source puts verified bytes. ``progress`` moves on every write (the attempt timeout watches it)."""

    def __init__(self, download: Download, writer: AsyncObjectWriter, skip: int) -> None:
        self._download = download
        self._writer = writer
        self._skip = skip
        self.written = 0
        self.progress = trio.Event()
        self.first_byte_at: float | None = None
        self.waiting_on_clients = False

    def set_total_len(self, n: int) -> None:
        spool = self._download.spool
        if spool.total_len is None:
            spool.set_total_len(n)
        elif spool.total_len != n:
            raise OriginFailed(f"{self._download.pointer}: source claims {n} bytes, another claimed {spool.total_len}")

    def set_name(self, name: str) -> None:
        """The file name, if the source knows it (for Content-Type)."""
        if not self._download.name:
            self._download.name = name

    async def write(self, chunk: bytes) -> None:
        """Verified bytes, in order."""
        if not chunk:
            return
        if self.first_byte_at is None:
            self.first_byte_at = trio.current_time()
        await self._writer.write(chunk)
        start = self.written
        self.written += len(chunk)
        kept = len(self._download.head)
        if start <= kept < HEAD_BYTES:  # a retry on another source passes over what an earlier attempt kept
            self._download.head += chunk[kept - start : HEAD_BYTES - start]
        self.progress.set()
        self.progress = trio.Event()
        if self.written > self._skip:
            self.waiting_on_clients = True  # slow clients hold the source back: not the source's idleness
            try:
                await self._download.spool.append(chunk[max(0, self._skip - start) :])
            finally:
                self.waiting_on_clients = False
                self.progress.set()
                self.progress = trio.Event()


class Source(Protocol):
    name: str  # "peer" or "origin" (metrics label)

    def handles(self, pointer: Pointer) -> bool: ...

    async def fetch(self, pointer: Pointer, sink: Sink) -> None:
        """Push the content's verified bytes into ``sink``; raise FetchError (NotFound, OriginFailed …) on failure."""
        ...


@dataclass
class Download:
    """One transfer. ``head``: its first verified bytes (up to HEAD_BYTES; all of them once the spool's head has
    passed them), so every reader sniffs the same Content-Type whatever range it reads."""

    pointer: Pointer
    spool: Spool
    name: str = ""
    head: bytes = b""
    started_at: float = 0.0
    done: trio.Event = field(default_factory=trio.Event)
    source: str = ""


class FetcherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "lightning_fetcher_requests", "Fetch requests by outcome (hit, merged, miss)", ["result"], registry=registry
        )
        self.in_flight = Gauge("lightning_fetcher_downloads_in_flight", "Downloads running", registry=registry)
        self.queued = Gauge("lightning_fetcher_downloads_queued", "Downloads waiting for a worker", registry=registry)
        self.origin_ttfb = Histogram(
            "lightning_fetcher_source_ttfb_seconds",
            "Time from asking a source to its first verified byte",
            ["source"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.failures = Counter(
            "lightning_fetcher_source_failures", "Failed attempts by source and reason", ["source", "reason"],
            registry=registry,
        )  # fmt: skip
        self.bytes = Counter("lightning_fetcher_bytes", "Verified bytes fetched", ["source"], registry=registry)


class Fetcher:
    def __init__(
        self,
        config: FetcherConfig,
        blockstore: Blockstore,
        sources: Sequence[Source],
        *,
        registry: CollectorRegistry | None = None,
        on_fetched: Callable[[Pointer, bytes, str], None] | None = None,
    ) -> None:
        """``on_fetched(pointer, root, source_name)`` runs after each successful download (the node announces
        origin fetches to the resolver)."""
        self._on_fetched = on_fetched
        self.config = config
        self._bs = blockstore
        self._sources = list(sources)
        self._downloads: dict[str, Download] = {}
        send, receive = trio.open_memory_channel[Download](math.inf)
        self._queue_send, self._queue_receive = send, receive
        self.metrics = FetcherMetrics(registry or CollectorRegistry())

    def add_source(self, source: Source) -> None:
        """Sources are tried in the order added (peers first, then origins)."""
        self._sources.append(source)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.config.max_concurrent):
                nursery.start_soon(self._worker)
            task_status.started()

    def in_flight(self, pointer: Pointer) -> bool:
        """Whether a download of ``pointer`` is queued or running (one that ended, well or not, is not)."""
        return pointer.alias in self._downloads

    def start(self, pointer: Pointer) -> Download:
        """The in-flight download for ``pointer`` (merged), or a new one queued. Raises FetchError when the queue is
        full (the caller answers 503)."""
        existing = self._downloads.get(pointer.alias)
        if existing is not None:
            self.metrics.requests.labels("merged").inc()
            return existing
        if len(self._downloads) >= self.config.max_concurrent + self.config.max_queued:
            raise FetchError(f"too many downloads in flight ({len(self._downloads)}); try again shortly")
        download = Download(pointer, Spool(max_bytes=self.config.spool_max_bytes), started_at=trio.current_time())
        self._downloads[pointer.alias] = download
        self.metrics.requests.labels("miss").inc()
        self.metrics.queued.inc()
        self._queue_send.send_nowait(download)
        return download

    async def _worker(self) -> None:
        async for download in self._queue_receive:
            self.metrics.queued.dec()
            self.metrics.in_flight.inc()
            try:
                await self._download(download)
            finally:
                self.metrics.in_flight.dec()
                self._downloads.pop(download.pointer.alias, None)
                download.done.set()

    async def _download(self, download: Download) -> None:
        pointer = download.pointer
        errors: list[str] = []
        last: FetchError = NotFound(f"{pointer}: no source can provide it")
        for source in [s for s in self._sources if s.handles(pointer)]:
            try:
                root = await self._attempt(source, download)
            except LightningError as exc:
                if not isinstance(exc, FetchError):  # ours, not the source's (e.g. a full disk): no retry
                    logger.error("fetch %s failed: %s", pointer, exc)
                    download.spool.fail(exc)
                    return
                last = exc
                reason = type(exc).__name__
                self.metrics.failures.labels(source.name, reason).inc()
                errors.append(f"{source.name}: {exc}")
                logger.info("fetch %s from %s failed: %s", pointer, source.name, exc)
                continue
            download.source = source.name
            download.spool.finish(root)
            if self._on_fetched is not None:
                self._on_fetched(pointer, root, source.name)
            logger.info(
                "fetched %s (%d bytes) from %s in %.3f s",
                pointer,
                download.spool.head,
                source.name,
                trio.current_time() - download.started_at,
            )
            return
        if isinstance(last, NotFound) and len(errors) > 1:
            last = NotFound(f"{pointer}: not found ({'; '.join(errors)})")
        download.spool.fail(last)

    async def _attempt(self, source: Source, download: Download) -> bytes:
        asked_at = trio.current_time()
        async with self._bs.writer() as writer:
            sink = Sink(download, writer, skip=download.spool.head)
            async with trio.open_nursery() as nursery:
                timed_out = False

                async def watchdog() -> None:
                    nonlocal timed_out
                    timeout = self.config.first_byte_timeout_s
                    while True:
                        with trio.move_on_after(timeout) as scope:
                            await sink.progress.wait()
                        if scope.cancelled_caught and not sink.waiting_on_clients:
                            timed_out = True
                            nursery.cancel_scope.cancel()
                            return
                        timeout = self.config.idle_timeout_s

                nursery.start_soon(watchdog)
                failure: LightningError | None = None
                try:
                    await source.fetch(download.pointer, sink)
                except LightningError as exc:  # the source's, or our blockstore's (full disk)
                    failure = exc
                finally:
                    nursery.cancel_scope.cancel()
            if failure is not None:
                raise failure
            if timed_out:
                raise OriginTimeout(f"{source.name} sent nothing for too long")
            if sink.first_byte_at is not None:
                self.metrics.origin_ttfb.labels(source.name).observe(sink.first_byte_at - asked_at)
            self.metrics.bytes.labels(source.name).inc(sink.written)
            total = download.spool.total_len
            if total is not None and sink.written != total:
                raise OriginFailed(f"{source.name} sent {sink.written} bytes of {total}")
            root = await writer.close()
        if download.pointer.kind == "blake3" and root.hex() != download.pointer.key:
            raise OriginFailed(f"{source.name} sent content whose root is {root.hex()}")
        if download.pointer.kind != "blake3":
            await self._bs.record_alias(download.pointer.alias, root)
        return root
