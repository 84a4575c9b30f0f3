"""Service 0, content retrieval: ``GET|HEAD /services/0/blake3/<root>`` (and ``/ipfs/<cid>`` once the fetcher lands).

Bytes stream to the client as they are read and verified (each 256 KiB block against its hash, the block list
against the root), never buffered whole. ``Range`` (206, 416), ``HEAD``, ``ETag`` (the root), ``If-None-Match``
(304), ``Content-Type`` sniffed from the first bytes. A *verified* mode (``Accept:
application/vnd.lightning.verified`` or ``application/vnd.lightning.proof-stream``, or ``?format=verified``) sends
the proof stream of docs/blockstore-format.md instead, so a client can check every byte itself with
``lightning/blockstore/verify.py``; with a ``Range`` it carries the blocks that cover the range.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram

from lightning.blockstore import BLOCK_SIZE, CorruptBlock, CorruptObject, blocks_for_byte_range
from lightning.blockstore.component import Blockstore
from lightning.blockstore.verify import MEDIA_TYPE, BytesLike
from lightning.http.server import Request, Response
from lightning.services.mime import content_type
from lightning.services.ranges import Unsatisfiable, parse_range

__all__ = ["ContentService", "ServiceMetrics"]

logger = logging.getLogger(__name__)

VERIFIED_TYPES = ("application/vnd.lightning.verified", MEDIA_TYPE)
IMMUTABLE = "public, max-age=31536000, immutable"
SMALL_BODY_BYTES = 64 * 1024
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    """TTFB/TTFL per service and source (local, peer, origin), bytes, requests by status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["service", "source"]
        self.ttfb = Histogram(
            "lightning_services_ttfb_seconds",
            "Time from request to first body byte",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttfl = Histogram(
            "lightning_services_ttfl_seconds",
            "Time from request to last body byte",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.bytes = Counter("lightning_services_served_bytes", "Body bytes served", labels, registry=registry)
        self.requests = Counter(
            "lightning_services_requests", "Requests by status", ["service", "status"], registry=registry
        )
        # Children for the hot path (labels() costs a lock and a dict lookup per call).
        self.ttfb_local = self.ttfb.labels("0", "local")
        self.ttfl_local = self.ttfl.labels("0", "local")
        self.bytes_local = self.bytes.labels("0", "local")


class ContentService:
    service_id = 0

    def __init__(self, blockstore: Blockstore, *, metrics: ServiceMetrics | None = None) -> None:
        self._bs = blockstore
        self._metrics = metrics

    async def handle(self, request: Request) -> Response:
        response = await self._route(request)
        if self._metrics is not None:
            self._metrics.requests.labels(str(self.service_id), str(response.status)).inc()
        return response

    async def _route(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(status=405, headers=[("allow", "GET, HEAD")], body=b"")
        rest = request.path.split("/", 3)[3] if request.path.count("/") >= 3 else ""
        kind, _, arg = rest.partition("/")
        if kind == "blake3":
            return await self._blake3(request, arg)
        if kind == "ipfs":
            return Response.text("IPFS retrieval is not available on this node yet; use /blake3/<root>\n", status=501)
        return Response.text("unknown path; use /services/0/blake3/<root>\n", status=404)

    async def _blake3(self, request: Request, arg: str) -> Response:
        text = arg.strip("/")
        try:
            root = bytes.fromhex(text)
        except ValueError:
            root = b""
        if len(root) != 32:
            return Response.text(f"bad root {text[:80]!r}: expected 64 hex digits\n", status=400)
        info = self._bs.info(root)
        if info is None:
            return Response.text(f"object {text} not found\n", status=404)
        etag = f'"{root.hex()}"'
        headers = [("etag", etag), ("cache-control", IMMUTABLE), ("accept-ranges", "bytes")]
        if request.header("if-none-match") in (etag, "*"):
            return Response(status=304, headers=headers)
        try:
            byte_range = parse_range(request.header("range"), info.length)
        except Unsatisfiable:
            return Response(status=416, headers=[*headers, ("content-range", f"bytes */{info.length}")])
        start, end = byte_range if byte_range is not None else (0, info.length)
        started = trio.current_time()
        if _wants_verified(request):
            return self._verified(request, root, info.length, start, end, headers, started)
        store = self._bs.store
        status = 200
        if byte_range is not None:
            status = 206
            headers.append(("content-range", f"bytes {start}-{end - 1}/{info.length}"))
        try:
            store.tree(info)  # the block list against the root, before a status line is promised
            if end - start <= SMALL_BODY_BYTES and start // BLOCK_SIZE == max(end - 1, 0) // BLOCK_SIZE:
                # Within one block: read and verify it now and answer with plain bytes (one write, no streaming).
                block = store.read_block(info, start // BLOCK_SIZE) if end > start else b""
                offset = start - start % BLOCK_SIZE
                body = block[start - offset : end - offset]
                headers.append(("content-type", content_type(None, block[:512] if start < BLOCK_SIZE else b"")))
                self._record_small(started, len(body))
                return Response(status=status, headers=headers, body=body)
        except (CorruptObject, CorruptBlock) as exc:
            logger.error("refusing to serve %s: %s", root.hex(), exc)
            return Response.text(f"object {text} failed verification on this node\n", status=503)
        headers.append(("content-type", content_type(None, store.peek(info))))
        stream = self._timed(self._bs.stream(info, start, end), started, "local")
        return Response(status=status, headers=headers, body=stream, content_length=end - start)

    def _record_small(self, started: float, size: int) -> None:
        if self._metrics is not None:
            elapsed = trio.current_time() - started
            self._metrics.ttfb_local.observe(elapsed)
            self._metrics.ttfl_local.observe(elapsed)
            self._metrics.bytes_local.inc(size)

    def _verified(
        self,
        request: Request,
        root: bytes,
        length: int,
        start: int,
        end: int,
        headers: list[tuple[str, str]],
        started: float,
    ) -> Response:
        first, last = blocks_for_byte_range(start, end, length) if length else (0, 0)
        accept = request.header("accept") or ""
        media = next((t for t in VERIFIED_TYPES if t in accept), VERIFIED_TYPES[0])
        headers = [h for h in headers if h[0] != "accept-ranges"] + [("content-type", media)]
        chunks = self._bs.store.proof_stream(root, first, last)
        return Response(status=200, headers=headers, body=self._timed(_aiter(chunks), started, "local"))

    async def _timed(
        self, body: AsyncIterator[bytes | memoryview], started: float, source: str
    ) -> AsyncIterator[bytes | memoryview]:
        """Pass a body through, recording TTFB at the first chunk and TTFL at the end."""
        sent = 0
        first = True
        try:
            async for chunk in body:
                if first and self._metrics is not None:
                    self._metrics.ttfb.labels("0", source).observe(trio.current_time() - started)
                first = False
                sent += len(chunk)
                yield chunk
        except (CorruptBlock, CorruptObject) as exc:
            logger.error("aborting a response mid-way: %s", exc)
            raise
        if self._metrics is not None:
            self._metrics.ttfl.labels("0", source).observe(trio.current_time() - started)
            self._metrics.bytes.labels("0", source).inc(sent)


def _wants_verified(request: Request) -> bool:
    if "verified" in request.query.get("format", []):
        return True
    accept = request.header("accept") or ""
    return any(t in accept for t in VERIFIED_TYPES)


async def _aiter(chunks: Iterable[BytesLike]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk if isinstance(chunk, bytes) else bytes(chunk)
        await trio.lowlevel.checkpoint()
