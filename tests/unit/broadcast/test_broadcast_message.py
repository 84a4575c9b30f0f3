"""Broadcast messages: signing, digests, the wire form and what a peer may not send."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lightning.broadcast.message import InvalidMessage, Topic, message_from_wire, sign_message
from lightning.codec import decode, encode
from lightning.crypto import Domain, SigningKey
from lightning.ids import NodeId

KEY = SigningKey(b"\x05" * 32)
OTHER = SigningKey(b"\x06" * 32)


def _wire(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"epoch": 1, "timestamp_ms": 1000, "payload": b"p", **kw}
    return sign_message(KEY, 9, Topic.CONSENSUS, **args).to_wire()


@given(
    payload=st.binary(max_size=300),
    epoch=st.integers(0, 2**63 - 1),
    ts=st.integers(0, 2**63 - 1),
    topic=st.sampled_from(Topic),
    direct=st.booleans(),
)
def test_round_trip_through_the_codec(payload: bytes, epoch: int, ts: int, topic: Topic, direct: bool) -> None:
    to = NodeId.of(OTHER) if direct else None
    m = sign_message(KEY, 9, topic, epoch=epoch, timestamp_ms=ts, payload=payload, to=to)
    back = message_from_wire(decode(encode(m.to_wire())), chain_id=9, max_payload_bytes=1000)
    assert back == m and back.digest == m.digest and back.body == m.body
    back.verify()


def test_the_signature_covers_the_body_and_the_chain() -> None:
    m = sign_message(KEY, 9, Topic.DEBUG, epoch=1, timestamp_ms=5, payload=b"x")
    assert KEY.public.is_valid(Domain.BROADCAST, m.body, m.signature)
    assert decode(m.body)["chain"] == 9 and "chain" not in m.to_wire()
    elsewhere = message_from_wire(m.to_wire(), chain_id=10, max_payload_bytes=100)
    assert elsewhere.digest != m.digest
    with pytest.raises(InvalidMessage, match="bad_signature"):
        elsewhere.verify()


def test_digest_depends_on_every_field_but_not_the_signature() -> None:
    base = _wire()
    seen = {message_from_wire(base, chain_id=9, max_payload_bytes=100).digest}
    changes = (("e", 2), ("ts", 1001), ("p", b"q"), ("k", "debug"), ("o", OTHER.public.raw), ("to", b"\x01" * 32))
    for key, value in changes:
        seen.add(message_from_wire({**base, key: value}, chain_id=9, max_payload_bytes=100).digest)
    assert len(seen) == 7
    resigned = {**base, "s": b"\x00" * 64}
    assert message_from_wire(resigned, chain_id=9, max_payload_bytes=100).digest in seen


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"p": "text"}, "malformed"),
        ({"p": b"x" * 101}, "oversize"),
        ({"o": b"short"}, "malformed"),
        ({"to": 5}, "malformed"),
        ({"s": b"\x00" * 63}, "malformed"),
        ({"e": -1}, "malformed"),
        ({"ts": True}, "malformed"),
        ({"e": 2**63}, "malformed"),
        ({"k": "weather"}, "unknown_topic"),
        ({"k": 3}, "unknown_topic"),
        ({"extra": 1}, "malformed"),
    ],
)
def test_malformed_wire_messages(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        message_from_wire({**_wire(), **change}, chain_id=9, max_payload_bytes=100)
    assert info.value.reason == reason


def test_a_message_is_a_map_with_every_field() -> None:
    wire = _wire()
    del wire["ts"]
    for bad in (wire, [1, 2], None):
        with pytest.raises(InvalidMessage, match="malformed"):
            message_from_wire(bad, chain_id=9, max_payload_bytes=100)
