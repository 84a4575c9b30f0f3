"""dag-pb blocks (PBNode/PBLink) and the UnixFS ``Data`` message inside them: a hand-written protobuf subset.

No protobuf library: the two schemas are tiny, and dag-pb wants stricter decoding than protobuf's defaults.
docs/ipfs.md shows the wire format with test vectors. In short, a protobuf message is a sequence of fields, each a
varint key ``field_number << 3 | wire_type`` then a value: wire type 0 a varint, 2 a varint length and that many
bytes, 1 and 5 eight and four fixed bytes.

dag-pb (strict, per the IPLD spec)::

    PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }     Links then Data (Data-first also accepted);
    PBLink { optional bytes Hash = 1; optional string Name = 2;         no duplicate or unknown fields; a link's
             optional uint64 Tsize = 3; }                               fields in order; Hash required, a CID.

UnixFS ``Data`` (protobuf rules: unknown fields skipped, a repeated scalar packed or not, the last value wins)::

    Data { DataType Type = 1; bytes Data = 2; uint64 filesize = 3; repeated uint64 blocksizes = 4;
           uint64 hashType = 5; uint64 fanout = 6; uint32 mode = 7; UnixTime mtime = 8; }
    UnixTime { int64 Seconds = 1; fixed32 FractionalNanoseconds = 2; }

Every decoder raises only DagPbError / UnixFsError (both BadContent) on bad input.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from lightning.ipfs._varint import BytesLike, encode_uvarint, read_pb_varint
from lightning.ipfs.cid import Cid
from lightning.ipfs.errors import DagPbError, InvalidCid, UnixFsError

__all__ = [
    "DataType",
    "PbLink",
    "PbNode",
    "UnixFsData",
    "decode_pbnode",
    "decode_unixfs",
    "encode_pbnode",
    "encode_unixfs",
]

_VARINT: Final = 0
_FIXED64: Final = 1
_BYTES: Final = 2
_FIXED32: Final = 5
FANOUT_MAX: Final = 1024
"""Largest HAMT fanout we accept (larger ones were a denial-of-service vector, CVE-2023-23625)."""


class DataType(enum.IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class PbLink:
    cid: Cid
    name: bytes | None
    """Raw UTF-8 bytes of the Name field; None when absent. Paths are matched byte for byte."""
    tsize: int | None
    """Cumulative size of the linked DAG, encoded; a hint, never trusted."""


@dataclass(frozen=True, slots=True)
class PbNode:
    links: tuple[PbLink, ...]
    data: bytes | None


@dataclass(frozen=True, slots=True)
class UnixFsData:
    type: DataType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: tuple[int, int] | None = None
    """(seconds, nanoseconds) since the epoch; nanoseconds 0 when absent."""


def decode_pbnode(block: BytesLike) -> PbNode:
    """Decode a dag-pb block strictly. Raises DagPbError."""
    links: list[PbLink] = []
    data: bytes | None = None
    links_before_data = False  # then Links, Data, Links (interleaved) is rejected
    pos, end = 0, len(block)
    try:
        while pos < end:
            key, pos = read_pb_varint(block, pos, end)
            if key == (2 << 3 | _BYTES):
                if links_before_data:
                    raise DagPbError("PBNode Links must form one contiguous group")
                start, pos = _length_delimited(block, pos, end)
                links.append(_decode_link(block, start, pos))
            elif key == (1 << 3 | _BYTES):
                if data is not None:
                    raise DagPbError("PBNode has a duplicate Data field")
                start, pos = _length_delimited(block, pos, end)
                data = bytes(block[start:pos])
                links_before_data = bool(links)
            else:
                raise DagPbError(f"PBNode has an unexpected field {key >> 3} (wire type {key & 7})")
    except ValueError as exc:
        raise DagPbError(f"malformed protobuf: {exc}") from None
    return PbNode(tuple(links), data)


def _decode_link(block: BytesLike, pos: int, end: int) -> PbLink:
    cid: Cid | None = None
    name: bytes | None = None
    tsize: int | None = None
    last_field = 0
    while pos < end:
        key, pos = read_pb_varint(block, pos, end)
        number, wire = key >> 3, key & 7
        if number <= last_field:
            raise DagPbError("PBLink fields are duplicated or out of order")
        last_field = number
        if number == 1 and wire == _BYTES:
            start, pos = _length_delimited(block, pos, end)
            try:
                cid, used = Cid.decode(block, start, pos)
            except InvalidCid as exc:
                raise DagPbError(f"PBLink Hash is not a CID: {exc}") from None
            if used != pos:
                raise DagPbError("PBLink Hash has bytes after the CID")
        elif number == 2 and wire == _BYTES:
            start, pos = _length_delimited(block, pos, end)
            name = bytes(block[start:pos])
        elif number == 3 and wire == _VARINT:
            tsize, pos = read_pb_varint(block, pos, end)
        else:
            raise DagPbError(f"PBLink has an unexpected field {number} (wire type {wire})")
    if cid is None:
        raise DagPbError("PBLink has no Hash")
    return PbLink(cid, name, tsize)


def decode_unixfs(data: BytesLike | None) -> UnixFsData:
    """Decode a PBNode's Data as UnixFS. Raises UnixFsError (also when ``data`` is None: not UnixFS)."""
    if data is None:
        raise UnixFsError("dag-pb node has no Data, so it is not UnixFS")
    varints: dict[int, int] = {}  # Type, filesize, hashType, fanout, mode
    content: bytes | None = None
    blocksizes: list[int] = []
    mtime: tuple[int, int] | None = None
    pos, end = 0, len(data)
    try:
        while pos < end:
            key, pos = read_pb_varint(data, pos, end)
            number, wire = key >> 3, key & 7
            if number == 4 and wire == _BYTES:  # packed blocksizes
                start, pos = _length_delimited(data, pos, end)
                while start < pos:
                    size, start = read_pb_varint(data, start, pos)
                    blocksizes.append(size)
            elif number == 4 and wire == _VARINT:
                size, pos = read_pb_varint(data, pos, end)
                blocksizes.append(size)
            elif number in (1, 3, 5, 6, 7) and wire == _VARINT:
                varints[number], pos = read_pb_varint(data, pos, end)
            elif number == 2 and wire == _BYTES:
                start, pos = _length_delimited(data, pos, end)
                content = bytes(data[start:pos])
            elif number == 8 and wire == _BYTES:
                start, pos = _length_delimited(data, pos, end)
                mtime = _decode_mtime(data, start, pos)
            elif 1 <= number <= 8:
                raise UnixFsError(f"UnixFS field {number} has wire type {wire}")
            else:
                pos = _skip(data, wire, pos, end)
    except ValueError as exc:
        raise UnixFsError(f"malformed UnixFS protobuf: {exc}") from None
    if 1 not in varints:
        raise UnixFsError("UnixFS Data has no Type")
    try:
        kind = DataType(varints[1])
    except ValueError:
        raise UnixFsError(f"unknown UnixFS type {varints[1]}") from None
    mode = varints.get(7)
    if mode is not None and mode >= 1 << 32:
        raise UnixFsError("UnixFS mode exceeds 32 bits")
    fanout = varints.get(6)
    if kind == DataType.HAMT_SHARD and (fanout is None or not 8 <= fanout <= FANOUT_MAX or fanout & (fanout - 1)):
        raise UnixFsError(f"HAMT fanout {fanout} is not a power of two in [8, {FANOUT_MAX}]")
    return UnixFsData(
        type=kind,
        data=content,
        filesize=varints.get(3),
        blocksizes=tuple(blocksizes),
        hash_type=varints.get(5),
        fanout=fanout,
        mode=mode,
        mtime=mtime,
    )


