"""The executor's codec fast paths give exactly the codec's bytes, values and refusals (the same error classes)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning import codec
from lightning.state.fastcodec import decode_strict, encode_fast

ints = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-(2**256) + 1, 2**256 - 1),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 2**128 - 1]),
)
scalars = st.one_of(st.none(), st.booleans(), ints, st.binary(max_size=40), st.text(max_size=20))
# (the codec itself fails with OverflowError on integer map keys beyond 64 bits; nothing uses them)
keys = st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**64 - 1), st.binary(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=20), st.dictionaries(keys, inner, max_size=20)),
    max_leaves=40,
)


def _nested(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return v


def _outcome(fn: Any, arg: Any) -> Any:
    try:
        return ("ok", fn(arg))
    except codec.CodecError as exc:
        return ("error", type(exc).__name__)


@settings(max_examples=400)
@given(values)
def test_encode_fast_is_the_codec(value: Any) -> None:
    expected = _outcome(codec.encode, value)
    assert _outcome(encode_fast, value) == expected
    if expected[0] == "ok":
        assert decode_strict(expected[1]) == codec.decode(expected[1]) == codec.decode_trusted(expected[1])


def _bytes_of(value: Any, data: st.DataObject) -> bytes:
    try:
        raw = codec.encode(value)
    except codec.CodecError:
        return b""
    if raw and data.draw(st.booleans()):  # damage one byte
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1 :]
    return raw


# msgpack that the codec never writes: floats, None/bool/float map keys, keys in insertion order (often unsorted)
foreign_scalars = st.one_of(scalars, st.floats(allow_nan=False), st.integers(-(2**63), 2**64 - 1))
foreign_keys = st.one_of(keys, st.none(), st.booleans(), st.floats(allow_nan=False))
foreign = st.recursive(
    foreign_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(foreign_keys, inner, max_size=5)),
    max_leaves=15,
)


def _packed(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (OverflowError, TypeError, ValueError):  # a big integer msgpack has no native form for
        return b""


def _exact(fn: Any, raw: bytes, max_bytes: int) -> Any:
    try:
        return ("ok", fn(raw, max_bytes=max_bytes))
    except codec.CodecError as exc:
        return ("error", type(exc))


@settings(max_examples=1000)
@given(st.data())
def test_decode_strict_is_the_codec_on_any_bytes(data: st.DataObject) -> None:
    """Random bytes, random msgpack and damaged canonical encodings: the same value, or the same error class."""
    raw = data.draw(
        st.one_of(
            st.binary(max_size=60),
            foreign.map(_packed),
            values.map(lambda v: _bytes_of(v, data)),
            values.map(lambda v: _bytes_of(v, data) + data.draw(st.binary(min_size=1, max_size=3))),  # trailing
        )
    )
    max_bytes = data.draw(st.sampled_from([codec.MAX_FRAME_BYTES, 64 * 1024, len(raw), max(len(raw) - 1, 0), 4]))
    assert _exact(decode_strict, raw, max_bytes) == _exact(codec.decode, raw, max_bytes)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x81\x91\x01\x01",  # a list as a map key
        b"\x81\x80\x01",  # a map as a map key
        b"\x81\xc0\x01",  # None as a map key
        b"\x81\xc3\x01",  # True as a map key
        b"\x81\xd4\x01\x05\x01",  # a (non-minimal) big-integer ext as a map key
        b"\x92\x82\xa1b\x01\xa1a\x01",  # an unsorted map, then the bytes end
        codec.encode({"a": 1}) + b"\x00",  # trailing bytes
        codec.encode(list(range(codec.MAX_CONTAINER_ITEMS + 1))),  # more items than a container may hold
        codec.encode({i: 0 for i in range(codec.MAX_CONTAINER_ITEMS + 1)}),
        b"\x91" * 2000 + b"\x00",  # deeper than msgpack's own stack
        b"\x91" * 33 + b"\x01",  # deeper than the codec allows
    ],
)
def test_decode_strict_refuses_like_the_codec(raw: bytes) -> None:
    for max_bytes in (codec.MAX_FRAME_BYTES, len(raw)):
        expected = _exact(codec.decode, raw, max_bytes)
        assert expected[0] == "error"
        assert _exact(decode_strict, raw, max_bytes) == expected


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        {True: 1},
        {None: 1},
        {(1, 2): 3},
        2**257,
        object(),
        _nested(40),
    ],
)
def test_refusals(value: Any) -> None:
    with pytest.raises(codec.CodecError):
        codec.encode(value)
    with pytest.raises(codec.CodecError):
        encode_fast(value)


def test_non_canonical_inputs() -> None:
    for raw in (
        msgpack.packb({"b": 1, "a": 2}, use_bin_type=True),  # unsorted keys
        b"\xd4\x01\x05",  # a big-int ext holding a small number
        b"\xcd\x00\x05",  # 5 as uint16
        b"\xc7\x00\x01",  # empty big-int ext
        b"\x82\xa1a\x01\xa1a\x02",  # a repeated key
        b"\xd4\x07\x00",  # unknown ext
    ):
        with pytest.raises(codec.CodecError):
            codec.decode(raw)
        with pytest.raises(codec.CodecError):
            decode_strict(raw)
