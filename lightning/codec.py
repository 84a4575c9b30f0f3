"""Canonical msgpack encoding and length-prefixed framing.

Everything that is hashed, signed or sent to a peer goes through :func:`encode`, which produces exactly one byte string
for one value: map keys sorted (by their encoded bytes), no floats, ``bytes`` and ``str`` kept apart (bin vs str
families), integers in their shortest form (msgpack's own rule). :func:`decode` accepts only that canonical form, so a
peer cannot make two different byte strings mean the same signed value.

Frames on a stream are ``u32be length || payload`` with a maximum payload size; :class:`FrameDecoder` is sans-IO.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from lightning.errors import LightningError

# Integers outside msgpack's 64-bit range (FLK amounts are u128 in base units) travel as an ext type holding the
# minimal big-endian magnitude; 64-bit integers must use msgpack's native forms, so the encoding stays unique.
EXT_BIG_POS = 1
EXT_BIG_NEG = 2
MAX_BIG_BYTES = 32

__all__ = [
    "FRAME_HEADER",
    "MAX_FRAME_BYTES",
    "CodecError",
    "FrameDecoder",
    "FrameTooLarge",
    "NonCanonical",
    "decode",
    "decode_trusted",
    "decode_with",
    "encode",
    "frame",
]

MAX_FRAME_BYTES = 4 * 1024 * 1024
FRAME_HEADER = struct.Struct(">I")
# Nesting deeper than this is never produced by our own messages; a peer that sends it is probing us.
MAX_DEPTH = 32
# No message of ours has a list or map this long; a peer's 4 MiB frame of a million empty maps costs seconds of CPU
# and hundreds of MB to decode, so one container is capped far below the byte limit.
MAX_CONTAINER_ITEMS = 65_536


class CodecError(LightningError):
    """Bytes that do not decode to a canonical value."""


class NonCanonical(CodecError):
    """Bytes that decode, but are not the canonical encoding of what they decode to."""


class FrameTooLarge(CodecError):
    """A frame longer than the allowed maximum."""


def _check(value: Any, depth: int = 0) -> Any:
    """Validate a value for encoding and return it with maps' keys sorted canonically."""
    if depth > MAX_DEPTH:
        raise CodecError(f"value nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str | bytes):
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
            magnitude = abs(value)
            size = (magnitude.bit_length() + 7) // 8
            if size > MAX_BIG_BYTES:
                raise CodecError(f"integer of {size} bytes exceeds the {MAX_BIG_BYTES}-byte limit")
            return msgpack.ExtType(EXT_BIG_POS if value > 0 else EXT_BIG_NEG, magnitude.to_bytes(size, "big"))
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, float):
        raise CodecError("floats are not allowed in canonical encoding")
    if isinstance(value, list | tuple):
        return [_check(v, depth + 1) for v in value]
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str | int | bytes) or isinstance(k, bool):
                raise CodecError(f"map key of type {type(k).__name__} is not allowed")
            if isinstance(k, int) and not -(2**63) <= k < 2**64:
                raise CodecError(f"map key {k} does not fit in 64 bits")
            items.append((_pack(k), k, _check(v, depth + 1)))
        items.sort(key=lambda item: item[0])
        for a, b in itertools.pairwise(items):
            if a[0] == b[0]:
                raise CodecError(f"duplicate map key {a[1]!r}")
        return _SortedMap((k, v) for _, k, v in items)
    raise CodecError(f"type {type(value).__name__} cannot be encoded")


