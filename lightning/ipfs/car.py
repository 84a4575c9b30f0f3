"""CAR (content-addressed archive) streams, v1 and v2: a sans-IO incremental decoder and a small encoder.

CARv1 is ``varint(n) header[n]`` then sections ``varint(n) cid block`` (the section length ``n`` covers both; the
CID is self-delimiting). The header is dag-cbor ``{"version": 1, "roots": [CID, …]}``. CARv2 wraps a CARv1:
an 11-byte pragma (a CARv1 header claiming version 2), a 40-byte header (16 bytes of characteristics, then
little-endian u64 data offset, data size, index offset), padding, the inner CARv1 at the data offset, then an
index we ignore (we stream; we never seek).

Theory of operation: :class:`CarDecoder` is fed bytes in chunks of any size and returns the blocks completed by
each chunk, every one already verified against its CID (``verify_block``), so a corrupted or swapped block
stops the stream at that block. It buffers at most one section plus one chunk. States::

    HEADER       need varint + header bytes      -> SECTIONS (v1) | V2_HEADER (pragma)
    V2_HEADER    need 40 bytes                   -> V2_PADDING
    V2_PADDING   skip to the data offset         -> HEADER (inner, must be v1, bounded by the data size)
    SECTIONS     need varint + section bytes     -> SECTIONS | DONE (v2: data size reached)
    DONE         ignore the rest (a v2 index)

:meth:`CarDecoder.finish` says whether the stream ended cleanly. Limits (header, block and section sizes,
padding) are checked before bytes are buffered.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lightning.ipfs._varint import BytesLike, encode_uvarint, read_uvarint
from lightning.ipfs.cid import DIGEST_BYTES_MAX, Block, Cid, verify_block
from lightning.ipfs.errors import CarError, CarTruncated, InvalidCid, LimitExceeded

__all__ = [
    "BLOCK_BYTES_MAX",
    "HEADER_BYTES_MAX",
    "CarDecoder",
    "CarHeader",
    "encode_car",
    "encode_car_header",
    "encode_car_section",
]

BLOCK_BYTES_MAX: Final = 2 * 1024 * 1024
"""Largest block accepted by default (the size IPFS peers exchange; ipfs-car writes 1 MiB chunks)."""
HEADER_BYTES_MAX: Final = 64 * 1024
CID_BYTES_MAX: Final = 4 * 9 + DIGEST_BYTES_MAX
V2_PRAGMA: Final = bytes.fromhex("0aa16776657273696f6e02")
_V2_HEADER: Final = struct.Struct("<16sQQQ")
_CBOR_DEPTH_MAX: Final = 8


@dataclass(frozen=True, slots=True)
class CarHeader:
    version: int
    """1 or 2 (the container); blocks always come from the CARv1 payload."""
    roots: tuple[Cid, ...]


class _State(enum.Enum):
    HEADER = "header"
    V2_HEADER = "v2 header"
    V2_PADDING = "v2 padding"
    SECTIONS = "sections"
    DONE = "done"


class CarDecoder:
    """Incremental CAR v1/v2 decoder yielding verified blocks (see the module docstring)."""

    def __init__(self, *, header_bytes_max: int = HEADER_BYTES_MAX, block_bytes_max: int = BLOCK_BYTES_MAX) -> None:
        self._header_bytes_max = header_bytes_max
        self._block_bytes_max = block_bytes_max
        self._buf = bytearray()
        self._pos = 0
        self._offset = 0  # absolute stream offset of self._buf[self._pos]
        self._state = _State.HEADER
        self._header: CarHeader | None = None
        self._inner = False  # parsing the CARv1 inside a CARv2
        self._data_end: int | None = None  # v2: absolute offset where the inner CARv1 ends
        self._skip = 0
        self.blocks_decoded = 0
        self.bytes_decoded = 0

    @property
    def header(self) -> CarHeader | None:
        """The header, once decoded (for CARv2: version 2 with the inner CARv1's roots)."""
        return self._header

    def feed(self, data: BytesLike) -> list[Block]:
        """Take the next bytes of the stream; return the blocks they complete, in stream order.

        Raises CarError (malformed), LimitExceeded, BlockMismatch, Unsupported (a hash function we refuse).
        """
        if self._state is _State.DONE:
            return []
        self._buf += data
        out: list[Block] = []
        try:
            while self._step(out):
                pass
        finally:
            del self._buf[: self._pos]
            self._pos = 0
        return out

    def finish(self) -> CarHeader:
        """The stream ended: return the header, or raise CarTruncated if it stopped inside the header or a
        section (or, for CARv2, before the declared data size)."""
        if self._header is None or self._state not in (_State.SECTIONS, _State.DONE) or self._available():
            raise CarTruncated(
                f"CAR stream ended in its {self._state.value} after {self._offset + self._available()} bytes"
            )
        if self._data_end is not None and self._state is not _State.DONE:
            raise CarTruncated("CARv2 stream ended before its declared data size")
        return self._header

    # -- states ---------------------------------------------------------------------------------------------

    def _available(self) -> int:
        return len(self._buf) - self._pos

    def _consume(self, n: int) -> None:
        self._pos += n
        self._offset += n

    def _varint(self, limit: int, what: str) -> tuple[int, int] | None:
        """(value, varint length) at the cursor, or None if incomplete; enforces ``value <= limit``."""
        try:
            got = read_uvarint(self._buf, self._pos)
        except ValueError as exc:
            raise CarError(f"bad {what} length at byte {self._offset}: {exc}") from None
        if got is None:
            return None
        value, end = got
        if value > limit:
            raise LimitExceeded(f"CAR {what} of {value} bytes at byte {self._offset} (limit {limit})")
        return value, end - self._pos

    def _step(self, out: list[Block]) -> bool:
        state = self._state
        if state is _State.SECTIONS:
            return self._section(out)
        if state is _State.HEADER:
            return self._read_header()
        if state is _State.V2_HEADER:
            if self._available() < _V2_HEADER.size:
                return False
            _, data_offset, data_size, _ = _V2_HEADER.unpack_from(self._buf, self._pos)
            self._consume(_V2_HEADER.size)
            padding = data_offset - self._offset
            if padding < 0 or padding > self._header_bytes_max:
                raise CarError(f"CARv2 data offset {data_offset} is out of range")
            self._skip = padding
            self._data_end = data_offset + data_size
            self._state = _State.V2_PADDING
            return True
        if state is _State.V2_PADDING:
            n = min(self._skip, self._available())
            self._consume(n)
            self._skip -= n
            if self._skip:
                return False
            self._inner = True
            self._state = _State.HEADER
            return True
        return False

    def _read_header(self) -> bool:
        got = self._varint(self._header_bytes_max, "header")
        if got is None:
            return False
        length, skip = got
        if self._available() < skip + length:
            return False
        start = self._pos + skip
        raw = bytes(self._buf[start : start + length])
        self._consume(skip + length)
        version, roots = _parse_header(raw)
        if version == 2 and not self._inner:
            if encode_uvarint(length) + raw != V2_PRAGMA:
                raise CarError("CARv2 pragma is malformed")
            self._state = _State.V2_HEADER
            return True
        if version != 1:
            raise CarError(f"CAR version {version} is not supported (expected 1, or 2 around 1)")
        self._header = CarHeader(2 if self._inner else 1, roots)
        self._state = _State.SECTIONS
        return self._check_data_end()

    def _section(self, out: list[Block]) -> bool:
        got = self._varint(self._block_bytes_max + CID_BYTES_MAX, "section")
        if got is None:
            return False
        length, skip = got
        if length == 0:
            raise CarError(f"zero-length CAR section at byte {self._offset}")
        if self._data_end is not None and self._offset + skip + length > self._data_end:
            raise CarError("CARv2 section runs past the declared data size")
        if self._available() < skip + length:
            return False
        start = self._pos + skip
        end = start + length
        try:
            cid, data_start = Cid.decode(self._buf, start, end)
        except InvalidCid as exc:
            raise CarError(f"bad CID in CAR section at byte {self._offset}: {exc}") from None
        if end - data_start > self._block_bytes_max:
            raise LimitExceeded(f"CAR block {cid} of {end - data_start} bytes (limit {self._block_bytes_max})")
        with memoryview(self._buf) as view:  # one copy; the view must be gone before the buffer is compacted
            data = bytes(view[data_start:end])
        block = verify_block(cid, data)
        self._consume(skip + length)
        self.blocks_decoded += 1
        self.bytes_decoded += len(block.data)
        out.append(block)
        return self._check_data_end()

    def _check_data_end(self) -> bool:
        if self._data_end is not None and self._offset == self._data_end:
            self._state = _State.DONE
            self._pos = len(self._buf)  # the index and anything after it
            return False
        return True


def _parse_header(raw: bytes) -> tuple[int, tuple[Cid, ...]]:
    try:
        value, end = _cbor_item(raw, 0, 0)
    except (ValueError, IndexError) as exc:
        raise CarError(f"CAR header is not valid dag-cbor: {exc}") from None
    if end != len(raw):
        raise CarError("CAR header has trailing bytes")
    if not isinstance(value, dict) or not isinstance(value.get("version"), int):
        raise CarError("CAR header is not a map with an integer version")
    version: int = value["version"]
    roots = value.get("roots", [])
    if version == 1 and (not isinstance(roots, list) or not all(isinstance(r, Cid) for r in roots)):
        raise CarError("CAR header roots is not a list of CIDs")
    return version, tuple(roots) if version == 1 else ()


def _cbor_item(buf: bytes, pos: int, depth: int) -> tuple[object, int]:
    """One dag-cbor item (the subset a CAR header needs: ints, strings, bytes, lists, maps, CIDs, simple values)."""
    if depth > _CBOR_DEPTH_MAX:
        raise ValueError("nesting too deep")
    initial = buf[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if info not in simple:
            raise ValueError(f"unsupported simple value or float (0x{initial:02x})")
        return simple[info], pos
    if info < 24:
        arg = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(buf):
            raise ValueError("truncated")
        arg = int.from_bytes(buf[pos : pos + size], "big")
        pos += size
    else:
        raise ValueError("indefinite lengths are not dag-cbor")
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        if pos + arg > len(buf):
            raise ValueError("string runs past the header")
        chunk = buf[pos : pos + arg]
        return (chunk if major == 2 else chunk.decode("utf-8")), pos + arg
    if major == 4:
        if arg > len(buf) - pos:
            raise ValueError("list longer than the header")
        items = []
        for _ in range(arg):
            item, pos = _cbor_item(buf, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        if arg > len(buf) - pos:
            raise ValueError("map longer than the header")
        mapping: dict[str, object] = {}
        for _ in range(arg):
            key, pos = _cbor_item(buf, pos, depth + 1)
            if not isinstance(key, str) or key in mapping:
                raise ValueError("map keys must be distinct strings")
            mapping[key], pos = _cbor_item(buf, pos, depth + 1)
        return mapping, pos
    if arg != 42:  # major 6, a tag
        raise ValueError(f"tag {arg} is not dag-cbor")
    content, pos = _cbor_item(buf, pos, depth + 1)
    if not isinstance(content, bytes) or content[:1] != b"\x00":
        raise ValueError("tag 42 must wrap 0x00 + a binary CID")
    try:
        return Cid.parse(content[1:]), pos
    except InvalidCid as exc:
        raise ValueError(str(exc)) from None


# -- encoding (fixtures, the test gateway) -------------------------------------------------------------------------


def _cbor_head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes([major << 5 | info]) + arg.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def encode_car_header(roots: Iterable[Cid]) -> bytes:
    """A CARv1 header (with its length prefix) in canonical dag-cbor: ``{"roots": [...], "version": 1}``."""
    roots = list(roots)
    body = bytearray(_cbor_head(5, 2))
    body += _cbor_head(3, 5) + b"roots" + _cbor_head(4, len(roots))
    for root in roots:
        cid = b"\x00" + root.binary
        body += _cbor_head(6, 42) + _cbor_head(2, len(cid)) + cid
    body += _cbor_head(3, 7) + b"version" + _cbor_head(0, 1)
    return encode_uvarint(len(body)) + bytes(body)


def encode_car_section(cid: Cid, data: BytesLike) -> bytes:
    return encode_uvarint(len(cid.binary) + len(data)) + cid.binary + bytes(data)


def encode_car(roots: Iterable[Cid], blocks: Iterable[tuple[Cid, BytesLike]]) -> bytes:
    return encode_car_header(roots) + b"".join(encode_car_section(cid, data) for cid, data in blocks)
