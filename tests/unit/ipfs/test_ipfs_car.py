"""CAR v1/v2 decoding, incremental in any chunking, every block verified; limits and malformed streams."""

from __future__ import annotations

import random
import struct

import pytest

from lightning.ipfs import (
    BlockMismatch,
    CarDecoder,
    CarError,
    CarTruncated,
    Cid,
    LimitExceeded,
    encode_car,
    encode_car_header,
    encode_car_section,
)
from lightning.ipfs._varint import encode_uvarint
from lightning.ipfs.car import V2_PRAGMA
from tests.ipfs_fixtures import fixtures

ALL = sorted(fixtures())


def feed_in_chunks(data: bytes, sizes: list[int], decoder: CarDecoder | None = None) -> list[Cid]:
    decoder = decoder or CarDecoder()
    out: list[Cid] = []
    pos = 0
    i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        out += [block.cid for block in decoder.feed(data[pos : pos + n])]
        pos += n
        i += 1
    decoder.finish()
    return out


def header(body: bytes) -> bytes:
    return encode_uvarint(len(body)) + body


def section_bounds(data: bytes) -> list[int]:
    """Offsets where the header ends and each section ends."""
    from lightning.ipfs._varint import read_uvarint

    bounds = []
    pos = 0
    while pos < len(data):
        got = read_uvarint(data, pos)
        assert got is not None
        length, pos = got
        pos += length
        bounds.append(pos)
    return bounds


@pytest.mark.parametrize("name", ALL)
def test_fixtures_decode_whole_and_in_random_chunks(name: str) -> None:
    fx = fixtures()[name]
    data = fx.data
    decoder = CarDecoder()
    blocks = decoder.feed(data)
    header = decoder.finish()
    assert header.version == 1 and header.roots == (fx.root,)
    assert decoder.blocks_decoded == len(blocks) > 0
    # ipfs-car writes the root last; the re-encoding is byte-identical (canonical dag-cbor header)
    assert blocks[-1].cid == fx.root
    assert encode_car([fx.root], [(b.cid, b.data) for b in blocks]) == data
    rng = random.Random(name)
    sizes = [rng.choice([1, 2, 3, 7, 100, 4096, 65536]) for _ in range(50)]
    assert feed_in_chunks(data, sizes) == [b.cid for b in blocks]


def test_one_byte_at_a_time() -> None:
    data = fixtures()["nested.car"].data
    assert feed_in_chunks(data, [1]) == [b.cid for b in fixtures()["nested.car"].blocks()]


@pytest.mark.parametrize("name", ["tiny.car", "inline.car", "rawtype-leaves.car"])
def test_every_truncation_is_detected(name: str) -> None:
    data = fixtures()[name].data
    bounds = section_bounds(data)
    for cut in range(len(data)):
        decoder = CarDecoder()
        blocks = decoder.feed(data[:cut])
        if cut in bounds:  # a clean stop between sections: a traversal notices the missing blocks
            decoder.finish()
            assert len(blocks) == bounds.index(cut)
        else:
            with pytest.raises(CarTruncated):
                decoder.finish()


def test_corrupted_and_swapped_blocks_stop_the_stream_at_that_block() -> None:
    fx = fixtures()["deep-raw.car"]
    blocks = fx.blocks()
    victim = blocks[5]
    corrupted = [(b.cid, b.data if b is not victim else b.data[:-1] + b"\x00") for b in blocks]
    decoder = CarDecoder()
    with pytest.raises(BlockMismatch) as info:
        decoder.feed(encode_car([fx.root], corrupted))
    assert info.value.cid == victim.cid and decoder.blocks_decoded == 5
    swapped = [(b.cid, b.data if b is not victim else blocks[6].data) for b in blocks]
    with pytest.raises(BlockMismatch, match=str(victim.cid)):
        CarDecoder().feed(encode_car([fx.root], swapped))


