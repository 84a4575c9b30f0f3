"""Identities: :class:`NodeId` (a node) and :class:`AccountId` (an account), one type each everywhere.

Both are ``bytes`` subclasses holding exactly the raw bytes the wire and the state always carried, so they encode
(msgpack, state rows, signatures) byte for byte as before, compare and hash equal to those bytes, and sort by them.
Text form: lowercase hex (``str()``); ``short()`` is the 16-hex-digit prefix used in logs and messages.

- A node id is the 32-byte Ed25519 public key of the node's node key (its identity in the pool and the registry).
- An account id is a 32-byte Ed25519 public key, or (for Ethereum-style accounts) a 20-byte address; the length
  tells them apart, so there is no tag byte and no state root changes.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from lightning.crypto import PUBLIC_KEY_BYTES, Domain, PublicKey, SigningKey
from lightning.errors import LightningError

__all__ = ["ADDRESS_BYTES", "AccountId", "NodeId"]

ADDRESS_BYTES = 20


def _from_hex(text: str, what: str, sizes: dict[int, str]) -> bytes:
    s = text.strip().lower().removeprefix("0x")
    expected = " or ".join(f"{2 * n} hex digits ({name})" for n, name in sizes.items())
    try:
        raw = bytes.fromhex(s)
    except ValueError:
        raise LightningError(f"{text!r} is not hex; {what} is {expected}") from None
    if len(raw) not in sizes:
        raise LightningError(f"{text!r} has {len(raw)} bytes; {what} is {expected}")
    return raw


class _Id(bytes):
    """Text forms shared by the identity types: full hex, a 16-digit prefix for logs, a repr naming the type."""

    __slots__ = ()
    SIZES: ClassVar[dict[int, str]]  # allowed lengths -> what a value of that length is
    WHAT: ClassVar[str]

    def __new__(cls, raw: bytes | PublicKey) -> Self:
        if type(raw) is cls:
            return raw
        if isinstance(raw, PublicKey):
            raw = raw.raw
        if len(raw) not in cls.SIZES:
            sizes = " or ".join(map(str, cls.SIZES))
            raise ValueError(f"{cls.WHAT} is {sizes} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def parse(cls, text: str) -> Self:
        """From hex (``0x`` accepted). Raises :class:`LightningError` saying what is wrong."""
        return cls(_from_hex(text, cls.WHAT, cls.SIZES))

    @classmethod
    def of(cls, key: SigningKey | PublicKey) -> Self:
        return cls(key.public if isinstance(key, SigningKey) else key)

    def short(self) -> str:
        return self.hex()[:16]

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()[:16]}…)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (bytes(self),))


class NodeId(_Id):
    """A node's identity: the raw 32-byte public key of its node key."""

    __slots__ = ()
    SIZES: ClassVar[dict[int, str]] = {PUBLIC_KEY_BYTES: "an Ed25519 public key"}
    WHAT: ClassVar[str] = "a node id"

    @property
    def key(self) -> PublicKey:
        """The node key, to verify what the node signed."""
        return PublicKey(bytes(self))

    def verify(self, domain: Domain, message: bytes, signature: bytes) -> None:
        """Raises :class:`~lightning.crypto.BadSignature` unless the node key signed ``message`` under ``domain``."""
        self.key.verify(domain, message, signature)


class AccountId(_Id):
    """An account: a 32-byte Ed25519 public key, or a 20-byte (Ethereum-style) address."""

    __slots__ = ()
    SIZES: ClassVar[dict[int, str]] = {PUBLIC_KEY_BYTES: "an Ed25519 public key", ADDRESS_BYTES: "an address"}
    WHAT: ClassVar[str] = "an account"

    @property
    def is_ed25519(self) -> bool:
        return len(self) == PUBLIC_KEY_BYTES

    @property
    def is_address(self) -> bool:
        return len(self) == ADDRESS_BYTES
