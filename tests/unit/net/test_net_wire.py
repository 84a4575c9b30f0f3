"""Stream framing of the pool (wire.py) and the typed rejections it carries."""

from __future__ import annotations

import pytest

from lightning.codec import FrameTooLarge, encode, frame
from lightning.net.errors import (
    BadRequest,
    InternalError,
    NotHere,
    PeerProtocolError,
    Rejected,
    TooManyRequests,
    Unauthorized,
    rejection_from_code,
)
from lightning.net.wire import (
    Scope,
    StreamKind,
    decode_reply,
    encode_error,
    encode_ok,
    parse_preamble,
    preamble,
)


def test_preamble_round_trip_and_unknown_values():
    for kind in StreamKind:
        for scope in Scope:
            assert parse_preamble(preamble(kind, scope)) == (kind, scope)
    with pytest.raises(PeerProtocolError):
        parse_preamble(bytes((9, 1)))
    with pytest.raises(PeerProtocolError):
        parse_preamble(bytes((1, 200)))


def test_scope_numbers_are_stable():
    # On the wire: never renumber.
    assert [(s.name, s.value) for s in Scope] == [
        ("BROADCAST", 1),
        ("BLOCKS", 2),
        ("CONSENSUS", 3),
        ("SYNC", 4),
        ("TXS", 5),
    ]
    assert [(k.name, k.value) for k in StreamKind] == [("MESSAGES", 1), ("REQUEST", 2), ("STREAM", 3)]


def test_ok_reply_round_trip():
    data = encode_ok({"a": [1, b"x"]}, max_bytes=1024)
    assert data == frame(encode({"ok": {"a": [1, b"x"]}}))
    assert decode_reply(data[4:], max_bytes=1024) == {"a": [1, b"x"]}
    with pytest.raises(FrameTooLarge):
        encode_ok(b"x" * 2000, max_bytes=1024)


@pytest.mark.parametrize("cls", [TooManyRequests, NotHere, Unauthorized, BadRequest, InternalError])
def test_rejections_travel_typed(cls: type[Rejected]):
    data = encode_error(cls("details here"))
    with pytest.raises(cls, match="details here"):
        decode_reply(data[4:], max_bytes=1024)


def test_unknown_rejection_code_is_a_plain_rejection():
    err = rejection_from_code("over_quota", "slow down")
    assert type(err) is Rejected and "over_quota" in str(err)


@pytest.mark.parametrize(
    "payload",
    [encode({"ok": 1, "extra": 2}), encode([1]), encode({"err": 1, "msg": "x"}), b"\xc1", encode({"err": "x"})],
)
def test_malformed_replies_are_protocol_errors(payload: bytes):
    with pytest.raises(PeerProtocolError):
        decode_reply(payload, max_bytes=1024)
