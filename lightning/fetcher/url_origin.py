"""HTTP(S) origin with a Subresource-Integrity hash: ``https://example.com/file#integrity=sha256-<base64>``.

The integrity hash covers the whole body, so no byte can be called verified before the last one arrived: the body
is read (up to ``max_bytes``), checked against the SRI digest, and only then pushed into the sink. A mismatch is
:class:`OriginFailed` and nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import urllib.parse
from dataclasses import dataclass

import trio

from lightning.fetcher.config import OriginUrlConfig
from lightning.fetcher.fetcher import FetchError, NotFound, OriginFailed, Pointer, Sink
from lightning.fetcher.http_client import http_get

__all__ = ["Integrity", "UrlOrigin", "parse_url_pointer"]

ALGORITHMS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
CHUNK = 1024 * 1024


class BadPointer(FetchError):
    """A URL pointer without a usable integrity hash."""


@dataclass(frozen=True)
class Integrity:
    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> Integrity:
        algorithm, _, b64 = text.partition("-")
        if algorithm not in ALGORITHMS:
            raise BadPointer(f"integrity {text!r}: algorithm must be one of {', '.join(ALGORITHMS)}")
        try:
            digest = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise BadPointer(f"integrity {text!r}: digest is not base64") from None
        if len(digest) != ALGORITHMS[algorithm]().digest_size:
            raise BadPointer(f"integrity {text!r}: wrong digest length for {algorithm}")
        return cls(algorithm, digest)

    def __str__(self) -> str:
        return f"{self.algorithm}-{base64.b64encode(self.digest).decode()}"


def parse_url_pointer(text: str) -> Pointer:
    """``https://host/path#integrity=sha256-…`` → Pointer("url", url, integrity). Raises BadPointer."""
    url, _, fragment = text.partition("#")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadPointer(f"{url!r}: not an http(s) URL")
    # Not parse_qs: it reads '+' as a space, and base64 digests carry '+' (a fragment is not a form body).
    params = dict(part.partition("=")[::2] for part in fragment.split("&") if part)
    if "integrity" not in params:
        raise BadPointer(f"{text!r}: needs #integrity=<sha256|sha384|sha512>-<base64>")
    integrity = Integrity.parse(urllib.parse.unquote(params["integrity"]))
    return Pointer("url", url, str(integrity))


class UrlOrigin:
    """Off by default: a client naming URLs makes the node a fetching proxy. Enabled, it still refuses hosts that
    resolve to loopback, private, link-local or otherwise non-public addresses (unless allowed), connects to the
    address it checked, and tells clients only that the origin failed (no probing of what answers where)."""

    name = "origin"

    def __init__(self, config: OriginUrlConfig | None = None) -> None:
        self.config = config or OriginUrlConfig()

    def handles(self, pointer: Pointer) -> bool:
        return pointer.kind == "url"

    async def _address(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
        except OSError:
            raise OriginFailed(f"{host}: cannot resolve") from None
        addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise OriginFailed(f"{host}: no address")
        if not self.config.allow_private_addresses:
            for text in addresses:
                ip = ipaddress.ip_address(text.split("%", 1)[0])
                if not ip.is_global or ip.is_multicast:
                    raise OriginFailed(f"{host}: resolves to a non-public address; refused")
        return addresses[0]

    async def fetch(self, pointer: Pointer, sink: Sink) -> None:
        if not self.config.enabled:
            raise NotFound("URL origins are disabled on this node (origin_url.enabled)", disabled=True)
        integrity = Integrity.parse(pointer.path)
        hasher = ALGORITHMS[integrity.algorithm]()
        body = bytearray()
        address = await self._address(pointer.key)
        async with http_get(pointer.key, connect_to=address) as response:
            if response.status == 404:
                raise NotFound(f"{pointer.key}: 404")
            if response.status != 200:
                raise OriginFailed(f"{pointer.key} answered {response.status}")
            async for chunk in response.body():
                body += chunk
                hasher.update(chunk)
                if len(body) > self.config.max_bytes:
                    raise OriginFailed(f"{pointer.key}: larger than {self.config.max_bytes} bytes")
        if hasher.digest() != integrity.digest:
            raise OriginFailed(f"{pointer.key}: body does not match its integrity hash {integrity}")
        sink.set_total_len(len(body))
        view = memoryview(body)
        for pos in range(0, len(body), CHUNK):
            await sink.write(bytes(view[pos : pos + CHUNK]))
