"""Ed25519 keys and domain-separated signatures.

Every signature covers ``tag || 0x00 || message`` where ``tag`` names the message kind (``Domain``), so a signature made
for one kind of message can never be replayed as another. Public keys and node ids are 32 raw bytes; their text form is
lowercase hex.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from lightning.errors import LightningError

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "BadSignature",
    "Domain",
    "PublicKey",
    "SigningKey",
    "parse_public_key",
]

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class BadSignature(LightningError):
    """A signature that does not verify."""


class Domain(enum.Enum):
    """One tag per kind of signed message. Never reuse or renumber a tag."""

    TRANSACTION = "lightning/tx/v1"
    CONSENSUS_VOTE = "lightning/consensus-vote/v1"  # retired: votes sign statements (STATEMENT)
    CONSENSUS_TIMEOUT = "lightning/consensus-timeout/v1"  # retired: timeouts sign statements (STATEMENT)
    CHECKPOINT = "lightning/checkpoint/v1"
    BROADCAST = "lightning/broadcast/v1"
    HANDSHAKE = "lightning/handshake/v1"
    TLS_BINDING = "lightning/tls-binding/v1"
    TEST = "lightning/test/v1"
    BLOCK_COMMIT = "lightning/block-commit/v1"  # retired: commit proofs sign statements (STATEMENT)
    BEACON = "lightning/beacon/v1"
    STATEMENT = "lightning/statement/v1"  # lightning/statement.py: consensus, resolver records and later kinds
    REGISTRATION = "lightning/registration/v1"  # a node registration, signed by its node key
    REGISTRATION_CONSENSUS = "lightning/registration-consensus/v1"  # the same, signed by its consensus key


def _signed_bytes(domain: Domain, message: bytes) -> bytes:
    return domain.value.encode() + b"\x00" + message


@dataclass(frozen=True, slots=True)
class PublicKey:
    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_BYTES:
            raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(self.raw)}")

    @property
    def hex(self) -> str:
        return self.raw.hex()

    def verify(self, domain: Domain, message: bytes, signature: bytes) -> None:
        """Raise :class:`BadSignature` unless ``signature`` signs ``message`` under ``domain`` with this key."""
        if len(signature) != SIGNATURE_BYTES:
            raise BadSignature(f"signature is {len(signature)} bytes, expected {SIGNATURE_BYTES}")
        try:
            nacl.signing.VerifyKey(self.raw).verify(_signed_bytes(domain, message), signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            raise BadSignature(f"bad {domain.name.lower()} signature for key {self.hex[:16]}…") from None

    def is_valid(self, domain: Domain, message: bytes, signature: bytes) -> bool:
        try:
            self.verify(domain, message, signature)
        except BadSignature:
            return False
        return True

    def __str__(self) -> str:
        return self.hex


class SigningKey:
    """An Ed25519 private key. ``repr`` never shows the secret."""

    __slots__ = ("_key", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        self._key = nacl.signing.SigningKey(seed)
        self.public = PublicKey(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, domain: Domain, message: bytes) -> bytes:
        return self._key.sign(_signed_bytes(domain, message)).signature

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.hex})"


def parse_public_key(text: str) -> PublicKey:
    """Parse a node id / account address (64 lowercase hex digits, optional ``0x``)."""
    s = text.strip().lower()
    if s.startswith("0x"):
        s = s[2:]
    try:
        raw = bytes.fromhex(s)
    except ValueError:
        raise LightningError(f"{text!r} is not hex; a key or node id is 64 hex digits") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise LightningError(f"{text!r} has {len(raw)} bytes; a key or node id is 32 bytes (64 hex digits)")
    return PublicKey(raw)
