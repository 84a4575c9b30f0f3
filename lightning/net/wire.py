"""Stream framing of the pool (docs/net.md): scopes, stream kinds, replies, credit. Sans-IO except ``FrameReader``.

Every pool stream starts with a two-byte preamble ``kind, scope``; what follows depends on the kind:

* ``MESSAGES`` (unidirectional, one per scope and direction, long-lived): frames, each a canonical-msgpack message.
* ``REQUEST`` (bidirectional, one per request): the requester sends one frame and ends its half; the responder
  sends one reply frame (``{"ok": value}`` or ``{"err": code, "msg": text}``) and ends its half.
* ``STREAM`` (bidirectional, one per large reply): the requester sends one frame, then 4-byte credit grants
  (u32be, bytes it is ready to receive); the responder sends one reply frame (the header, or an error), then raw
  bytes within the granted credit, then ends its half.

Frames are ``u32be length || payload`` (``lightning.codec.frame``).
"""

from __future__ import annotations

import enum
import struct
from typing import Any, Final

from lightning.codec import FRAME_HEADER, CodecError, decode, encode, frame
from lightning.net.errors import PeerProtocolError, Rejected, rejection_from_code
from lightning.net.transport import Stream

__all__ = [
    "CREDIT",
    "PREAMBLE_BYTES",
    "CloseCode",
    "FrameReader",
    "ResetCode",
    "Scope",
    "StreamKind",
    "decode_reply",
    "encode_error",
    "encode_ok",
    "parse_preamble",
    "preamble",
]

PREAMBLE_BYTES: Final = 2
CREDIT: Final = struct.Struct(">I")
MAX_ERROR_TEXT: Final = 512


class Scope(enum.IntEnum):
    """Who a stream is for. Never renumber; add new scopes at the end."""

    BROADCAST = 1
    BLOCKS = 2
    CONSENSUS = 3
    SYNC = 4
    TXS = 5  # client transactions forwarded towards the committee (lightning/sync/txs.py)


class StreamKind(enum.IntEnum):
    MESSAGES = 1
    REQUEST = 2
    STREAM = 3


class ResetCode(enum.IntEnum):
    """Application error codes of RESET_STREAM / STOP_SENDING."""

    CANCELLED = 0x100
    PROTOCOL = 0x101
    REFUSED = 0x102  # a second message stream for one scope, or the scope is not admitted
    CREDIT = 0x103  # the responder sent more than the requester granted
    FAILED = 0x104  # the responder's handler failed after it started the reply


class CloseCode(enum.IntEnum):
    """Application error codes of CONNECTION_CLOSE."""

    NORMAL = 0
    UNAUTHORIZED = 0x201
    PROTOCOL = 0x202
    POOL_FULL = 0x203
    DUPLICATE = 0x204
    IDLE = 0x205
    SHUTDOWN = 0x206
    BANNED = 0x207


def preamble(kind: StreamKind, scope: Scope) -> bytes:
    return bytes((kind, scope))


def parse_preamble(data: bytes) -> tuple[StreamKind, Scope]:
    """Raises PeerProtocolError for an unknown kind or scope."""
    assert len(data) == PREAMBLE_BYTES
    try:
        return StreamKind(data[0]), Scope(data[1])
    except ValueError:
        raise PeerProtocolError(f"unknown stream kind {data[0]} or scope {data[1]}") from None


def encode_ok(value: Any, *, max_bytes: int) -> bytes:
    """A framed success reply. Raises CodecError (the value is not encodable, or too large)."""
    return frame(encode({"ok": value}), max_bytes=max_bytes)


def encode_error(error: Rejected) -> bytes:
    text = str(error)[:MAX_ERROR_TEXT]
    return frame(encode({"err": error.code, "msg": text}))


def decode_reply(payload: bytes, *, max_bytes: int) -> Any:
    """The value of a reply frame; raises the Rejected it carries, or PeerProtocolError."""
    try:
        reply = decode(payload, max_bytes=max_bytes)
    except CodecError as exc:
        raise PeerProtocolError(f"undecodable reply: {exc}") from None
    if isinstance(reply, dict) and set(reply) == {"ok"}:
        return reply["ok"]
    if (
        isinstance(reply, dict)
        and set(reply) == {"err", "msg"}
        and isinstance(reply["err"], str)
        and isinstance(reply["msg"], str)
    ):
        raise rejection_from_code(reply["err"][:64], reply["msg"][:MAX_ERROR_TEXT])
    raise PeerProtocolError("a reply must be {ok: value} or {err: code, msg: text}")


class FrameReader:
    """Reads preambles, frames and raw bytes from a :class:`Stream`, keeping what it read ahead."""

    def __init__(self, stream: Stream, *, max_frame_bytes: int) -> None:
        self.stream = stream
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self.eof = False
        self.bytes_read = 0

    async def _fill(self) -> bool:
        if self.eof:
            return False
        data = await self.stream.receive()
        if not data:
            self.eof = True
            return False
        self.bytes_read += len(data)
        self._buf += data
        return True

    async def read_exact(self, n: int) -> bytes:
        """Exactly ``n`` bytes; PeerProtocolError if the stream ends first."""
        while len(self._buf) < n:
            if not await self._fill():
                raise PeerProtocolError(f"stream ended after {len(self._buf)} of {n} expected bytes")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def read_frame(self) -> bytes | None:
        """The next frame's payload, None at a clean end of stream. PeerProtocolError for an oversize or cut
        frame."""
        while len(self._buf) < FRAME_HEADER.size:
            if not await self._fill():
                if self._buf:
                    raise PeerProtocolError("stream ended inside a frame header")
                return None
        (length,) = FRAME_HEADER.unpack_from(self._buf)
        if length > self.max_frame_bytes:
            raise PeerProtocolError(f"peer announced a {length}-byte frame; the limit is {self.max_frame_bytes}")
        payload = await self.read_exact(FRAME_HEADER.size + length)
        return payload[FRAME_HEADER.size :]

    async def read_message(self) -> Any:
        """The next frame decoded (canonical msgpack); PeerProtocolError if it is missing or undecodable."""
        payload = await self.read_frame()
        if payload is None:
            raise PeerProtocolError("stream ended before its frame")
        try:
            return decode(payload, max_bytes=self.max_frame_bytes)
        except CodecError as exc:
            raise PeerProtocolError(f"undecodable frame: {exc}") from None

    async def read_some(self) -> bytes:
        """Buffered bytes if any, else the next bytes received; ``b""`` at the end of the stream."""
        if self._buf:
            out = bytes(self._buf)
            self._buf.clear()
            return out
        if self.eof:
            return b""
        data = await self.stream.receive()
        if not data:
            self.eof = True
        self.bytes_read += len(data)
        return data

    async def expect_end(self) -> None:
        """The peer must end its half now (nothing more may follow)."""
        if self._buf or await self._fill():
            raise PeerProtocolError("unexpected bytes after the last frame")
