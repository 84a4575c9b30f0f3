"""Genesis: the chain's first state, shared by every node of a network (TOML; see docs/genesis.md).

Amounts in genesis are TOML integers in base units (only small ones fit in TOML's 64 bits) or strings: ``"1000 FLK"``
(decimal FLK, exact) or ``"1000000000000000000000"`` (base units).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning.amounts import AmountError, format_flk, parse_flk
from lightning.codec import encode
from lightning.config import ConfigError, parse_section, read_toml
from lightning.config_fields import check_host, check_port
from lightning.crypto import PublicKey, parse_public_key
from lightning.errors import LightningError

__all__ = [
    "Genesis",
    "GenesisAccount",
    "GenesisNode",
    "GenesisParams",
    "load_genesis",
    "parse_amount",
    "render_genesis",
]


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def parse_amount(value: Any, where: str) -> int:
    """An amount as genesis writes it → base units."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"{where}: amounts cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        s = value.strip()
        try:
            if s.upper().endswith("FLK"):
                return parse_flk(s[:-3])
            if s.isdigit():
                return int(s)
        except AmountError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    raise ConfigError(f'{where}: expected an amount like "1000 FLK" or an integer of base units, got {value!r}')


@dataclass(frozen=True)
class GenesisParams:
    """Protocol parameters; the state machine reads its rules from here."""

    epoch_time_ms: int = field(default=24 * 3600 * 1000, metadata={"doc": "epoch length in milliseconds"})
    committee_size: int = field(default=4, metadata={"doc": "committee members per epoch (n = 3f+1 is best)"})
    min_stake: str | int = field(default="1000 FLK", metadata={"doc": "smallest stake that makes a node eligible"})
    stake_lock_epochs: int = field(default=5, metadata={"doc": "epochs an unstake waits before withdrawal"})
    max_block_transactions: int = field(default=1000, metadata={"doc": "transactions per block at most"})
    faucet_mint_per_epoch: str | int = field(
        default="1000 FLK", metadata={"doc": "faucet mint cap per recipient per epoch"}
    )
    block_time_window_ms: int = field(
        default=30_000, metadata={"doc": "how far a proposer's block timestamp may be ahead of a validator's clock"}
    )
    max_stake_lock_epochs: int = field(default=1460, metadata={"doc": "longest StakeLock, in epochs"})
    beacon_no_reveal_slash: str | int = field(
        default="10 FLK",
        metadata={"doc": "slashed at the epoch change from a member that committed a beacon value, never revealed"},
    )
    base_fee: str | int = field(
        default="0.0005 FLK", metadata={"doc": "fee of every paid transaction, plus fee_per_byte per signed byte"}
    )
    fee_per_byte: str | int = field(
        default="0.0000025 FLK", metadata={"doc": "fee per byte of a paid signed transaction (200 bytes: 0.001 FLK)"}
    )
    protocol_txs_per_epoch: int = field(
        default=64,
        metadata={"doc": "free protocol transactions (epoch change, beacon, measurements) per node per epoch"},
    )


@dataclass(frozen=True)
class GenesisNode:
    node_key: str
    consensus_key: str
    owner: str
    host: str = "127.0.0.1"
    quic_port: int = 4300
    http_port: int = 4220
    pinger_port: int = 4350
    rpc_port: int = 4240
    stake: str | int = "1000 FLK"
    committee: bool = False

    def __post_init__(self) -> None:
        for name in ("node_key", "consensus_key", "owner"):
            try:
                parse_public_key(getattr(self, name))
            except LightningError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if check_host(self.host) and not _HOSTNAME.fullmatch(self.host):
            raise ValueError(f"host: must be an IP address or a host name, got {self.host!r}")
        for name in ("quic_port", "http_port", "pinger_port", "rpc_port"):
            problem = check_port(getattr(self, name))
            if problem:
                raise ValueError(f"{name}: {problem}")

    @property
    def node_id(self) -> str:
        return parse_public_key(self.node_key).hex


@dataclass(frozen=True)
class GenesisAccount:
    address: str
    balance: str | int = "0"

    def __post_init__(self) -> None:
        try:
            parse_public_key(self.address)
        except LightningError as exc:
            raise ValueError(f"address: {exc}") from None


@dataclass(frozen=True)
class _GenesisFile:
    chain_id: int
    genesis_time_ms: int
    params: GenesisParams = GenesisParams()
    faucet: str = ""
    governance: str = ""
    nodes: list[GenesisNode] = field(default_factory=list)
    accounts: list[GenesisAccount] = field(default_factory=list)


@dataclass(frozen=True)
class Genesis:
    chain_id: int
    genesis_time_ms: int
    params: GenesisParams
    faucet: PublicKey | None
    governance: PublicKey | None
    nodes: tuple[GenesisNode, ...]
    balances: dict[str, int]  # account hex -> base units
    stakes: dict[str, int]  # node id hex -> base units
    min_stake: int

    @property
    def committee(self) -> tuple[GenesisNode, ...]:
        return tuple(n for n in self.nodes if n.committee)

    def digest(self) -> bytes:
        """A hash every node of one network agrees on (the chain's identity beside ``chain_id``)."""
        body = {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "params": {k: getattr(self.params, k) for k in self.params.__dataclass_fields__},
            "faucet": self.faucet.raw if self.faucet else b"",
            "governance": self.governance.raw if self.governance else b"",
            "nodes": [{k: getattr(n, k) for k in n.__dataclass_fields__} for n in self.nodes],
            "balances": self.balances,
            "stakes": self.stakes,
        }
        return hashlib.blake2b(encode(body), digest_size=32).digest()


