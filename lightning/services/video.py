"""Service 1, video streaming: ``/services/1/ipfs/<cid>[/path]`` and ``/services/1/blake3/<root>``.

MP4 (or any file) plays with ``Range`` seeking exactly as service 0 serves it; the fetcher downloads the whole
object, so the bytes after the playhead arrive ahead of the player's next range request. HLS: an IPFS directory
holding an ``.m3u8`` playlist and its segments. What makes this more than service 0 is **read-ahead**: when a
playlist is served, the first segments are fetched; when segment *k* is requested, segments *k+1 … k+N* are
started on the fetcher (from peers or origin), so playback does not stall on a cache miss. Per-stream metrics:
startup time (request of a playlist or first range → first byte), bytes, seeks, stalls avoided (a segment that was
already local or in flight because of read-ahead) — as Prometheus totals, and per stream (client × video, the last
1,024) through the ``flk_video_streams`` RPC.
"""

from __future__ import annotations

import logging
import posixpath
from collections import OrderedDict
from dataclasses import dataclass

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram

from lightning.blockstore.component import Blockstore
from lightning.fetcher import Download, Fetcher, FetchError, Pointer
from lightning.http.server import Request, Response
from lightning.ipfs import InvalidPath, parse_path
from lightning.services.content import ContentService
from lightning.services.serve import LATENCY_BUCKETS, ServiceMetrics, Target

__all__ = ["VideoService", "parse_playlist"]

logger = logging.getLogger(__name__)

PLAYLIST_BYTES_MAX = 1024 * 1024
PLAYLISTS_REMEMBERED = 256
STREAMS_REMEMBERED = 1024
HLS_SUFFIXES = (".m3u8", ".ts", ".m4s")


