"""The state's tables and typed rows, and :class:`StateView`, typed access over any key-value layer.

Every row is ``(table, key) -> canonical msgpack value``; every table is covered by the state root (``smt.py``).
Keys are raw bytes (32-byte public keys, ``u64be(epoch)`` prefixes); see docs/state.md for the full layout.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lightning.codec import decode_trusted, encode
from lightning.errors import LightningError
from lightning.ids import AccountId, NodeId
from lightning.state.errors import StateError
from lightning.state.fastcodec import encode_fast

__all__ = [
    "KV",
    "TABLES",
    "Account",
    "BeaconEntry",
    "Committee",
    "EpochInfo",
    "Measurement",
    "NodeInfo",
    "Ports",
    "StateCorrupt",
    "StateView",
    "u64",
]

ACCOUNTS = "accounts"  # address -> Account
NODES = "nodes"  # node id -> NodeInfo
NODE_KEYS = "node_keys"  # node or consensus public key -> node id (keys are unique across the registry)
COMMITTEES = "committees"  # u64be epoch -> Committee
EPOCHS = "epochs"  # u64be epoch -> EpochInfo
PARAMS = "params"  # name (utf-8) -> int
META = "meta"  # name (utf-8) -> value: epoch, supply, chain_id, faucet, governance, protocol_fund
CONTENT_PROVIDERS = "content_providers"  # blake3 root -> sorted [node id]
CONTENT_CIDS = "content_cids"  # CID bytes -> blake3 root
SERVED = "served"  # u64be epoch || node id -> {"bytes", "requests"}
MINTS = "mints"  # recipient -> {"epoch", "amount"}: faucet mints this epoch
BEACON = "beacon"  # u64be epoch || node id -> BeaconEntry
EPOCH_VOTES = "epoch_votes"  # u64be epoch || node id -> true
MEASUREMENTS = "measurements"  # u64be epoch || subject || reporter -> Measurement
PROTOCOL_TXS = "protocol_txs"  # u64be epoch || node id -> free protocol transactions executed this epoch (fees.py)

TABLES = (
    ACCOUNTS,
    NODES,
    NODE_KEYS,
    COMMITTEES,
    EPOCHS,
    PARAMS,
    META,
    CONTENT_PROVIDERS,
    CONTENT_CIDS,
    SERVED,
    MINTS,
    BEACON,
    EPOCH_VOTES,
    MEASUREMENTS,
    PROTOCOL_TXS,
)

PARTICIPATION = ("true", "false", "opted_in", "opted_out")

_U64 = struct.Struct(">Q")


def u64(v: int) -> bytes:
    return _U64.pack(v)


class StateCorrupt(StateError):
    """A stored row that does not decode as its table's type (disk corruption or a bug)."""


