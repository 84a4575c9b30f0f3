"""Broadcast messages: topics, the signed body, the digest, and the wire form (docs/broadcast.md). Sans-IO.

A message's *body* is the canonical msgpack map ``{"chain": chain id, "o": origin node key, "k": topic, "e": epoch,
"ts": origin's wall clock in ms, "p": payload, ["to": node key]}``. Its digest is ``blake3(body)``; its signature
is the origin's Ed25519 signature over the body under ``Domain.BROADCAST``. The chain id is in the body but not on
the wire (both ends know it), so a message of another network never verifies. On the wire a message is the body
without ``chain`` plus ``"s": signature``. ``to`` names the one node a direct message is for.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import blake3

from lightning.codec import encode
from lightning.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, BadSignature, Domain, SigningKey
from lightning.errors import LightningError, RemoteProtocolError
from lightning.ids import NodeId

__all__ = [
    "DIGEST_BYTES",
    "BroadcastError",
    "InvalidMessage",
    "Message",
    "Topic",
    "message_from_wire",
    "sign_message",
]

DIGEST_BYTES = 32


class BroadcastError(LightningError):
    """Root of the broadcast's errors."""


class InvalidMessage(BroadcastError, RemoteProtocolError):
    """A message or frame a peer sent that breaks the rules; ``reason`` is the metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Topic(enum.Enum):
    """What a message is about; each topic has at most one subscriber per node. Never rename a value."""

    CONSENSUS = "consensus"
    RESOLVER = "resolver"
    CHECKPOINT = "checkpoint"
    REPUTATION = "reputation"
    DEBUG = "debug"


_TOPICS = {t.value: t for t in Topic}


@dataclass(frozen=True, slots=True)
class Message:
    origin: NodeId
    topic: Topic
    epoch: int
    timestamp_ms: int
    payload: bytes
    signature: bytes
    to: NodeId | None = None
    # Derived from the fields above (and the chain id) when the message is built or parsed.
    body: bytes = field(default=b"", repr=False, compare=False)
    digest: bytes = field(default=b"", compare=False)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "o": self.origin,
            "k": self.topic.value,
            "e": self.epoch,
            "ts": self.timestamp_ms,
            "p": self.payload,
            "s": self.signature,
        }
        if self.to is not None:
            wire["to"] = self.to
        return wire

    def verify(self) -> None:
        """Raises InvalidMessage("bad_signature") unless the origin signed the body."""
        try:
            self.origin.verify(Domain.BROADCAST, self.body, self.signature)
        except BadSignature as exc:
            raise InvalidMessage("bad_signature", str(exc)) from None


def _body(
    chain_id: int, origin: NodeId, topic: Topic, epoch: int, ts: int, payload: bytes, to: NodeId | None
) -> bytes:
    body: dict[str, Any] = {"chain": chain_id, "o": origin, "k": topic.value, "e": epoch, "ts": ts, "p": payload}
    if to is not None:
        body["to"] = to
    return encode(body)


def sign_message(
    key: SigningKey,
    chain_id: int,
    topic: Topic,
    *,
    epoch: int,
    timestamp_ms: int,
    payload: bytes,
    to: NodeId | None = None,
) -> Message:
    body = _body(chain_id, NodeId.of(key), topic, epoch, timestamp_ms, payload, to)
    return Message(
        origin=NodeId.of(key),
        topic=topic,
        epoch=epoch,
        timestamp_ms=timestamp_ms,
        payload=payload,
        signature=key.sign(Domain.BROADCAST, body),
        to=to,
        body=body,
        digest=blake3.blake3(body).digest(),
    )


_WIRE_KEYS = {"o", "k", "e", "ts", "p", "s"}


def message_from_wire(obj: Any, *, chain_id: int, max_payload_bytes: int) -> Message:
    """Parse a message a peer sent (its signature is not checked here: :meth:`Message.verify`). Raises
    InvalidMessage with reason ``malformed``, ``oversize`` or ``unknown_topic``."""
    if not isinstance(obj, dict) or not _WIRE_KEYS <= obj.keys() or not obj.keys() <= _WIRE_KEYS | {"to"}:
        raise InvalidMessage("malformed", "a message is a map with o, k, e, ts, p, s and optionally to")
    origin, topic, epoch, ts, payload, sig = obj["o"], obj["k"], obj["e"], obj["ts"], obj["p"], obj["s"]
    to = obj["to"] if "to" in obj else origin  # checked like the origin; only kept if present
    if not isinstance(payload, bytes):
        raise InvalidMessage("malformed", "the payload is not bytes")
    if len(payload) > max_payload_bytes:
        raise InvalidMessage("oversize", f"a {len(payload)}-byte payload; the limit is {max_payload_bytes}")
    for name, value in (("origin", origin), ("to", to)):
        if not isinstance(value, bytes) or len(value) != PUBLIC_KEY_BYTES:
            raise InvalidMessage("malformed", f"{name} is not a {PUBLIC_KEY_BYTES}-byte node key")
    if not isinstance(sig, bytes) or len(sig) != SIGNATURE_BYTES:
        raise InvalidMessage("malformed", f"the signature is not {SIGNATURE_BYTES} bytes")
    for name, value in (("epoch", epoch), ("timestamp", ts)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
            raise InvalidMessage("malformed", f"{name} is not an integer 0..2^63")
    if not isinstance(topic, str) or topic not in _TOPICS:
        raise InvalidMessage("unknown_topic", f"topic {str(topic)[:32]!r}")
    origin_key, to_key = NodeId(origin), (NodeId(to) if "to" in obj else None)
    body = _body(chain_id, origin_key, _TOPICS[topic], epoch, ts, payload, to_key)
    return Message(
        origin=origin_key,
        topic=_TOPICS[topic],
        epoch=epoch,
        timestamp_ms=ts,
        payload=payload,
        signature=sig,
        to=to_key,
        body=body,
        digest=blake3.blake3(body).digest(),
    )
