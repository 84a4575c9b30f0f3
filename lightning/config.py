"""Node configuration: TOML, one table per component, each a frozen dataclass with documented defaults.

Each package owns its table's dataclass, in its own stdlib-only module (``lightning/net/config.py`` …), so a sans-IO
core can import its config without the loader; this module composes them into :class:`Config` (one field per TOML
table; the node's own ``[node]`` and ``[log]`` live here), loads and validates files, and writes them back out. A
field documents and checks itself through its metadata (:mod:`lightning.config_fields`).

The loader is strict: an unknown key, a wrong type or an out-of-range value raises :class:`ConfigError` whose message
starts with the file and the key path (``config.toml: http.port: expected an integer, got 'abc'``). CLI flags override
values after loading (:func:`dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from lightning.blockstore.config import BlockstoreConfig
from lightning.broadcast.config import BroadcastConfig
from lightning.chain.config import StateConfig
from lightning.config_fields import check_host, check_port, doc, positive
from lightning.consensus.config import ConsensusConfig
from lightning.errors import LightningError
from lightning.fetcher.config import FetcherConfig, OriginIpfsConfig, OriginUrlConfig
from lightning.http.config import HttpConfig
from lightning.net.config import NetConfig, TopologyConfig
from lightning.rpc.config import RpcConfig

__all__ = [
    "Config",
    "ConfigError",
    "LogConfig",
    "NodeConfig",
    "dump_toml",
    "load_config",
    "parse_section",
    "read_toml",
]


class ConfigError(LightningError):
    """A config or genesis file that is unreadable, not TOML, or does not match its schema."""


@dataclass(frozen=True)
class NodeConfig:
    listen_host: str = field(
        default="0.0.0.0",
        metadata=doc("address the client endpoint, QUIC pool and pinger bind", check_host),
    )
    rpc_host: str = field(
        default="127.0.0.1",
        metadata=doc("address the JSON-RPC / metrics endpoint binds", check_host),
    )
    genesis: str = field(
        default="genesis.toml", metadata=doc("genesis file; a relative path is relative to the home directory")
    )
    shutdown_grace_s: float = field(
        default=5.0, metadata=doc("seconds components get to close cleanly on SIGINT/SIGTERM", positive)
    )


@dataclass(frozen=True)
class PingerConfig:
    port: int = field(
        default=4350,
        metadata=doc(
            "UDP port of the pinger (peer latency and uptime measurements, on node.listen_host); the port this node's "
            "registration publishes",
            check_port,
        ),
    )


@dataclass(frozen=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = field(default="info", metadata=doc("log level"))
    format: Literal["text", "json"] = field(default="text", metadata=doc("log line format"))


@dataclass(frozen=True)
class Config:
    """The whole ``config.toml``: one field per table, in the order ``print-config`` writes them."""

    node: NodeConfig = field(default_factory=NodeConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    blockstore: BlockstoreConfig = field(default_factory=BlockstoreConfig)
    state: StateConfig = field(default_factory=StateConfig)
    net: NetConfig = field(default_factory=NetConfig)
    fetcher: FetcherConfig = field(default_factory=FetcherConfig)
    origin_ipfs: OriginIpfsConfig = field(default_factory=OriginIpfsConfig)
    origin_url: OriginUrlConfig = field(default_factory=OriginUrlConfig)
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    broadcast: BroadcastConfig = field(default_factory=BroadcastConfig)
    consensus: ConsensusConfig = field(default_factory=ConsensusConfig)
    pinger: PingerConfig = field(default_factory=PingerConfig)
    log: LogConfig = field(default_factory=LogConfig)


T = TypeVar("T")

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return parse_section(tp, value, where)  # type: ignore[arg-type]  # tp is a dataclass type here
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp in (int, str, bool):
        if type(value) is not tp:
            raise ConfigError(f"{where}: expected {_TYPE_NAMES[tp]}, got {value!r}")
        return value
    raise AssertionError(f"unsupported config type {tp!r} at {where}")


def parse_section(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown keys and bad values with the key path."""
    assert dataclasses.is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known keys here: {known})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        converted = _convert(value, hints[name], key)
        check = fields[name].metadata.get("check")
        if check is not None:
            problem = check(converted)
            if problem:
                raise ConfigError(f"{key}: {problem}, got {value!r}")
        kwargs[name] = converted
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a dataclass's own cross-field check
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a one-line :class:`ConfigError` naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(path: Path) -> Config:
    """Load and validate a node config file."""
    data = read_toml(path)
    try:
        return parse_section(Config, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise AssertionError(f"cannot write {v!r} as TOML")


def dump_toml(config: Any, *, with_docs: bool = True) -> str:
    """Render a config dataclass (tables of scalars) as commented TOML."""
    lines: list[str] = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if lines:
            lines.append("")
        lines.append(f"[{section.name}]")
        for f in dataclasses.fields(value):
            doc = f.metadata.get("doc")
            if with_docs and doc:
                lines.append(f"# {doc}")
            lines.append(f"{f.name} = {_toml_value(getattr(value, f.name))}")
    return "\n".join(lines) + "\n"
