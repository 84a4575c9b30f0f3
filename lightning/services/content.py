"""Service 0, content retrieval: ``GET|HEAD /services/0/blake3/<root>``, ``/services/0/ipfs/<cid>[/path]`` and
``/services/0/url/<http(s) URL>%23integrity=<sri>`` (an origin URL pinned by its Subresource-Integrity hash).

Local content streams from the blockstore; missing content is fetched (peers, then IPFS gateways) and streamed to
the client as it verifies. A *verified* mode (``Accept: application/vnd.lightning.verified`` or
``application/vnd.lightning.proof-stream``, or ``?format=verified``) sends the proof stream of
docs/blockstore-format.md so a client checks every byte with ``lightning/blockstore/verify.py``. The ETag is the
root on ``/blake3/`` paths and the CID (and path) on ``/ipfs/`` paths.
"""

from __future__ import annotations

import logging
import urllib.parse

from lightning.blockstore.component import Blockstore
from lightning.fetcher import Fetcher, FetchError, Pointer
from lightning.http.server import Request, Response
from lightning.ipfs import InvalidCid, InvalidPath, parse_cid, parse_path
from lightning.services.serve import ObjectServer, ServiceMetrics, Target

__all__ = ["ContentService", "parse_target"]

logger = logging.getLogger(__name__)

MAX_PATH_BYTES = 4096


class BadTarget(Exception):
    """The request path does not name content (→ 400)."""


def parse_target(rest: str) -> Target | None:
    """``blake3/<hex>`` or ``ipfs/<cid>[/path]`` → Target; None for another kind (404). Raises BadTarget (400)."""
    kind, _, arg = rest.partition("/")
    if kind == "blake3":
        text = arg.strip("/")
        try:
            root = bytes.fromhex(text)
        except ValueError:
            root = b""
        if len(root) != 32:
            raise BadTarget(f"bad root {text[:80]!r}: expected 64 hex digits")
        return Target(Pointer("blake3", root.hex()), f'"{root.hex()}"')
    if kind == "ipfs":
        if len(arg) > MAX_PATH_BYTES:
            raise BadTarget("path too long")
        cid_text, _, path = arg.partition("/")
        try:
            cid = parse_cid(cid_text)
            segments = parse_path(path) if path.strip("/") else ()
        except (InvalidCid, InvalidPath) as exc:
            raise BadTarget(str(exc)) from None
        joined = "/".join(segments)
        etag = f'"{cid}{"/" + urllib.parse.quote(joined) if joined else ""}"'  # header values are ASCII
        return Target(Pointer("ipfs", str(cid), joined), etag, segments[-1] if segments else None)
    if kind == "url":
        from lightning.fetcher.url_origin import parse_url_pointer

        try:
            pointer = parse_url_pointer(arg)
        except FetchError as exc:
            raise BadTarget(str(exc)) from None
        name = pointer.key.rstrip("/").rsplit("/", 1)[-1] or None
        return Target(pointer, f'"{pointer.path}"', name)
    return None


class ContentService:
    service_id = 0

    def __init__(
        self, blockstore: Blockstore, *, fetcher: Fetcher | None = None, metrics: ServiceMetrics | None = None
    ) -> None:
        self.server = ObjectServer(self.service_id, blockstore, fetcher, metrics)
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
        try:
            target = parse_target(rest)
        except BadTarget as exc:
            return Response.text(f"{exc}\n", status=400)
        if target is None:
            return Response.text(f"unknown path; use /services/{self.service_id}/blake3/<root> or /ipfs/<cid>\n", 404)
        return await self.serve_target(request, target)

    async def serve_target(self, request: Request, target: Target) -> Response:
        """Answer for one parsed target (services built on this one add their behaviour here)."""
        return await self.server.respond(request, target)
