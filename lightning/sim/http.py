"""HTTP/1.1 to a handler over in-memory streams: ``lightning.http.serve_connection`` on one end, an h11 client on
the other, so simulated clients and tests drive the real server (framing, HEAD, aborts) with no sockets.

Each request gets its own connection (``client`` is the address the handler sees). ``request`` reads the whole
response; ``open`` returns an :class:`Exchange` to read the head and then the body bit by bit. A response the server
cuts off (it closes the connection before the framed body is complete) comes back with ``complete=False`` and the
bytes that did arrive.

Usage::

    async with trio.open_nursery() as nursery:
        http = MemoryHttp(nursery, handler)
        reply = await http.get("/services/0/blake3/<root>", range="bytes=0-99")
        assert reply.status == 206 and reply.complete
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import h11
import trio
import trio.testing

from lightning.http import Handler, serve_connection

__all__ = ["Exchange", "MemoryHttp", "Reply"]

CLIENT = ("198.51.100.7", 40000)
_RECV_BYTES = 64 * 1024


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool
    """False when the connection ended before the whole body (the server aborted the response)."""

    def header(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, f"{name} appears {len(values)} times: {values}"
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]


class Exchange:
    """One request on its own connection; read the response as it comes."""

    def __init__(self, stream: trio.abc.Stream, conn: h11.Connection) -> None:
        self._stream = stream
        self._conn = conn
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.complete = False
        self.ended = False

    async def _next(self) -> h11.Event | None:
        """The next event; None once the connection ended (normally or cut short)."""
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError:  # the server closed before the message was complete
                self.ended = True
                return None
            if event is h11.NEED_DATA:
                try:
                    data = await self._stream.receive_some(_RECV_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                self._conn.receive_data(bytes(data))
                continue
            if isinstance(event, h11.ConnectionClosed):
                self.ended = True
                return None
            return event  # type: ignore[return-value]

    async def head(self) -> Exchange:
        """Wait for the status line and headers (status stays 0 if the server closed without answering)."""
        while not self.status and not self.ended:
            event = await self._next()
            if isinstance(event, h11.Response):
                self.status = event.status_code
                self.headers = [(k.decode("ascii"), v.decode("latin-1")) for k, v in event.headers]
        return self

    async def read(self, at_least: int) -> bytes:
        """Body bytes until at least ``at_least`` arrived in all (or the body ended); returns all so far."""
        await self.head()
        while len(self.body) < at_least and not self.ended and not self.complete:
            event = await self._next()
            if isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.complete = True
        return bytes(self.body)

    async def finish(self) -> Reply:
        """Read to the end of the response, close the connection and return it."""
        try:
            await self.read(1 << 62)
        finally:
            await self._stream.aclose()
        return Reply(self.status, self.headers, bytes(self.body), self.complete)


class MemoryHttp:
    def __init__(self, nursery: trio.Nursery, handler: Handler, *, client: tuple[str, int] = CLIENT) -> None:
        self._nursery = nursery
        self._handler = handler
        self.client = client

    async def open(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        client: tuple[str, int] | None = None,
    ) -> Exchange:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        serve = functools.partial(serve_connection, server_stream, self._handler, client=client or self.client)
        self._nursery.start_soon(serve)
        conn = h11.Connection(h11.CLIENT)
        data = conn.send(h11.Request(method=method, target=target, headers=[("host", "node"), *headers]))
        await client_stream.send_all(data + conn.send(h11.EndOfMessage()))
        return Exchange(client_stream, conn)

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        client: tuple[str, int] | None = None,
    ) -> Reply:
        exchange = await self.open(method, target, headers, client=client)
        return await exchange.finish()

    async def get(self, target: str, *, range: str | None = None, **kwargs: str) -> Reply:
        """GET with optional headers given as keywords (``if_none_match="..."`` → ``if-none-match``)."""
        headers = [(name.replace("_", "-"), value) for name, value in kwargs.items()]
        if range is not None:
            headers.append(("range", range))
        return await self.request("GET", target, headers)

    async def head(self, target: str, *, range: str | None = None, **kwargs: str) -> Reply:
        headers = [(name.replace("_", "-"), value) for name, value in kwargs.items()]
        if range is not None:
            headers.append(("range", range))
        return await self.request("HEAD", target, headers)
