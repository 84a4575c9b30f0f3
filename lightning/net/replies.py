"""Large replies on one stream, with the receiver's credit bounding what it must buffer (``STREAM`` kind, wire.py).

The requester grants credit in 4-byte units (u32be byte counts) on its half of the stream: ``window`` bytes at
first, then more as its reader consumes. The responder's :class:`ReplyWriter` waits for credit before it sends, and
a responder that sends beyond its credit is cut off (the stream is reset with ``ResetCode.CREDIT``). So neither
QUIC's automatic flow-control growth nor a slow consumer can make a receiver buffer more than ``window`` bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from lightning.codec import CodecError
from lightning.net.errors import PeerProtocolError, RequestTimeout
from lightning.net.transport import Stream
from lightning.net.wire import CREDIT, FrameReader, ResetCode, decode_reply, encode_ok

__all__ = ["ReplyStream", "ReplyWriter"]


class ReplyWriter:
    """The responder's side: ``await start(header)`` once, then ``await send(data)`` any number of times."""

    def __init__(self, stream: Stream, reader: FrameReader, *, max_frame_bytes: int, on_bytes: Callable[[int], None]):
        self._stream = stream
        self._reader = reader
        self._max_frame_bytes = max_frame_bytes
        self._on_bytes = on_bytes
        self._credit = 0
        self.started = False
        self.bytes_sent = 0

    async def start(self, header: Any = None) -> None:
        """Send the reply header (any encodable value). Raises CodecError if it cannot be encoded."""
        assert not self.started, "start() called twice"
        data = encode_ok(header, max_bytes=self._max_frame_bytes)
        self.started = True
        await self._stream.send(data)

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send raw bytes as the requester's credit allows. Raises ConnectionLost/StreamReset if it went away."""
        if not self.started:
            await self.start(None)
        view = memoryview(data).cast("B")
        while view:
            while self._credit <= 0:
                grant = await self._reader.read_exact(CREDIT.size)
                self._credit += CREDIT.unpack(grant)[0]
            n = min(self._credit, len(view))
            await self._stream.send(bytes(view[:n]))
            self._credit -= n
            self.bytes_sent += n
            self._on_bytes(n)
            view = view[n:]

    async def finish(self) -> None:
        if not self.started:
            await self.start(None)
        await self._stream.send(b"", end=True)


class ReplyStream:
    """The requester's side of a large reply: ``header``, then ``async for chunk in reply``."""

    def __init__(
        self,
        stream: Stream,
        reader: FrameReader,
        *,
        window: int,
        timeout_s: float,
        on_bytes: Callable[[int], None],
    ) -> None:
        self._stream = stream
        self._reader = reader
        self._window = window
        self._timeout_s = timeout_s
        self._on_bytes = on_bytes
        self._granted = 0
        self._consumed = 0
        self._ungranted = 0
        self.header: Any = None
        self.bytes_received = 0
        self.finished = False

    async def _start(self) -> None:
        self._grant(self._window)
        with trio.move_on_after(self._timeout_s) as scope:
            payload = await self._reader.read_frame()
        if scope.cancelled_caught:
            raise RequestTimeout(f"no reply header within {self._timeout_s:.1f} s")
        if payload is None:
            raise PeerProtocolError("the stream ended before its reply header")
        try:
            self.header = decode_reply(payload, max_bytes=self._reader.max_frame_bytes)
        except CodecError as exc:
            raise PeerProtocolError(f"bad reply header: {exc}") from None

    def _grant(self, n: int) -> None:
        self._granted += n
        self._stream.send_nowait(CREDIT.pack(n))

    async def receive(self) -> bytes:
        """The next bytes, ``b""`` at the end. Raises RequestTimeout if the responder stalls for ``timeout_s``,
        PeerProtocolError if it overruns its credit, ConnectionLost/StreamReset if the stream breaks."""
        if self.finished:
            return b""
        with trio.move_on_after(self._timeout_s) as scope:
            data = await self._reader.read_some()
        if scope.cancelled_caught:
            raise RequestTimeout(f"the reply stalled for {self._timeout_s:.1f} s")
        if not data:
            self.finished = True
            self._stream.send_nowait(b"", end=True)
            return b""
        self.bytes_received += len(data)
        if self.bytes_received > self._granted:
            self._stream.reset(ResetCode.CREDIT)
            raise PeerProtocolError(f"responder sent {self.bytes_received} bytes with {self._granted} of credit")
        self._on_bytes(len(data))
        self._ungranted += len(data)
        if self._ungranted >= self._window // 2:
            self._grant(self._ungranted)
            self._ungranted = 0
        return data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while data := await self.receive():
            yield data

    async def read_all(self, max_bytes: int) -> bytes:
        """Everything, up to ``max_bytes`` (PeerProtocolError beyond)."""
        out = bytearray()
        async for chunk in self:
            out += chunk
            if len(out) > max_bytes:
                raise PeerProtocolError(f"reply exceeds {max_bytes} bytes")
        return bytes(out)
