"""Signed transactions: canonical msgpack, Ed25519 under ``Domain.TRANSACTION``, chain id, sender and nonce.

Wire form (canonical msgpack, see docs/state.md)::

    signed  = {"tx": payload, "sig": 64 bytes}
    payload = {"chain_id": int, "sender": 32 bytes, "nonce": int >= 1, "method": str, "args": {...}}

The signature covers ``encode(payload)``; the transaction's hash (its id, the key of its receipt) is
``blake3(encode(payload))``, so a signature cannot be malleated into a second id. :func:`decode_transaction` checks the
structure and every argument's type and range; rules that depend on the state are the executor's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import blake3

from lightning.codec import CodecError, encode
from lightning.crypto import SIGNATURE_BYTES, BadSignature, Domain, PublicKey, SigningKey
from lightning.errors import LightningError
from lightning.state.fastcodec import decode_strict

__all__ = [
    "MAX_TX_BYTES",
    "METHODS",
    "SignedTransaction",
    "Transaction",
    "TxMalformed",
    "decode_transaction",
    "sign_transaction",
]

MAX_TX_BYTES = 64 * 1024
MAX_AMOUNT = 2**128 - 1
MAX_MEASUREMENTS = 1024
MAX_CONTENT_UPDATES = 256
MAX_CID_BYTES = 128
MAX_HOST_CHARS = 253
MAX_EVIDENCE_BYTES = 16 * 1024


class TxMalformed(LightningError):
    """Bytes that are not a well-formed signed transaction (bad encoding, fields, arguments or signature)."""


Check = Callable[[Any, str], None]


def _fail(where: str, what: str) -> None:
    raise TxMalformed(f"{where}: {what}")


def _int(lo: int, hi: int) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            _fail(where, f"expected an integer in [{lo}, {hi}]")

    return check


def _bytes(n: int | None = None, max_len: int | None = None) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, bytes):
            _fail(where, "expected bytes")
        elif n is not None and len(v) != n:
            _fail(where, f"expected {n} bytes, got {len(v)}")
        elif max_len is not None and len(v) > max_len:
            _fail(where, f"longer than {max_len} bytes")

    return check


def _str(max_len: int) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, str) or not 0 < len(v) <= max_len:
            _fail(where, f"expected a string of 1..{max_len} characters")

    return check


def _bool(v: Any, where: str) -> None:
    if not isinstance(v, bool):
        _fail(where, "expected true or false")


KEY = _bytes(32)
AMOUNT = _int(1, MAX_AMOUNT)
EPOCH = _int(0, 2**63 - 1)
PORT = _int(0, 65535)
U64 = _int(0, 2**64 - 1)


def _map(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    optional = optional or {}

    def check(v: Any, where: str) -> None:
        if not isinstance(v, dict):
            _fail(where, "expected a map")
        for k in v:
            if k not in required and k not in optional:
                _fail(where, f"unknown field {k!r}")
        for k, c in required.items():
            if k not in v:
                _fail(where, f"missing field {k!r}")
            c(v[k], f"{where}.{k}")
        for k, c in optional.items():
            if k in v:
                c(v[k], f"{where}.{k}")

    return check


def _list(item: Check, max_len: int, *, unique_by: str | None = None) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, list) or not 0 < len(v) <= max_len:
            _fail(where, f"expected a list of 1..{max_len} items")
        for i, x in enumerate(v):
            item(x, f"{where}[{i}]")
        if unique_by is not None:
            keys = [x[unique_by] for x in v]
            if keys != sorted(set(keys)):
                _fail(where, f"items must be sorted by {unique_by!r}, without repeats")

    return check


PORTS = _map({"quic": PORT, "http": PORT, "pinger": PORT}, {"rpc": PORT})
MEASUREMENT = _map(
    {
        "node": KEY,
        "latency_ms": _int(0, 3_600_000),
        "uptime_pct": _int(0, 100),
        "bytes_served": U64,
        "requests": U64,
    }
)
CONTENT_UPDATE = _map({"root": KEY, "remove": _bool}, {"cid": _bytes(max_len=MAX_CID_BYTES)})

# method -> argument schema. Method names are stable wire identifiers; never rename one.
METHODS: dict[str, Check] = {
    "transfer": _map({"to": KEY, "amount": AMOUNT}),
    "mint": _map({"to": KEY, "amount": AMOUNT}),
    "stake": _map(
        {"node": KEY, "amount": AMOUNT},
        {"consensus_key": KEY, "host": _str(MAX_HOST_CHARS), "ports": PORTS},
    ),
    "stake_lock": _map({"node": KEY, "epochs": _int(1, 2**32)}),
    "unstake": _map({"node": KEY, "amount": AMOUNT}),
    "withdraw_unstaked": _map({"node": KEY}, {"recipient": KEY}),
    "opt_in": _map({"node": KEY}),
    "opt_out": _map({"node": KEY}),
    "change_epoch": _map({"epoch": EPOCH}),
    "beacon_commit": _map({"epoch": EPOCH, "commitment": KEY}),
    "beacon_reveal": _map({"epoch": EPOCH, "reveal": KEY}),
    "submit_reputation_measurements": _map(
        {"epoch": EPOCH, "measurements": _list(MEASUREMENT, MAX_MEASUREMENTS, unique_by="node")}
    ),
    "update_content_registry": _map({"updates": _list(CONTENT_UPDATE, MAX_CONTENT_UPDATES, unique_by="root")}),
    "change_protocol_param": _map({"name": _str(64), "value": _int(0, MAX_AMOUNT)}),
    "slash": _map(
        {
            "node": KEY,
            "amount": AMOUNT,
            "evidence": _map({"kind": _str(64), "data": _bytes(max_len=MAX_EVIDENCE_BYTES)}),
        }
    ),
}


@dataclass(frozen=True)
class Transaction:
    chain_id: int
    sender: bytes
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
        PublicKey(self.tx.sender).verify(Domain.TRANSACTION, self.payload_bytes, self.signature)

    @property
    def sender(self) -> bytes:
        return self.tx.sender

    @property
    def nonce(self) -> int:
        return self.tx.nonce


def sign_transaction(key: SigningKey, *, chain_id: int, nonce: int, method: str, **args: Any) -> SignedTransaction:
    """Build, check and sign a transaction from ``key``'s public key. Raises :class:`TxMalformed` for bad args."""
    tx = Transaction(chain_id, key.public.raw, nonce, method, args)
    payload = encode(tx.payload())
    raw = encode({"tx": tx.payload(), "sig": key.sign(Domain.TRANSACTION, payload)})
    return decode_transaction(raw)


_PAYLOAD = _map(
    {"chain_id": _int(1, 2**63 - 1), "sender": KEY, "nonce": _int(1, 2**63 - 1), "method": _str(64), "args": _map({})}
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
    schema = METHODS.get(method)
    if schema is None:
        raise TxMalformed(f"tx.method: unknown method {method!r}")
    schema(args, f"{method}.args")
    tx = Transaction(payload["chain_id"], payload["sender"], payload["nonce"], method, args)
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