def test_block_and_header_limits() -> None:
    onemib = fixtures()["onemib.car"].data  # holds a 1 MiB block
    with pytest.raises(LimitExceeded, match="section of 1048612 bytes"):  # before buffering it
        feed_in_chunks(onemib, [4096], CarDecoder(block_bytes_max=1_000_000))
    with pytest.raises(LimitExceeded, match=r"block .* of 1048576 bytes"):  # section fits, block doesn't
        feed_in_chunks(onemib, [4096], CarDecoder(block_bytes_max=1024 * 1024 - 10))
    assert len(feed_in_chunks(onemib, [4096], CarDecoder(block_bytes_max=1024 * 1024))) == 3
    with pytest.raises(LimitExceeded, match="header"):
        CarDecoder(header_bytes_max=16).feed(onemib[:8])  # refused from the length alone
    huge_section = encode_car_header([]) + encode_uvarint(1 << 40)
    with pytest.raises(LimitExceeded):
        CarDecoder().feed(huge_section)


@pytest.mark.parametrize(
    ("stream", "match"),
    [
        (encode_car_header([]) + b"\x00", "zero-length"),
        (encode_car_header([]) + b"\xff" * 10, "bad section length"),
        (encode_car_header([]) + b"\x80\x00", "not minimally encoded"),
        (encode_car_header([]) + b"\x05\x01\x55\x12\x20\x00", "bad CID"),
        (header(b"\xa2\x65roots\x80\x67version\x03"), "version 3"),
        (header(b"\xa0"), "integer version"),
        (header(b"\xa1\x65r"), "not valid dag-cbor"),
        (header(b"\xa2\x65roots\x81\x01\x67version\x01"), "not a list of CIDs"),
        (header(b"\xbf\x67version\x01\xff"), "indefinite"),
        (header(b"\xa2\x65roots\x80\x67version\x01\x00\x00"), "trailing"),
        (header(b"\xa2\x65roots\xc1\x00\x67version\x01"), "tag 1"),
        (header(b"\xa2\x65roots\x81\xd8\x2a\x42\x01\x55\x67version\x01"), "tag 42"),
        (header(b"\xa2\x65roots\x80\x67version\xf9\x3c\x00"), "float"),
    ],
)
def test_malformed_streams(stream: bytes, match: str) -> None:
    with pytest.raises(CarError, match=match):
        decoder = CarDecoder()
        decoder.feed(stream)
        decoder.finish()


def test_header_with_extra_keys_and_no_roots() -> None:
    # {"note": "x", "roots": [], "version": 1}: unknown keys are tolerated
    body = b"\xa3\x64note\x61x\x65roots\x80\x67version\x01"
    decoder = CarDecoder()
    assert decoder.feed(encode_uvarint(len(body)) + body) == []
    assert decoder.finish().roots == ()


def carv2(v1: bytes, *, padding: int = 7, index: bytes = b"fake index") -> bytes:
    data_offset = len(V2_PRAGMA) + 40 + padding
    header = struct.pack("<16sQQQ", b"\x00" * 16, data_offset, len(v1), data_offset + len(v1))
    return V2_PRAGMA + header + b"\x00" * padding + v1 + index


def test_carv2_wrapping_a_fixture() -> None:
    fx = fixtures()["nested.car"]
    wanted = [b.cid for b in fx.blocks()]
    data = carv2(fx.data)
    decoder = CarDecoder()
    got = feed_in_chunks(data, [1, 5, 333], decoder)
    assert got == wanted
    assert decoder.header is not None and decoder.header.version == 2 and decoder.header.roots == (fx.root,)
    with pytest.raises(CarTruncated):
        feed_in_chunks(carv2(fx.data, index=b"")[:-10], [100])


def test_carv2_with_a_bad_data_size_or_offset() -> None:
    v1 = fixtures()["tiny.car"].data
    bad_size = bytearray(carv2(v1))
    struct.pack_into("<Q", bad_size, len(V2_PRAGMA) + 24, len(v1) - 3)  # cuts the only section
    with pytest.raises(CarError, match="past the declared data size"):
        CarDecoder().feed(bytes(bad_size))
    bad_offset = bytearray(carv2(v1))
    struct.pack_into("<Q", bad_offset, len(V2_PRAGMA) + 16, 10**9)
    with pytest.raises(CarError, match="data offset"):
        CarDecoder().feed(bytes(bad_offset))
    nested_v2 = carv2(carv2(v1))
    with pytest.raises(CarError, match="version 2"):
        CarDecoder().feed(nested_v2)


def test_encoder_sections() -> None:
    cid = Cid.of(b"abc")
    section = encode_car_section(cid, b"abc")
    assert section[0] == len(cid.binary) + 3 and section.endswith(b"abc")