class KV(Protocol):
    def get(self, table: str, key: bytes) -> bytes | None: ...

    def put(self, table: str, key: bytes, value: bytes) -> None: ...

    def delete(self, table: str, key: bytes) -> None: ...

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Rows whose key starts with ``prefix``, in key order."""
        ...


@dataclass(frozen=True)
class Account:
    balance: int = 0
    nonce: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {"balance": self.balance, "nonce": self.nonce}

    @classmethod
    def from_wire(cls, v: Any) -> Account:
        return cls(v["balance"], v["nonce"])


@dataclass(frozen=True)
class Ports:
    quic: int = 4300
    http: int = 4220
    pinger: int = 4350
    rpc: int = 0  # 0: not published

    def to_wire(self) -> dict[str, Any]:
        return {"quic": self.quic, "http": self.http, "pinger": self.pinger, "rpc": self.rpc}

    @classmethod
    def from_wire(cls, v: Any) -> Ports:
        return cls(v["quic"], v["http"], v["pinger"], v.get("rpc", 0))


@dataclass(frozen=True)
class NodeInfo:
    owner: AccountId
    consensus_key: bytes
    host: str
    ports: Ports
    stake: int = 0
    stake_locked_until: int = 0  # epoch before which no unstake is allowed (StakeLock)
    locked: int = 0  # unstaked, waiting for withdrawal
    locked_until: int = 0  # epoch from which ``locked`` may be withdrawn
    participation: str = "true"
    reputation: int | None = None  # 0..100 once measured
    registered_epoch: int = 0
    registration_seq: int = 0  # seq of the signed registration in force (0: registered by genesis)

    def to_wire(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "consensus_key": self.consensus_key,
            "host": self.host,
            "ports": self.ports.to_wire(),
            "stake": self.stake,
            "stake_locked_until": self.stake_locked_until,
            "locked": self.locked,
            "locked_until": self.locked_until,
            "participation": self.participation,
            "reputation": self.reputation,
            "registered_epoch": self.registered_epoch,
            "registration_seq": self.registration_seq,
        }

    @classmethod
    def from_wire(cls, v: Any) -> NodeInfo:
        return cls(**{**v, "owner": AccountId(v["owner"]), "ports": Ports.from_wire(v["ports"])})

    def with_(self, **changes: Any) -> NodeInfo:
        return replace(self, **changes)


@dataclass(frozen=True)
class EpochInfo:
    start_ms: int
    end_ms: int  # planned end; the epoch changes at the first block at or after it with a quorum of votes

    def to_wire(self) -> dict[str, Any]:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms}

    @classmethod
    def from_wire(cls, v: Any) -> EpochInfo:
        return cls(v["start_ms"], v["end_ms"])


@dataclass(frozen=True)
class Committee:
    members: tuple[NodeId, ...]  # index i signs as committee member i
    seed: bytes  # the beacon output that selected them

    def to_wire(self) -> dict[str, Any]:
        return {"members": list(self.members), "seed": self.seed}

    @classmethod
    def from_wire(cls, v: Any) -> Committee:
        return cls(tuple(NodeId(m) for m in v["members"]), v["seed"])


@dataclass(frozen=True)
class BeaconEntry:
    commitment: bytes
    reveal: bytes | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"commitment": self.commitment, "reveal": self.reveal}

    @classmethod
    def from_wire(cls, v: Any) -> BeaconEntry:
        return cls(v["commitment"], v["reveal"])


@dataclass(frozen=True)
class Measurement:
    latency_ms: int
    uptime_pct: int
    bytes_served: int
    requests: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "uptime_pct": self.uptime_pct,
            "bytes_served": self.bytes_served,
            "requests": self.requests,
        }

    @classmethod
    def from_wire(cls, v: Any) -> Measurement:
        return cls(v["latency_ms"], v["uptime_pct"], v["bytes_served"], v["requests"])


# Decoded typed rows by their bytes (a row's bytes determine its value, and the records are immutable), so the
# executor decodes a row once however often a block reads it back.
_DECODED: dict[tuple[type, bytes], Any] = {}
_DECODED_MAX = 1 << 16


def _remember(cls: type, raw: bytes, obj: Any) -> None:
    if len(_DECODED) >= _DECODED_MAX:
        _DECODED.clear()
    _DECODED[(cls, raw)] = obj


MISSING: Any = object()  # "no typed record here": read the row's bytes instead


def encode_record(obj: Any) -> bytes:
    """A typed row's canonical bytes (remembered, so reading them back costs no decoding)."""
    raw = encode_fast(obj.to_wire())
    _remember(type(obj), raw, obj)
    return raw


def _load(table: str, key: bytes, raw: bytes) -> Any:
    try:
        return decode_trusted(raw)
    except LightningError as exc:
        raise StateCorrupt(f"state row {table}/{key.hex()} does not decode: {exc}") from None


