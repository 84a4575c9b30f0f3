"""NodeId and AccountId: one type each, encoded exactly as the raw bytes the wire and the state always carried."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lightning.codec import decode, encode
from lightning.crypto import BadSignature, Domain, SigningKey
from lightning.errors import LightningError
from lightning.ids import AccountId, NodeId
from lightning.state.fastcodec import encode_fast

KEY = SigningKey(bytes(range(32)))


@given(st.binary(min_size=32, max_size=32))
def test_a_node_id_encodes_compares_and_hashes_as_its_bytes(raw: bytes) -> None:
    nid = NodeId(raw)
    assert nid == raw and hash(nid) == hash(raw) and {raw: 1}[nid] == 1
    assert encode(nid) == encode_fast(nid) == encode(raw)
    assert encode({"m": [nid], nid: nid}) == encode_fast({"m": [nid], nid: nid}) == encode({"m": [raw], raw: raw})
    assert decode(encode(nid)) == nid and NodeId(nid) is nid
    assert pickle.loads(pickle.dumps(nid)) == nid and type(pickle.loads(pickle.dumps(nid))) is NodeId


def test_text_forms() -> None:
    nid = NodeId.of(KEY)
    assert str(nid) == KEY.public.hex and nid.short() == KEY.public.hex[:16]
    assert NodeId.parse(str(nid)) == nid == NodeId.parse("0x" + str(nid).upper())
    assert repr(nid) == f"NodeId({KEY.public.hex[:16]}…)"
    assert sorted([NodeId(b"\x02" * 32), NodeId(b"\x01" * 32)]) == [b"\x01" * 32, b"\x02" * 32]


def test_a_node_id_verifies_what_its_node_key_signed() -> None:
    nid = NodeId.of(KEY)
    sig = KEY.sign(Domain.TEST, b"m")
    nid.verify(Domain.TEST, b"m", sig)
    with pytest.raises(BadSignature):
        nid.verify(Domain.TEST, b"other", sig)


@pytest.mark.parametrize(
    ("text", "error"),
    [("zz", "is not hex"), ("00" * 31, "has 31 bytes; a node id is 64 hex digits"), ("00" * 20, "has 20 bytes")],
)
def test_bad_node_ids_say_what_a_node_id_is(text: str, error: str) -> None:
    with pytest.raises(LightningError, match=error):
        NodeId.parse(text)
    with pytest.raises(ValueError):
        NodeId(b"\x00" * 31)


def test_an_account_is_an_ed25519_key_or_a_20_byte_address_told_apart_by_length() -> None:
    key = AccountId.of(KEY)
    addr = AccountId.parse("0x" + "ab" * 20)
    assert key.is_ed25519 and not key.is_address and encode(key) == encode(KEY.public.raw)
    assert addr.is_address and not addr.is_ed25519 and encode(addr) == encode(b"\xab" * 20)  # no tag byte
    assert key == NodeId.of(KEY)  # a node key that sends a transaction is that account
    with pytest.raises(LightningError, match="an account is 64 hex digits"):
        AccountId.parse("ab" * 21)
    with pytest.raises(ValueError):
        AccountId(b"\x00" * 33)