def _validate(raw: _GenesisFile) -> Genesis:
    if raw.chain_id <= 0:
        raise ConfigError("chain_id: must be a positive integer")
    if raw.genesis_time_ms < 0:
        raise ConfigError("genesis_time_ms: cannot be negative")
    p = raw.params
    if p.epoch_time_ms <= 0:
        raise ConfigError("params.epoch_time_ms: must be greater than 0")
    if p.committee_size <= 0:
        raise ConfigError("params.committee_size: must be greater than 0")
    min_stake = parse_amount(p.min_stake, "params.min_stake")
    parse_amount(p.faucet_mint_per_epoch, "params.faucet_mint_per_epoch")
    if parse_amount(p.base_fee, "params.base_fee") < 1:
        raise ConfigError("params.base_fee: must be at least 1 base unit (no free writes: docs/fees.md)")
    parse_amount(p.fee_per_byte, "params.fee_per_byte")
    if p.protocol_txs_per_epoch < 4:
        raise ConfigError("params.protocol_txs_per_epoch: must be at least 4 (a committee member sends 4 per epoch)")
    if not raw.nodes:
        raise ConfigError("nodes: a genesis needs at least one node")
    seen: set[str] = set()
    stakes: dict[str, int] = {}
    for i, n in enumerate(raw.nodes):
        for key in (n.node_key, n.consensus_key):
            k = parse_public_key(key).hex
            if k in seen:
                raise ConfigError(f"nodes[{i}]: key {k[:16]}… appears twice")
            seen.add(k)
        stake = parse_amount(n.stake, f"nodes[{i}].stake")
        if n.committee and stake < min_stake:
            raise ConfigError(
                f"nodes[{i}].stake: a committee node needs at least {format_flk(min_stake)} FLK, "
                f"has {format_flk(stake)} FLK"
            )
        stakes[n.node_id] = stake
    if not any(n.committee for n in raw.nodes):
        raise ConfigError("nodes: at least one node must have committee = true")
    balances: dict[str, int] = {}
    for i, a in enumerate(raw.accounts):
        addr = parse_public_key(a.address).hex
        if addr in balances:
            raise ConfigError(f"accounts[{i}].address: {addr[:16]}… appears twice")
        balances[addr] = parse_amount(a.balance, f"accounts[{i}].balance")
    return Genesis(
        chain_id=raw.chain_id,
        genesis_time_ms=raw.genesis_time_ms,
        params=p,
        faucet=parse_public_key(raw.faucet) if raw.faucet else None,
        governance=parse_public_key(raw.governance) if raw.governance else None,
        nodes=tuple(raw.nodes),
        balances=balances,
        stakes=stakes,
        min_stake=min_stake,
    )


def parse_genesis(data: dict[str, Any]) -> Genesis:
    try:
        return _validate(parse_section(_GenesisFile, data))
    except LightningError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None


def load_genesis(path: Path) -> Genesis:
    """Load and validate a genesis file. Raises :class:`ConfigError` naming the file and key."""
    data = read_toml(path)
    try:
        return parse_genesis(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _q(s: str) -> str:
    return '"' + s + '"'


def render_genesis(
    *,
    chain_id: int,
    genesis_time_ms: int,
    nodes: list[GenesisNode],
    accounts: list[GenesisAccount],
    params: GenesisParams = GenesisParams(),
    faucet: str = "",
    governance: str = "",
) -> str:
    """Write a genesis as TOML (the inverse of :func:`load_genesis`)."""
    out = [
        "# lightning-py genesis — see docs/genesis.md",
        f"chain_id = {chain_id}",
        f"genesis_time_ms = {genesis_time_ms}",
    ]
    if faucet:
        out.append(f"faucet = {_q(faucet)}")
    if governance:
        out.append(f"governance = {_q(governance)}")
    out += ["", "[params]"]
    for name in params.__dataclass_fields__:
        v = getattr(params, name)
        out.append(f"{name} = {_q(v) if isinstance(v, str) else v}")
    for n in nodes:
        out += ["", "[[nodes]]"]
        for name in n.__dataclass_fields__:
            v = getattr(n, name)
            if isinstance(v, bool):
                out.append(f"{name} = {'true' if v else 'false'}")
            elif isinstance(v, int):
                out.append(f"{name} = {v}")
            else:
                out.append(f"{name} = {_q(v)}")
    for a in accounts:
        balance = _q(a.balance) if isinstance(a.balance, str) else str(a.balance)
        out += ["", "[[accounts]]", f"address = {_q(a.address)}", f"balance = {balance}"]
    return "\n".join(out) + "\n"