class StateView:
    """Typed reads and writes of the tables over a :class:`KV` (an executor overlay or a read transaction)."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv

    def row(self, table: str, key: bytes) -> Any:
        raw = self.kv.get(table, key)
        return None if raw is None else _load(table, key, raw)

    def put_row(self, table: str, key: bytes, value: Any) -> None:
        self.kv.put(table, key, encode(value))

    def delete_row(self, table: str, key: bytes) -> None:
        self.kv.delete(table, key)

    def _typed(self, table: str, key: bytes, cls: Any) -> Any:
        get_record = getattr(self.kv, "get_record", None)
        if get_record is not None:
            obj = get_record(table, key)
            if obj is not MISSING:
                return obj
        raw = self.kv.get(table, key)
        if raw is None:
            return None
        hit = _DECODED.get((cls, raw))
        if hit is not None:
            return hit
        try:
            obj = cls.from_wire(_load(table, key, raw))
        except (KeyError, TypeError, ValueError) as exc:
            raise StateCorrupt(f"state row {table}/{key.hex()} is not a {cls.__name__}: {exc}") from None
        _remember(cls, raw, obj)
        return obj

    def _put_typed(self, table: str, key: bytes, obj: Any) -> None:
        put_record = getattr(self.kv, "put_record", None)
        if put_record is not None:
            put_record(table, key, obj)  # an overlay encodes it once, when the block's writes are collected
            return
        self.kv.put(table, key, encode_record(obj))

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, Any]]:
        for k, raw in self.kv.scan(table, prefix):
            yield k, _load(table, k, raw)

    # -- accounts -----------------------------------------------------------------------------------------------
    def account(self, address: bytes) -> Account:
        a: Account | None = self._typed(ACCOUNTS, address, Account)
        return a if a is not None else Account()

    def set_account(self, address: bytes, account: Account) -> None:
        assert account.balance >= 0 and account.nonce >= 0
        if account == Account():
            self.kv.delete(ACCOUNTS, address)  # an empty account is no row at all (so the root ignores it)
        else:
            self._put_typed(ACCOUNTS, address, account)

    # -- nodes --------------------------------------------------------------------------------------------------
    def node(self, node_id: bytes) -> NodeInfo | None:
        n: NodeInfo | None = self._typed(NODES, node_id, NodeInfo)
        return n

    def set_node(self, node_id: bytes, node: NodeInfo) -> None:
        assert node.stake >= 0 and node.locked >= 0 and node.participation in PARTICIPATION
        self._put_typed(NODES, node_id, node)

    def key_owner(self, public_key: bytes) -> NodeId | None:
        v = self.row(NODE_KEYS, public_key)
        return NodeId(v) if isinstance(v, bytes) else None

    def index_key(self, public_key: bytes, node_id: bytes) -> None:
        self.put_row(NODE_KEYS, public_key, node_id)

    def nodes(self) -> Iterator[tuple[NodeId, NodeInfo]]:
        for k, v in self.scan(NODES):
            yield NodeId(k), NodeInfo.from_wire(v)

    # -- epochs -------------------------------------------------------------------------------------------------
    def meta(self, name: str, default: Any = None) -> Any:
        v = self.row(META, name.encode())
        return default if v is None else v

    def set_meta(self, name: str, value: Any) -> None:
        self.put_row(META, name.encode(), value)

    @property
    def epoch(self) -> int:
        e: int = self.meta("epoch", 0)
        return e

    def epoch_info(self, epoch: int) -> EpochInfo | None:
        e: EpochInfo | None = self._typed(EPOCHS, u64(epoch), EpochInfo)
        return e

    def set_epoch_info(self, epoch: int, info: EpochInfo) -> None:
        self.put_row(EPOCHS, u64(epoch), info.to_wire())

    def committee(self, epoch: int) -> Committee | None:
        c: Committee | None = self._typed(COMMITTEES, u64(epoch), Committee)
        return c

    def set_committee(self, epoch: int, committee: Committee) -> None:
        self.put_row(COMMITTEES, u64(epoch), committee.to_wire())

    # -- params -------------------------------------------------------------------------------------------------
    def param(self, name: str) -> int:
        v = self.row(PARAMS, name.encode())
        if not isinstance(v, int):
            raise StateCorrupt(f"protocol param {name!r} is missing from the state")
        return v

    def set_param(self, name: str, value: int) -> None:
        self.put_row(PARAMS, name.encode(), value)

    def params(self) -> dict[str, int]:
        return {k.decode(): v for k, v in self.scan(PARAMS)}
