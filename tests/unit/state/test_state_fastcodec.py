"""The executor's codec fast paths give exactly the codec's bytes, values and refusals."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning import codec
from lightning.state.fastcodec import decode_strict, decode_trusted, encode_fast

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
        assert decode_strict(expected[1]) == codec.decode(expected[1]) == decode_trusted(expected[1])


def _bytes_of(value: Any, data: st.DataObject) -> bytes:
    try:
        raw = codec.encode(value)
    except codec.CodecError:
        return b""
    if raw and data.draw(st.booleans()):  # damage one byte
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1 :]
    return raw


small = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.binary(max_size=10), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=15,
)


@settings(max_examples=400)
@given(st.data())
def test_decode_strict_accepts_and_refuses_like_the_codec(data: st.DataObject) -> None:
    raw = data.draw(
        st.one_of(
            st.binary(max_size=60),
            small.map(lambda v: msgpack.packb(v, use_bin_type=True)),  # keys in insertion order: often unsorted
            values.map(lambda v: _bytes_of(v, data)),
        )
    )
    expected = _outcome(codec.decode, raw)
    got = _outcome(decode_strict, raw)
    assert got[0] == expected[0]
    if expected[0] == "ok":
        assert got == expected


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
