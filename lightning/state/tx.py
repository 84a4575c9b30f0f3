"""Signed transactions: canonical msgpack, Ed25519 under ``Domain.TRANSACTION``, chain id, sender and nonce.

Wire form (canonical msgpack, see docs/state.md)::

    signed  = {"tx": payload, "sig": 64 bytes}
    payload = {"chain_id": int, "sender": 32 bytes, "nonce": int >= 1, "method": str, "args": {...}}

The signature covers ``encode(payload)``; the transaction's hash (its id, the key of its receipt) is
``blake3(encode(payload))``, so a signature cannot be malleated into a second id. :func:`decode_transaction` checks the
structure and every argument's type and range; rules that depend on the state are the executor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import blake3

from lightning.codec import CodecError, encode
from lightning.crypto import SIGNATURE_BYTES, BadSignature, Domain, PublicKey, SigningKey
from lightning.ids import AccountId
from lightning.state.fastcodec import decode_strict
from lightning.state.registry import METHODS
from lightning.state.schema import KEY, MapOf, TxMalformed, integer, text

__all__ = [
    "MAX_TX_BYTES",
    "SignedTransaction",
    "Transaction",
    "TxMalformed",
    "decode_transaction",
    "sign_transaction",
]

MAX_TX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Transaction:
    chain_id: int
    sender: AccountId
    nonce: int
    method: str
    args: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "sender": self.sender,
            "nonce": self.nonce,
            "method": self.method,
            "args": self.args,
        }


@dataclass(frozen=True)
class SignedTransaction:
    tx: Transaction
    signature: bytes
    raw: bytes  # the canonical signed bytes, as carried in blocks
    payload_bytes: bytes  # encode(payload): what the signature covers
    hash: bytes  # blake3(payload_bytes)

    def verify_signature(self) -> None:
        """Raises :class:`BadSignature`."""
        PublicKey(bytes(self.tx.sender)).verify(Domain.TRANSACTION, self.payload_bytes, self.signature)

    @property
    def sender(self) -> AccountId:
        return self.tx.sender

    @property
    def nonce(self) -> int:
        return self.tx.nonce


def sign_transaction(key: SigningKey, *, chain_id: int, nonce: int, method: str, **args: Any) -> SignedTransaction:
    """Build, check and sign a transaction from ``key``'s public key. Raises :class:`TxMalformed` for bad args."""
    tx = Transaction(chain_id, AccountId.of(key), nonce, method, args)
    payload = encode(tx.payload())
    raw = encode({"tx": tx.payload(), "sig": key.sign(Domain.TRANSACTION, payload)})
    return decode_transaction(raw)


_PAYLOAD = MapOf(
    {
        "chain_id": integer(1, 2**63 - 1),
        "sender": KEY,
        "nonce": integer(1, 2**63 - 1),
        "method": text(64),
        "args": MapOf({}),
    }
)


def decode_transaction(raw: bytes) -> SignedTransaction:
    """Parse and structurally check signed transaction bytes (the signature is checked separately).

    Raises :class:`TxMalformed`."""
    if len(raw) > MAX_TX_BYTES:
        raise TxMalformed(f"transaction of {len(raw)} bytes exceeds {MAX_TX_BYTES}")
    try:
        obj = decode_strict(raw, max_bytes=MAX_TX_BYTES)
    except CodecError as exc:
        raise TxMalformed(f"not a canonical transaction: {exc}") from None
    if not isinstance(obj, dict) or set(obj) != {"tx", "sig"}:
        raise TxMalformed("a signed transaction is a map of exactly 'tx' and 'sig'")
    sig, payload = obj["sig"], obj["tx"]
    if not isinstance(sig, bytes) or len(sig) != SIGNATURE_BYTES:
        raise TxMalformed(f"sig: expected {SIGNATURE_BYTES} bytes")
    if not isinstance(payload, dict):
        raise TxMalformed("tx: expected a map")
    args = payload.get("args")
    if not isinstance(args, dict):
        raise TxMalformed("tx.args: expected a map")
    _PAYLOAD({**payload, "args": {}}, "tx")
    method = payload["method"]
    entry = METHODS.get(method)
    if entry is None:
        raise TxMalformed(f"tx.method: unknown method {method!r}")
    entry.schema(args, f"{method}.args")
    tx = Transaction(payload["chain_id"], AccountId(payload["sender"]), payload["nonce"], method, args)
    # ``raw`` is the canonical {"tx": payload, "sig": sig}: map header, "tx", the payload's own canonical bytes, then
    # "sig" and a bin8 header and the 64 signature bytes, so the payload bytes are a slice (no re-encoding).
    raw = bytes(raw)
    payload_bytes = raw[len(_HEAD) : -len(_TAIL) - SIGNATURE_BYTES]
    assert raw.startswith(_HEAD) and raw[-len(_TAIL) - SIGNATURE_BYTES : -SIGNATURE_BYTES] == _TAIL
    return SignedTransaction(tx, sig, raw, payload_bytes, blake3.blake3(payload_bytes).digest())


_HEAD = b"\x82\xa2tx"
_TAIL = b"\xa3sig\xc4\x40"


def check_signature(stx: SignedTransaction) -> str | None:
    """The reason the signature is bad, or None."""
    try:
        stx.verify_signature()
    except BadSignature as exc:
        return str(exc)
    return None
