"""A small streaming HTTP/1.1 GET client on trio + h11 (origins: IPFS gateways, https URLs).

One request per connection (origins are few and far; keeping it simple beats pooling here), TLS for https through
trio's SSLStream, limits on the response head, redirects not followed (a gateway that redirects is misconfigured
for trustless retrieval). Errors are :class:`OriginFailed`.
"""

from __future__ import annotations

import contextlib
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import h11
import trio

from lightning.fetcher.fetcher import OriginFailed

__all__ = ["HttpResponse", "http_get"]

RECV_BYTES = 256 * 1024
MAX_HEAD_BYTES = 64 * 1024
_SSL: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    global _SSL
    if _SSL is None:
        _SSL = ssl.create_default_context()
    return _SSL


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    _conn: h11.Connection
    _stream: trio.abc.Stream
    url: str

    async def body(self) -> AsyncIterator[bytes]:
        """The body in chunks as they arrive. Raises OriginFailed if the connection breaks mid-body."""
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self._stream.receive_some(RECV_BYTES)
                except (OSError, trio.BrokenResourceError) as exc:
                    raise OriginFailed(f"{self.url}: connection lost mid-body ({exc})") from None
                try:
                    self._conn.receive_data(bytes(data))
                except h11.RemoteProtocolError as exc:
                    raise OriginFailed(f"{self.url}: bad HTTP ({exc})") from None
                continue
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise OriginFailed(f"{self.url}: connection closed mid-body")

    async def read_all(self, limit: int) -> bytes:
        out = bytearray()
        async for chunk in self.body():
            out += chunk
            if len(out) > limit:
                raise OriginFailed(f"{self.url}: body larger than {limit} bytes")
        return bytes(out)


@contextlib.asynccontextmanager
async def http_get(
    url: str, *, headers: dict[str, str] | None = None, connect_to: str | None = None
) -> AsyncIterator[HttpResponse]:
    """Open ``GET url``; yields the response once its head arrived. ``connect_to``: the IP address to connect to
    (already resolved and checked by the caller); the URL's host name still goes in Host and TLS SNI. Raises
    OriginFailed."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OriginFailed(f"{url}: not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        tcp = await trio.open_tcp_stream(connect_to or parts.hostname, port)
        if parts.scheme == "https":
            stream: trio.abc.Stream = trio.SSLStream(tcp, _ssl_context(), server_hostname=parts.hostname)
        else:
            stream = tcp
    except (OSError, trio.BrokenResourceError) as exc:
        raise OriginFailed(f"{url}: cannot connect ({exc})") from None
    async with stream:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        hdrs = [("host", host), ("user-agent", "lightning-py"), ("connection", "close")]
        hdrs += list((headers or {}).items())
        try:
            await stream.send_all(conn.send(h11.Request(method="GET", target=target, headers=hdrs)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(bytes(await stream.receive_some(RECV_BYTES)))
                    continue
                if isinstance(event, h11.Response):
                    break
                if isinstance(event, h11.ConnectionClosed):
                    raise OriginFailed(f"{url}: closed before answering")
        except (OSError, trio.BrokenResourceError) as exc:
            raise OriginFailed(f"{url}: {exc}") from None
        except h11.RemoteProtocolError as exc:
            raise OriginFailed(f"{url}: bad HTTP ({exc})") from None
        response_headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        yield HttpResponse(event.status_code, response_headers, conn, stream, url)
