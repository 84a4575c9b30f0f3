import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lightning.codec import (
    MAX_FRAME_BYTES,
    CodecError,
    FrameDecoder,
    FrameTooLarge,
    NonCanonical,
    decode,
    encode,
    frame,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**255), max_value=2**256 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
keys = st.text(max_size=8) | st.integers(min_value=-(2**31), max_value=2**31) | st.binary(max_size=8)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)


@given(values)
def test_round_trip_is_identity(value):
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


@given(st.dictionaries(st.text(max_size=6), st.integers(), min_size=2, max_size=8), st.randoms())
def test_map_key_order_does_not_change_encoding(d, rnd):
    items = list(d.items())
    rnd.shuffle(items)
    assert encode(dict(items)) == encode(d)


def test_bytes_and_str_are_kept_apart():
    assert encode(b"a") != encode("a")
    assert decode(encode(b"a")) == b"a"
    assert decode(encode("a")) == "a"


def test_known_encoding():
    # Keys sorted by their encoded bytes: "a" (a1 61) before "b" (a1 62).
    assert encode({"b": 1, "a": b"\x00"}).hex() == "82a161c40100a16201"


def test_big_integers_use_ext_and_only_when_needed():
    assert decode(encode(2**64)) == 2**64
    assert decode(encode(-(2**63) - 1)) == -(2**63) - 1
    assert encode(10**24)[0] == 0xC7  # ext 8
    with pytest.raises(NonCanonical):
        decode(msgpack.packb(msgpack.ExtType(1, b"\x05")))  # 5 must be a fixint
    with pytest.raises(NonCanonical):
        decode(msgpack.packb(msgpack.ExtType(1, b"\x00" + (2**64).to_bytes(9, "big"))))
    with pytest.raises(CodecError):
        decode(msgpack.packb(msgpack.ExtType(7, b"\x01")))
    with pytest.raises(CodecError):
        encode(2**300)


@pytest.mark.parametrize("value", [1.5, {"a": 0.0}, [float("nan")], {1.0: 1}, {(1, 2): 3}, object(), 2**256])
def test_encode_rejects_floats_and_foreign_types(value):
    with pytest.raises(CodecError):
        encode(value)


def test_decode_rejects_unsorted_maps():
    data = msgpack.packb({"b": 1, "a": 2})
    with pytest.raises(NonCanonical):
        decode(data)


def test_decode_rejects_non_minimal_integers():
    with pytest.raises(NonCanonical):
        decode(b"\xcd\x00\x01")  # uint16 1, should be fixint


def test_decode_rejects_floats_and_trailing_bytes():
    with pytest.raises(CodecError):
        decode(msgpack.packb(1.5))
    with pytest.raises(CodecError):
        decode(encode(1) + b"\x00")


def test_decode_rejects_duplicate_keys():
    with pytest.raises(CodecError):
        decode(b"\x82\xa1a\x01\xa1a\x02")


def test_decode_rejects_oversize():
    with pytest.raises(FrameTooLarge):
        decode(b"\x00" * 11, max_bytes=10)


@given(st.binary(max_size=64))
def test_decode_garbage_raises_only_codec_errors(data):
    try:
        value = decode(data)
    except CodecError:
        return
    assert encode(value) == data


@given(st.lists(st.binary(max_size=300), max_size=10), st.lists(st.integers(min_value=1, max_value=50), min_size=1))
def test_frame_decoder_any_chunking(payloads, cuts):
    stream = b"".join(frame(p) for p in payloads)
    dec = FrameDecoder()
    out = []
    pos = 0
    i = 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        out.extend(dec.feed(stream[pos : pos + n]))
        pos += n
        i += 1
    assert out == payloads
    assert dec.at_boundary()


def test_frame_decoder_rejects_oversize_header_before_payload():
    dec = FrameDecoder(max_bytes=100)
    with pytest.raises(FrameTooLarge):
        list(dec.feed((101).to_bytes(4, "big")))
    with pytest.raises(FrameTooLarge):
        frame(b"x" * (MAX_FRAME_BYTES + 1))


def test_big_integer_map_keys_are_rejected():
    with pytest.raises(CodecError, match="64 bits"):
        encode({2**64: 1})


def test_huge_containers_are_refused_before_they_are_built():
    import msgpack as _m

    many = _m.packb([{}] * 100_000)
    with pytest.raises(CodecError):
        decode(many)
