"""The signed registration format (lightning/state/registration.py): encoding, bounds, chain id, both signatures."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from lightning.codec import decode, encode
from lightning.crypto import Domain, SigningKey
from lightning.ids import AccountId, NodeId
from lightning.state.records import Ports
from lightning.state.registration import (
    MAX_REGISTRATION_BYTES,
    ExtraKey,
    Registration,
    RegistrationBadSignature,
    RegistrationMalformed,
    RegistrationWrongChain,
    decode_registration,
    sign_registration,
    verify_registration,
)

NODE = SigningKey(b"\x01" * 32)
CONSENSUS = SigningKey(b"\x02" * 32)
OTHER = SigningKey(b"\x03" * 32)
OWNER = b"\x0a" * 32
PORTS = Ports(4300, 4220, 4350, 0)


def blob(**changes: Any) -> bytes:
    fields: dict[str, Any] = {"chain_id": 7, "owner": OWNER, "host": "10.0.0.1", "ports": PORTS, "seq": 1}
    fields.update(changes)
    return sign_registration(NODE, CONSENSUS, **fields)


def resign(wire: dict[str, Any], node: SigningKey = NODE, consensus: SigningKey = CONSENSUS) -> bytes:
    """A blob of an arbitrary registration map, signed correctly (to test the field checks, not the signatures)."""
    msg = encode(wire)
    sigs = {
        "node_sig": node.sign(Domain.REGISTRATION, msg),
        "consensus_sig": consensus.sign(Domain.REGISTRATION_CONSENSUS, msg),
    }
    return encode({"registration": wire, **sigs})


def body() -> dict[str, Any]:
    w = decode(blob())["registration"]
    assert isinstance(w, dict)
    return w


def test_round_trip_and_exact_wire_form() -> None:
    raw = blob(host="edge-1.example.net", ports=Ports(1, 2, 3, 4), seq=9)
    reg = verify_registration(raw, chain_id=7)
    assert reg == Registration(
        7, NodeId.of(NODE), CONSENSUS.public.raw, "edge-1.example.net", Ports(1, 2, 3, 4), AccountId(OWNER), 9
    )
    outer = decode(raw)
    assert set(outer) == {"registration", "node_sig", "consensus_sig"}
    assert outer["registration"] == {
        "v": 1,
        "chain_id": 7,
        "node": NODE.public.raw,
        "consensus_key": CONSENSUS.public.raw,
        "keys": {},
        "host": "edge-1.example.net",
        "ports": {"quic": 1, "http": 2, "pinger": 3, "rpc": 4},
        "owner": OWNER,
        "seq": 9,
    }
    msg = encode(outer["registration"])
    NODE.public.verify(Domain.REGISTRATION, msg, outer["node_sig"])
    CONSENSUS.public.verify(Domain.REGISTRATION_CONSENSUS, msg, outer["consensus_sig"])
    assert decode_registration(raw).raw == raw  # one encoding per registration
    assert len(raw) < MAX_REGISTRATION_BYTES


def test_an_ethereum_style_owner_address_is_accepted() -> None:
    assert verify_registration(blob(owner=b"\x0b" * 20), chain_id=7).owner == b"\x0b" * 20


def test_wrong_chain_id() -> None:
    with pytest.raises(RegistrationWrongChain, match="registration is for chain 7, this is chain 8"):
        verify_registration(blob(), chain_id=8)


def test_signed_by_another_key_names_the_node_key() -> None:
    forged = resign(body(), node=OTHER)
    with pytest.raises(RegistrationBadSignature, match=f"not signed by node key {NODE.public.hex[:16]}"):
        verify_registration(forged, chain_id=7)
    no_pop = resign(body(), consensus=OTHER)
    with pytest.raises(RegistrationBadSignature, match="not signed by its consensus key"):
        verify_registration(no_pop, chain_id=7)


def test_altered_after_signing_fails_the_node_signature() -> None:
    outer = decode(blob())
    outer["registration"]["owner"] = b"\x0c" * 32  # a copier swaps in its own account
    with pytest.raises(RegistrationBadSignature, match="not signed by node key"):
        verify_registration(encode(outer), chain_id=7)


def test_node_signature_is_not_accepted_as_the_consensus_signature() -> None:
    """Each key signs under its own tag: a node-key signature never counts as the consensus key's proof."""
    w = body()
    msg = encode(w)
    swapped = {
        "registration": w,
        "node_sig": NODE.sign(Domain.REGISTRATION, msg),
        "consensus_sig": CONSENSUS.sign(Domain.REGISTRATION, msg),
    }
    with pytest.raises(RegistrationBadSignature, match="consensus key"):
        verify_registration(encode(swapped), chain_id=7)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, "version 2 is not supported"),
        ({"v": True}, "v must be an integer"),
        ({"seq": 0}, "seq must be an integer in"),
        ({"host": "bad host"}, "neither an IP address nor a host name"),
        ({"host": "a" * 254}, "host must be a string of 1..253"),
        ({"ports": {"quic": 0, "http": 1, "pinger": 1, "rpc": 0}}, "ports.quic must be an integer in [1, 65535]"),
        ({"ports": {"quic": 1, "http": 1, "pinger": 1}}, "ports must be a map of exactly"),
        ({"owner": b"\x00" * 31}, "owner must be 32 or 20 bytes"),
        ({"node": b"\x00" * 33}, "node must be 32 bytes"),
        ({"consensus_key": NODE.public.raw}, "consensus key must differ from the node key"),
        ({"keys": {f"k{i}": {"key": b"k", "pop": b""} for i in range(5)}}, "at most 4 entries"),
        ({"keys": {"bls": {"key": b"k"}}}, "keys.bls must be a map of exactly key, pop"),
        ({"keys": {"bls": {"key": b"k", "pop": b"p" * 193}}}, "pop must be at most 192 bytes"),
        ({"extra": 1}, "unknown: extra"),
    ],
)
def test_malformed_fields_are_named(change: dict[str, Any], reason: str) -> None:
    w = {**body(), **change}
    with pytest.raises(RegistrationMalformed, match=reason.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        decode_registration(resign(w))


def test_missing_field() -> None:
    w = body()
    del w["seq"]
    with pytest.raises(RegistrationMalformed, match=r"missing: seq"):
        decode_registration(resign(w))


def test_further_keys_need_a_known_kind_and_none_is_known_yet() -> None:
    w = {**body(), "keys": {"bls12-381": {"key": b"\x01" * 48, "pop": b"\x02" * 96}}}
    raw = resign(w)
    assert decode_registration(raw).registration.keys == {"bls12-381": ExtraKey(b"\x01" * 48, b"\x02" * 96)}
    with pytest.raises(RegistrationMalformed, match=r"unsupported key kind 'bls12-381' \(known: none\)"):
        verify_registration(raw, chain_id=7)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xc1garbage", "does not decode"),
        (b"\x00" * (MAX_REGISTRATION_BYTES + 1), "at most 2048"),
        (encode([1, 2]), "expected a map of exactly registration"),
        (encode({"registration": {}, "node_sig": b"", "consensus_sig": b""}), "fields differ"),
    ],
)
def test_bytes_that_are_not_a_registration(raw: bytes, reason: str) -> None:
    with pytest.raises(RegistrationMalformed, match=reason):
        decode_registration(raw)


def test_non_canonical_bytes_are_refused() -> None:
    outer = decode(blob())
    reordered = dict(reversed(list(outer.items())))  # map keys out of canonical order
    raw = msgpack.packb(reordered)
    assert raw != encode(outer) and msgpack.unpackb(raw) == outer
    with pytest.raises(RegistrationMalformed, match="does not decode"):
        decode_registration(raw)


def test_signing_with_keys_the_registration_does_not_name_is_refused() -> None:
    reg = decode_registration(blob()).registration
    with pytest.raises(ValueError, match="node key and the consensus key it names"):
        reg.sign(OTHER, CONSENSUS)
    with pytest.raises(RegistrationMalformed, match="neither an IP address"):
        blob(host="-bad-")
