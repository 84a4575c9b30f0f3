"""Unsigned LEB128 varints, as used by multiformats (CIDs, CAR) and by protobuf.

Two readers because the two formats differ: multiformats varints are at most 9 bytes (63 bits) and must be
minimally encoded (so one CID has exactly one binary form); protobuf varints carry up to 64 bits in 10 bytes and
the protobuf rules accept padding. Both raise ``ValueError`` on bad input, and return ``None`` when the buffer ends
inside the varint, so incremental decoders can tell "wait for more bytes" from "reject".
"""

from __future__ import annotations

from typing import Final, TypeAlias

BytesLike: TypeAlias = bytes | bytearray | memoryview

MULTIFORMATS_VARINT_BYTES_MAX: Final = 9
PROTOBUF_VARINT_BYTES_MAX: Final = 10


def read_uvarint(buf: BytesLike, pos: int, end: int | None = None) -> tuple[int, int] | None:
    """Read a multiformats varint at ``buf[pos:]``: ``(value, next_pos)``, or None if ``buf`` ends inside it.

    Raises ValueError for a varint longer than 9 bytes or not minimally encoded.
    """
    if end is None:
        end = len(buf)
    value = 0
    shift = 0
    for i in range(MULTIFORMATS_VARINT_BYTES_MAX):
        if pos + i >= end:
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and i > 0:
                raise ValueError("varint is not minimally encoded")
            return value, pos + i + 1
        shift += 7
    raise ValueError(f"varint longer than {MULTIFORMATS_VARINT_BYTES_MAX} bytes")


def read_pb_varint(buf: BytesLike, pos: int, end: int) -> tuple[int, int]:
    """Read a protobuf varint at ``buf[pos:end]``: ``(value, next_pos)``.

    Raises ValueError if it is truncated, longer than 10 bytes or above 64 bits.
    """
    value = 0
    shift = 0
    for i in range(PROTOBUF_VARINT_BYTES_MAX):
        if pos + i >= end:
            raise ValueError("truncated varint")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >= 1 << 64:
                raise ValueError("varint exceeds 64 bits")
            return value, pos + i + 1
        shift += 7
    raise ValueError(f"varint longer than {PROTOBUF_VARINT_BYTES_MAX} bytes")


def encode_uvarint(value: int) -> bytes:
    """Minimal LEB128 encoding of a non-negative integer (valid for both formats within their ranges)."""
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
