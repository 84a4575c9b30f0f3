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
from collections.abc import Iterator
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


def _pairs_hook(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    previous: bytes | None = None
    for k, v in pairs:
        if isinstance(k, list | dict) or k is None or isinstance(k, bool | float):
            raise CodecError(f"map key of type {type(k).__name__} is not allowed")
        packed = _pack(k)
        if previous is not None and packed <= previous:
            raise NonCanonical("map keys are not in canonical (sorted, unique) order")
        previous = packed
        result[k] = v
    return result


def _ext_hook(code: int, data: bytes) -> int:
    if code not in (EXT_BIG_POS, EXT_BIG_NEG):
        raise CodecError(f"unknown msgpack ext type {code}")
    if not data or data[0] == 0:
        raise NonCanonical("big integer magnitude is empty or has leading zero bytes")
    magnitude = int.from_bytes(data, "big")
    value = magnitude if code == EXT_BIG_POS else -magnitude
    if -(2**63) <= value < 2**64:
        raise NonCanonical("big integer fits in 64 bits and must use the native encoding")
    return value


def decode(data: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Decode canonical bytes. Raises :class:`CodecError` (or :class:`NonCanonical`) on anything else."""
    if len(data) > max_bytes:
        raise FrameTooLarge(f"{len(data)} bytes exceed the {max_bytes}-byte limit")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            use_list=True,
            object_pairs_hook=_pairs_hook,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=min(max_bytes, MAX_CONTAINER_ITEMS),
            max_map_len=min(max_bytes, MAX_CONTAINER_ITEMS),
            max_ext_len=MAX_BIG_BYTES,
            ext_hook=_ext_hook,
        )
    except CodecError:
        raise
    except Exception as exc:  # msgpack raises several undocumented types on garbage
        raise CodecError(f"malformed msgpack ({type(exc).__name__}: {exc or 'no detail'})") from None
    try:
        again = encode(value)
    except CodecError as exc:
        raise NonCanonical(f"value is not canonical: {exc}") from None
    if again != data:
        raise NonCanonical("bytes are not the canonical encoding of their value")
    return value


def decode_trusted(data: bytes) -> Any:
    """Decode bytes this node wrote itself (its own LMDB records) without the canonical-form check.

    Only for data that never came from a peer: it skips the re-encoding that :func:`decode` does to reject
    non-canonical input, which costs as much as the decoding itself. Raises :class:`CodecError` on garbage."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    except CodecError:
        raise
    except Exception as exc:  # disk corruption
        raise CodecError(f"malformed msgpack ({type(exc).__name__}: {exc or 'no detail'})") from None


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
