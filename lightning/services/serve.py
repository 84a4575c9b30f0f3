"""Answering a GET/HEAD for one content object, local or still downloading: the part services 0 and 1 share.

Local objects stream from the blockstore (every block verified as it is read). Missing objects are started on the
fetcher and streamed from its spool as the source's verified bytes arrive — the status line waits only for the
first verified byte, so a failing origin still gets a proper 404/502/504 instead of a cut body. ``Range`` (206,
416), ``HEAD``, ``ETag``/``If-None-Match`` (304), Content-Type from the name or sniffed, Content-Length when known.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram

from lightning.blockstore import BLOCK_SIZE, CorruptBlock, CorruptObject, ObjectInfo, blocks_for_byte_range
from lightning.blockstore.component import Blockstore
from lightning.blockstore.verify import MEDIA_TYPE, BytesLike
from lightning.fetcher import (
    Download,
    Fetcher,
    FetchError,
    NotFound,
    OriginTimeout,
    Pointer,
    Rewound,
    Spool,
    SpoolFailed,
)
from lightning.http.server import Request, Response
from lightning.services.mime import content_type
from lightning.services.ranges import Unsatisfiable, parse_range

__all__ = ["ObjectServer", "ServiceMetrics", "Target"]

logger = logging.getLogger(__name__)

VERIFIED_TYPES = ("application/vnd.lightning.verified", MEDIA_TYPE)
IMMUTABLE = "public, max-age=31536000, immutable"
SMALL_BODY_BYTES = 64 * 1024
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    """TTFB/TTFL per service and source (local, peer, origin), bytes, requests by status, cache hits."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["service", "source"]
        self.ttfb = Histogram(
            "lightning_services_ttfb_seconds", "Time from request to first body byte", labels,
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.ttfl = Histogram(
            "lightning_services_ttfl_seconds", "Time from request to last body byte", labels,
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.bytes = Counter("lightning_services_served_bytes", "Body bytes served", labels, registry=registry)
        self.requests = Counter(
            "lightning_services_requests", "Requests by status", ["service", "status"], registry=registry
        )
        self.cache = Counter(
            "lightning_services_cache_lookups", "Content looked up locally (hit) or fetched (miss)",
            ["service", "result"], registry=registry,
        )  # fmt: skip


@dataclass(frozen=True)
class Target:
    """What a request names: the pointer to fetch if missing, the ETag, and a file name for Content-Type."""

    pointer: Pointer
    etag: str
    name: str | None = None


class SmallObjectCache:
    """Verified bodies of small objects (≤ SMALL_BODY_BYTES), LRU within ``max_bytes``.

    Safe because content is addressed by its root: the bytes of a root never change, so an entry can only be
    missing, never wrong (bytes were verified when they were read into it)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._size = 0
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, root: bytes) -> bytes | None:
        body = self._entries.get(root)
        if body is not None:
            self._entries.move_to_end(root)
        return body

    def put(self, root: bytes, body: bytes) -> None:
        if root in self._entries or len(body) > self.max_bytes:
            return
        self._entries[root] = body
        self._size += len(body)
        while self._size > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._size -= len(old)


class ObjectServer:
    def __init__(
        self,
        service_id: int,
        blockstore: Blockstore,
        fetcher: Fetcher | None,
        metrics: ServiceMetrics | None,
        *,
        small_cache_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.service_id = service_id
        self._sid = str(service_id)
        self._bs = blockstore
        self._fetcher = fetcher
        self._metrics = metrics
        self._small = SmallObjectCache(small_cache_bytes)

    def local_root(self, target: Target) -> bytes | None:
        if target.pointer.kind == "blake3":
            root = bytes.fromhex(target.pointer.key)
            return root if self._bs.has(root) else None
        return self._bs.resolve_alias(target.pointer.alias)

    async def respond(self, request: Request, target: Target, download: Download | None = None) -> Response:
        """The answer for ``target``. ``download``: one the caller already started for it and waited on; if the
        object is not local, that one is used (its error answered) rather than another fetch started."""
        etag = target.etag[:-1] + ';verified"' if _wants_verified(request) else target.etag  # two representations
        headers = [
            ("etag", etag),
            ("cache-control", IMMUTABLE),
            ("accept-ranges", "bytes"),
            ("vary", "Accept"),
            ("x-content-type-options", "nosniff"),
        ]
        if _none_match(request, etag):
            return Response(status=304, headers=headers)
        started = trio.current_time()
        if target.pointer.kind == "blake3" and not _wants_verified(request):
            cached = self._small.get(bytes.fromhex(target.pointer.key))
            if cached is not None:
                self._count_cache("hit")
                return self._small_response(request, target, cached, headers, started)
        root = self.local_root(target)
        info = self._bs.info(root) if root is not None else None
        if info is not None:
            self._count_cache("hit")
            return self._local(request, target, info, headers, started)
        self._count_cache("miss")
        if self._fetcher is None:
            return Response.text(f"{target.pointer} is not on this node\n", status=404)
        if _wants_verified(request):
            return Response.text("verified mode needs the object cached; retry once it is\n", status=409)
        if download is None:
            try:
                download = self._fetcher.start(target.pointer)
            except FetchError as exc:
                return Response.text(
                    f"{exc}\n",
                    status=503,
                )
        elif download.spool.error is not None:
            return _error_response(target, download.spool.error)
        return await self._downloading(request, target, download, headers, started)

    # -- local ------------------------------------------------------------------------------------------------
    def _small_response(
        self, request: Request, target: Target, body: bytes, headers: list[tuple[str, str]], started: float
    ) -> Response:
        selected = _select_range(request, len(body), headers)
        if isinstance(selected, Response):
            return selected
        status, start, end = selected
        body_part = body[start:end]
        _set_type(headers, content_type(target.name, body[:512]))
        self._observe("local", started, started, _sent(request, body_part))
        return Response(status=status, headers=headers, body=body_part)

    def _local(
        self, request: Request, target: Target, info: ObjectInfo, headers: list[tuple[str, str]], started: float
    ) -> Response:
        selected = _select_range(request, info.length, headers)
        if isinstance(selected, Response):
            return selected
        status, start, end = selected
        store = self._bs.store
        try:
            store.tree(info)  # the block list against the root, before a status line is promised
            if _wants_verified(request):
                return self._verified(request, info, start, end, headers, started)
            if info.length <= SMALL_BODY_BYTES:
                whole = store.read_block(info, 0) if info.length else b""
                self._small.put(info.root, whole)
                headers = [h for h in headers if h[0] != "content-range"]  # _small_response applies the range
                return self._small_response(request, target, whole, headers, started)
            if end - start <= SMALL_BODY_BYTES and start // BLOCK_SIZE == max(end - 1, 0) // BLOCK_SIZE:
                # Within one block: read and verify it now and answer with plain bytes (one write, no streaming).
                block = store.read_block(info, start // BLOCK_SIZE) if end > start else b""
                offset = start - start % BLOCK_SIZE
                body = block[start - offset : end - offset]
                head = block[:512] if start < BLOCK_SIZE else store.peek(info)
                _set_type(headers, content_type(target.name, head))
                self._observe("local", started, started, _sent(request, body))
                return Response(status=status, headers=headers, body=body)
        except (CorruptObject, CorruptBlock) as exc:
            logger.error("refusing to serve %s: %s", info.root.hex(), exc)
            return Response.text(f"{target.pointer} failed verification on this node\n", status=503)
        _set_type(headers, content_type(target.name, store.peek(info)))
        body_iter = _Timed(self, self._bs.stream(info, start, end), started, "local")
        return Response(status=status, headers=headers, body=body_iter, content_length=end - start)

    def _verified(
        self, request: Request, info: ObjectInfo, start: int, end: int, headers: list[tuple[str, str]], started: float
    ) -> Response:
        first, last = blocks_for_byte_range(start, end, info.length) if info.length else (0, 0)
        accept = request.header("accept") or ""
        media = next((t for t in VERIFIED_TYPES if t in accept), VERIFIED_TYPES[0])
        keep = [h for h in headers if h[0] not in ("accept-ranges", "content-range")]
        chunks = self._bs.store.proof_stream(info.root, first, last)
        return Response(
            status=200, headers=[*keep, ("content-type", media)], body=_Timed(self, _aiter(chunks), started, "local")
        )

    # -- downloading ------------------------------------------------------------------------------------------
    async def _downloading(
        self, request: Request, target: Target, download: Download, headers: list[tuple[str, str]], started: float
    ) -> Response:
        spool = download.spool
        total = await spool.wait_total_len()
        if total is None:
            return _error_response(target, spool.error)
        selected = _select_range(request, total, headers)
        if isinstance(selected, Response):
            return selected
        status, start, end = selected
        try:
            rid = spool.open_reader(start)
        except Rewound:  # joined late: the bytes went by; the object is complete in moments
            await download.done.wait()
            return await self.respond(request, target)
        try:
            first = await spool.read(rid, end) if end > start else b""
        except SpoolFailed as exc:
            spool.close_reader(rid)
            return _error_response(target, exc.__cause__)
        source = download.source or "origin"
        name = target.name or download.name or None
        _set_type(headers, content_type(name, download.head))  # the object's first bytes, whatever the range

        body = _Timed(self, _SpoolBody(spool, rid, end, first), started, source)
        return Response(status=status, headers=headers, body=body, content_length=end - start)

    # -- metrics ----------------------------------------------------------------------------------------------
    def _count_cache(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.cache.labels(self._sid, result).inc()

    def _observe(self, source: str, started: float, first_at: float, size: int) -> None:
        if self._metrics is not None:
            now = trio.current_time()
            self._metrics.ttfb.labels(self._sid, source).observe(
                first_at - started if first_at > started else now - started
            )
            self._metrics.ttfl.labels(self._sid, source).observe(now - started)
            self._metrics.bytes.labels(self._sid, source).inc(size)


class _Timed:
    """A response body passed through, recording TTFB at the first chunk and TTFL at the end. Closing it closes the
    body it wraps — also when it was never iterated (a HEAD, or a client gone before the first byte), which an async
    generator would not do: a spool reader left open would hold its download back for good."""

    def __init__(
        self, server: ObjectServer, body: AsyncIterator[bytes | memoryview], started: float, source: str
    ) -> None:
        self._server = server
        self._body = body
        self._started = started
        self._source = source
        self._sent = 0
        self._first_at = started

    def __aiter__(self) -> _Timed:
        return self

    async def __anext__(self) -> bytes | memoryview:
        try:
            chunk = await self._body.__anext__()
        except StopAsyncIteration:
            self._server._observe(self._source, self._started, self._first_at, self._sent)
            raise
        except (CorruptBlock, CorruptObject) as exc:
            logger.error("aborting a response mid-way: %s", exc)
            raise
        if not self._sent:
            self._first_at = trio.current_time()
        self._sent += len(chunk)
        return chunk

    async def aclose(self) -> None:
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None:
            await aclose()


class _SpoolBody:
    """The rest of a download, read from its spool by reader ``rid``; closing it closes the reader."""

    def __init__(self, spool: Spool, rid: int, end: int, first: bytes) -> None:
        self._spool = spool
        self._rid = rid
        self._end = end
        self._first = first
        self._closed = False

    def __aiter__(self) -> _SpoolBody:
        return self

    async def __anext__(self) -> bytes:
        if self._first:
            chunk, self._first = self._first, b""
            return chunk
        chunk = await self._spool.read(self._rid, self._end) if not self._closed else b""
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._spool.close_reader(self._rid)


def _select_range(request: Request, length: int, headers: list[tuple[str, str]]) -> tuple[int, int, int] | Response:
    """What the request's ``Range`` selects of ``length`` bytes: ``(200, 0, length)``, or ``(206, start, end)`` with
    its Content-Range added to ``headers``; or the 416 answer to a range that lies outside the object."""
    try:
        byte_range = parse_range(request.header("range"), length)
    except Unsatisfiable:
        return Response(status=416, headers=[*headers, ("content-range", f"bytes */{length}")])
    if byte_range is None:
        return 200, 0, length
    start, end = byte_range
    headers.append(("content-range", f"bytes {start}-{end - 1}/{length}"))
    return 206, start, end


def _set_type(headers: list[tuple[str, str]], ctype: str) -> None:
    """Content-Type, and for types a browser would run a sandbox: stored content must not script the node's origin."""
    headers.append(("content-type", ctype))
    if _is_active(ctype):
        headers.append(("content-security-policy", "sandbox"))


def _is_active(ctype: str) -> bool:
    """HTML, and every XML type (``*/xml``, ``*/*+xml``: XHTML, SVG, Atom, RSS, XSLT, MathML …): browsers render any
    XML MIME type as a document that runs its XHTML ``<script>`` elements (WHATWG MIME Sniffing, "XML MIME type")."""
    essence = ctype.split(";")[0].strip().lower()
    return essence == "text/html" or essence.endswith(("/xml", "+xml"))


# One member of an If-None-Match list: an entity tag, weak or strong, between commas (empty members allowed).
_LIST_ETAG = re.compile(r'(?:^|,)[\s,]*(?:W/)?("[^"]*")[ \t]*(?=,|$)')


def _none_match(request: Request, etag: str) -> bool:
    """Whether If-None-Match (RFC 9110 §13.1.2) names ``etag``: ``*``, or a comma-separated list of entity tags (its
    field lines joined) of which one matches by the weak comparison (``W/"x"`` and ``"x"`` match)."""
    value = ", ".join(v for k, v in request.headers if k == "if-none-match").strip()
    if value == "*":
        return True
    return any(match.group(1) == etag for match in _LIST_ETAG.finditer(value))


def _error_response(target: Target, error: BaseException | None) -> Response:
    if target.pointer.kind == "url":  # say no more than needed: the details would map the node's network
        if isinstance(error, NotFound) and error.disabled:
            return Response.text("URL origins are disabled on this node\n", status=404)
        status = 404 if isinstance(error, NotFound) else 504 if isinstance(error, OriginTimeout) else 502
        return Response.text(f"the origin failed or its body did not match the integrity hash ({status})\n", status)
    if isinstance(error, NotFound):
        return Response.text(f"{target.pointer}: not found ({error})\n", status=404)
    if isinstance(error, OriginTimeout):
        return Response.text(f"{target.pointer}: the origin timed out ({error})\n", status=504)
    return Response.text(f"{target.pointer}: fetching failed ({error})\n", status=502)


def _sent(request: Request, body: bytes) -> int:
    """The body bytes a response of bytes sends: none for HEAD (a streamed body is counted as it is sent)."""
    return 0 if request.method == "HEAD" else len(body)


def _wants_verified(request: Request) -> bool:
    if "verified" in request.query.get("format", []):
        return True
    accept = request.header("accept") or ""
    return any(t in accept for t in VERIFIED_TYPES)


async def _aiter(chunks: Iterable[BytesLike]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk if isinstance(chunk, bytes) else bytes(chunk)
        await trio.lowlevel.checkpoint()