def _decode_mtime(data: BytesLike, pos: int, end: int) -> tuple[int, int]:
    seconds: int | None = None
    nanos = 0
    while pos < end:
        key, pos = read_pb_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 1 and wire == _VARINT:
            raw, pos = read_pb_varint(data, pos, end)
            seconds = raw - (1 << 64) if raw >= 1 << 63 else raw
        elif number == 2 and wire == _FIXED32:
            if end - pos < 4:
                raise ValueError("truncated fixed32")
            nanos = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
            if not 1 <= nanos <= 999_999_999:
                raise UnixFsError(f"UnixFS mtime nanoseconds {nanos} outside [1, 999999999]")
        else:
            pos = _skip(data, wire, pos, end)
    if seconds is None:
        raise UnixFsError("UnixFS mtime has no Seconds")
    return seconds, nanos


def _length_delimited(buf: BytesLike, pos: int, end: int) -> tuple[int, int]:
    if pos < end and buf[pos] < 0x80:  # one-byte length: most links and fields
        length, pos = buf[pos], pos + 1
    else:
        length, pos = read_pb_varint(buf, pos, end)
    if length > end - pos:
        raise ValueError("length-delimited field runs past the end")
    return pos, pos + length


def _skip(buf: BytesLike, wire: int, pos: int, end: int) -> int:
    if wire == _VARINT:
        return read_pb_varint(buf, pos, end)[1]
    if wire == _BYTES:
        return _length_delimited(buf, pos, end)[1]
    size = {_FIXED64: 8, _FIXED32: 4}.get(wire)
    if size is None:
        raise ValueError(f"wire type {wire} is not allowed")
    if end - pos < size:
        raise ValueError("truncated fixed-size field")
    return pos + size


# -- encoders (for tests, fixtures and the test gateway; canonical: Links before Data, fields in order) ----------


def _field_bytes(number: int, value: bytes) -> bytes:
    return encode_uvarint(number << 3 | _BYTES) + encode_uvarint(len(value)) + value


def _field_varint(number: int, value: int) -> bytes:
    return encode_uvarint(number << 3 | _VARINT) + encode_uvarint(value)


def encode_pbnode(node: PbNode) -> bytes:
    out = bytearray()
    for link in node.links:
        body = _field_bytes(1, link.cid.binary)
        if link.name is not None:
            body += _field_bytes(2, link.name)
        if link.tsize is not None:
            body += _field_varint(3, link.tsize)
        out += _field_bytes(2, body)
    if node.data is not None:
        out += _field_bytes(1, node.data)
    return bytes(out)


def encode_unixfs(fs: UnixFsData) -> bytes:
    out = bytearray(_field_varint(1, fs.type))
    if fs.data is not None:
        out += _field_bytes(2, fs.data)
    if fs.filesize is not None:
        out += _field_varint(3, fs.filesize)
    for size in fs.blocksizes:
        out += _field_varint(4, size)
    if fs.hash_type is not None:
        out += _field_varint(5, fs.hash_type)
    if fs.fanout is not None:
        out += _field_varint(6, fs.fanout)
    if fs.mode is not None:
        out += _field_varint(7, fs.mode)
    if fs.mtime is not None:
        seconds, nanos = fs.mtime
        body = _field_varint(1, seconds % (1 << 64))
        if nanos:
            body += encode_uvarint(2 << 3 | _FIXED32) + nanos.to_bytes(4, "little")
        out += _field_bytes(8, body)
    return bytes(out)