class _SortedMap(dict[Any, Any]):
    """A dict whose insertion order is the canonical order (msgpack packs dicts in iteration order)."""


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, strict_types=False)  # type: ignore[no-any-return]


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically. Raises :class:`CodecError` for floats, unsupported types, or bad keys."""
    return _pack(_check(value))


def _ext_hook(code: int, data: bytes) -> int:
    # A non-minimal magnitude (empty, leading zeros, or fitting in 64 bits) decodes to a number whose canonical
    # encoding is other bytes, so :func:`decode`'s re-encoding check refuses it; trusted records never hold one.
    if code == EXT_BIG_POS:
        return int.from_bytes(data, "big")
    if code == EXT_BIG_NEG:
        return -int.from_bytes(data, "big")
    raise CodecError(f"unknown msgpack ext type {code}")


def _unpack(data: bytes, **limits: int) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True, ext_hook=_ext_hook, **limits)
    except CodecError:
        raise
    except Exception as exc:  # msgpack raises several undocumented types on garbage (and TypeError on list keys)
        raise CodecError(f"malformed msgpack ({type(exc).__name__}: {exc or 'no detail'})") from None


def decode(data: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Decode canonical bytes. Raises :class:`CodecError` (or :class:`NonCanonical`) on anything else."""
    return decode_with(encode, data, max_bytes=max_bytes)


def decode_with(encoder: Callable[[Any], bytes], data: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """:func:`decode`, checking the canonical form with ``encoder``, which must be :func:`encode` or a function that
    returns the same bytes and raises :class:`CodecError` on the same values (``lightning.state.fastcodec``'s
    ``encode_fast``): then both accept the same bytes, return the same values and raise the same errors.

    The bytes are parsed within the size limits, then re-encoded; only bytes equal to the canonical encoding of
    their value pass, which also refuses unsorted or repeated map keys, non-minimal integers and big-integer
    magnitudes, floats, and keys that are not str, bytes or 64-bit integers. The messages are part of the chain's
    receipts (a transaction that does not decode is recorded with one): changing one changes the state machine."""
    if len(data) > max_bytes:
        raise FrameTooLarge(f"{len(data)} bytes exceed the {max_bytes}-byte limit")
    value = _unpack(
        data,
        max_str_len=max_bytes,
        max_bin_len=max_bytes,
        max_array_len=min(max_bytes, MAX_CONTAINER_ITEMS),
        max_map_len=min(max_bytes, MAX_CONTAINER_ITEMS),
        max_ext_len=MAX_BIG_BYTES,
    )
    try:
        again = encoder(value)
    except CodecError as exc:
        raise NonCanonical(f"value is not canonical: {exc}") from None
    except TypeError as exc:  # defensive: no value msgpack returns makes either encoder raise it
        raise CodecError(f"map key not allowed ({exc})") from None
    if again != data:
        raise NonCanonical("bytes are not the canonical encoding of their value")
    return value


def decode_trusted(data: bytes) -> Any:
    """Decode bytes this node wrote itself (its own LMDB records) without the canonical-form check.

    Only for data that never came from a peer: it skips the re-encoding that :func:`decode` does to reject
    non-canonical input, which costs as much as the decoding itself. Raises :class:`CodecError` on garbage."""
    return _unpack(data)


def frame(payload: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Prefix ``payload`` with its u32be length."""
    if len(payload) > max_bytes:
        raise FrameTooLarge(f"frame of {len(payload)} bytes exceeds the {max_bytes}-byte limit")
    return FRAME_HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Sans-IO splitter of ``u32be length || payload`` frames.

    Feed bytes in any chunking with :meth:`feed`; iterate complete payloads. A length above ``max_bytes`` raises
    :class:`FrameTooLarge` as soon as the header arrives, before the payload is buffered.
    """

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self._max = max_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buf += data
        while True:
            if len(self._buf) < FRAME_HEADER.size:
                return
            (length,) = FRAME_HEADER.unpack_from(self._buf)
            if length > self._max:
                raise FrameTooLarge(f"peer announced a {length}-byte frame; the limit is {self._max}")
            end = FRAME_HEADER.size + length
            if len(self._buf) < end:
                return
            payload = bytes(self._buf[FRAME_HEADER.size : end])
            del self._buf[:end]
            yield payload

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def at_boundary(self) -> bool:
        """True when no partial frame is pending (a stream may end cleanly here)."""
        return not self._buf