def parse_playlist(text: str) -> list[str]:
    """The URIs of an M3U8 playlist (segments or variant playlists), in order; comments and tags skipped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class VideoMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.startup = Histogram(
            "lightning_video_startup_seconds", "Playlist or first-range request → first byte",
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.seeks = Counter("lightning_video_seeks", "Range requests not starting at 0", registry=registry)
        self.readahead = Counter("lightning_video_readahead_started", "Segments fetched ahead", registry=registry)
        self.stalls_avoided = Counter(
            "lightning_video_stalls_avoided", "Segment requests already local or in flight thanks to read-ahead",
            registry=registry,
        )  # fmt: skip
        self.segment_misses = Counter(
            "lightning_video_segment_misses", "Segment requests that had to start a fetch", registry=registry
        )


@dataclass
class StreamRecord:
    """One viewer's stream: a client address watching one video (an MP4, or an HLS playlist's folder)."""

    client: str
    video: str
    started_at: float
    startup_s: float | None = None
    requests: int = 0
    bytes: int = 0
    seeks: int = 0
    stalls_avoided: int = 0
    segment_misses: int = 0

    def as_dict(self, now: float) -> dict[str, object]:
        return {
            "client": self.client,
            "video": self.video,
            "age_s": round(now - self.started_at, 3),
            "startup_s": None if self.startup_s is None else round(self.startup_s, 4),
            "requests": self.requests,
            "bytes": self.bytes,
            "seeks": self.seeks,
            "stalls_avoided": self.stalls_avoided,
            "segment_misses": self.segment_misses,
        }


class VideoService(ContentService):
    service_id = 1

    def __init__(
        self,
        blockstore: Blockstore,
        *,
        fetcher: Fetcher | None = None,
        metrics: ServiceMetrics | None = None,
        registry: CollectorRegistry | None = None,
        readahead_segments: int = 3,
    ) -> None:
        super().__init__(blockstore, fetcher=fetcher, metrics=metrics)
        self._bs = blockstore
        self._fetcher = fetcher
        self._video = VideoMetrics(registry or CollectorRegistry())
        self._readahead = readahead_segments
        # playlist directory (pointer without its file name) → segment paths in order
        self._playlists: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self._prefetched: set[str] = set()
        self._streams: OrderedDict[tuple[str, str], StreamRecord] = OrderedDict()

    def streams(self) -> list[dict[str, object]]:
        """Recent streams, newest last (at most STREAMS_REMEMBERED), for the ``flk_video_streams`` RPC."""
        now = trio.current_time()
        return [stats.as_dict(now) for stats in self._streams.values()]

    def _stream(self, request: Request, target: Target) -> StreamRecord:
        pointer = target.pointer
        name = (target.name or "").lower()
        video = f"{pointer.kind}:{pointer.key}"
        folder = posixpath.dirname(pointer.path)
        # One video per HLS rendition (its playlist's folder): the playlist, .ts/.m4s segments, and whatever else the
        # folder's playlist lists (fMP4 segments named .mp4 …). Any other file is a video of its own.
        if pointer.kind == "ipfs" and (
            name.endswith(HLS_SUFFIXES) or pointer.path in self._playlists.get((pointer.key, folder), ())
        ):
            video += f"/{folder}" if folder else ""
        elif pointer.path:
            video += "/" + pointer.path
        key = (request.client[0], video)
        stats = self._streams.get(key)
        if stats is None:
            stats = self._streams[key] = StreamRecord(request.client[0], video, trio.current_time())
        self._streams.move_to_end(key)
        while len(self._streams) > STREAMS_REMEMBERED:
            self._streams.popitem(last=False)
        return stats

    async def serve_target(self, request: Request, target: Target) -> Response:
        started = trio.current_time()
        stream = self._stream(request, target)
        stream.requests += 1
        range_header = request.header("range")
        from_start = range_header is None or range_header.replace(" ", "").startswith("bytes=0-")
        if not from_start:
            self._video.seeks.inc()
            stream.seeks += 1
        name = (target.name or "").lower()
        download = None
        if name.endswith(".m3u8"):
            download = await self._wait_playlist(target)
            await self._learn_playlist(target)
        elif target.pointer.kind == "ipfs":
            self._on_segment(target, stream)
        response = await self.server.respond(request, target, download)
        if response.status in (200, 206) and request.method != "HEAD":  # HEAD sends no body byte
            length, body = response.content_length, response.body
            stream.bytes += length if length is not None else len(body) if isinstance(body, bytes) else 0
        if name.endswith(".m3u8") or from_start:
            elapsed = trio.current_time() - started
            self._video.startup.observe(elapsed)
            if stream.startup_s is None:
                stream.startup_s = elapsed
        return response

    # -- read-ahead -------------------------------------------------------------------------------------------
    async def _wait_playlist(self, target: Target) -> Download | None:
        """Fetch a playlist that is not local and wait for the download to end (read-ahead needs its text). Returns
        that download, for the response to use: a failed one is not asked of the origin a second time."""
        if self._fetcher is None or self.server.local_root(target) is not None:
            return None
        try:
            download = self._fetcher.start(target.pointer)
        except FetchError:
            return None
        await download.done.wait()
        return download

    async def _learn_playlist(self, target: Target) -> None:
        """Read the playlist if it is local, remember its segments, and start the first ones."""
        pointer = target.pointer
        root = self.server.local_root(target)
        info = self._bs.info(root) if root is not None else None
        if info is None or info.length > PLAYLIST_BYTES_MAX:
            return
        try:
            text = b"".join([bytes(c) async for c in self._bs.stream(info)]).decode("utf-8", "replace")
        except Exception as exc:  # a corrupt playlist is served (or refused) by the normal path
            logger.debug("no read-ahead for %s: %s", pointer, exc)
            return
        folder = posixpath.dirname(pointer.path)
        segments = []
        for uri in parse_playlist(text):
            if "://" in uri or uri.startswith("/"):
                continue  # only relative URIs stay inside this CID
            try:  # and only those that do not climb above it: refused as a client's path would be
                path = "/".join(parse_path(posixpath.join(folder, uri)))
            except InvalidPath:
                continue
            if path:  # not the CID itself
                segments.append(path)
        key = (pointer.key, folder)
        self._playlists[key] = segments
        self._playlists.move_to_end(key)
        while len(self._playlists) > PLAYLISTS_REMEMBERED:
            self._playlists.popitem(last=False)
        for path in segments[: self._readahead]:
            self._prefetch(Pointer("ipfs", pointer.key, path))

    def _on_segment(self, target: Target, stream: StreamRecord) -> None:
        pointer = target.pointer
        key = (pointer.key, posixpath.dirname(pointer.path))
        segments = self._playlists.get(key)
        if segments is None or pointer.path not in segments:
            return
        # A read-ahead avoided a stall only if it brought the segment or is still bringing it (not if it failed).
        ahead = pointer.alias in self._prefetched and self._fetcher is not None and self._fetcher.in_flight(pointer)
        if ahead or self.server.local_root(target) is not None:
            self._video.stalls_avoided.inc()
            stream.stalls_avoided += 1
        else:
            self._video.segment_misses.inc()
            stream.segment_misses += 1
        k = segments.index(pointer.path)
        for path in segments[k + 1 : k + 1 + self._readahead]:
            self._prefetch(Pointer("ipfs", pointer.key, path))

    def _prefetch(self, pointer: Pointer) -> None:
        if self._fetcher is None or pointer.alias in self._prefetched:
            return
        if self._bs.resolve_alias(pointer.alias) is not None:
            self._prefetched.add(pointer.alias)
            return
        try:
            self._fetcher.start(pointer)
        except FetchError:
            return  # the queue is full: the segment is fetched when asked for
        self._prefetched.add(pointer.alias)
        if len(self._prefetched) > 100_000:
            self._prefetched.clear()
        self._video.readahead.inc()
