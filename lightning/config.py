"""Node configuration: TOML, one table per component, each a frozen dataclass with documented defaults.

The loader is strict: an unknown key, a wrong type or an out-of-range value raises :class:`ConfigError` whose message
starts with the file and the key path (``config.toml: http.port: expected an integer, got 'abc'``). CLI flags override
values after loading (:func:`dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from lightning.errors import LightningError

__all__ = [
    "BlockstoreConfig",
    "BroadcastConfig",
    "Config",
    "ConfigError",
    "HttpConfig",
    "LogConfig",
    "NetConfig",
    "NodeConfig",
    "OriginUrlConfig",
    "RpcConfig",
    "StateConfig",
    "TopologyConfig",
    "dump_toml",
    "load_config",
    "parse_section",
]


class ConfigError(LightningError):
    """A config or genesis file that is unreadable, not TOML, or does not match its schema."""


def _check_port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a port number 0..65535"


def _check_host(v: str) -> str | None:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        if v == "localhost":
            return None
        return "must be an IP address such as 0.0.0.0 or 127.0.0.1"
    return None


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _doc(text: str, check: Any = None) -> dict[str, Any]:
    return {"doc": text, "check": check}


@dataclass(frozen=True)
class NodeConfig:
    listen_host: str = field(
        default="0.0.0.0",
        metadata=_doc("address the client endpoint, QUIC pool and pinger bind", _check_host),
    )
    rpc_host: str = field(
        default="127.0.0.1",
        metadata=_doc("address the JSON-RPC / metrics endpoint binds", _check_host),
    )
    genesis: str = field(
        default="genesis.toml", metadata=_doc("genesis file; a relative path is relative to the home directory")
    )
    shutdown_grace_s: float = field(
        default=5.0, metadata=_doc("seconds components get to close cleanly on SIGINT/SIGTERM", _positive)
    )


@dataclass(frozen=True)
class HttpConfig:
    port: int = field(default=4220, metadata=_doc("client endpoint TCP port (0 = any free port)", _check_port))
    max_connections: int = field(default=1024, metadata=_doc("concurrent client connections", _positive))
    max_body_bytes: int = field(default=1024 * 1024, metadata=_doc("largest request body accepted", _positive))
    header_timeout_s: float = field(
        default=10.0, metadata=_doc("a request head must arrive within this (slow clients get 408)", _positive)
    )
    idle_timeout_s: float = field(default=60.0, metadata=_doc("keep-alive idle timeout", _positive))


@dataclass(frozen=True)
class RpcConfig:
    port: int = field(default=4240, metadata=_doc("JSON-RPC, /metrics and /health TCP port (0 = any)", _check_port))
    admin_loopback_only: bool = field(
        default=True, metadata=_doc("admin methods answer loopback callers only, whatever rpc_host is")
    )


@dataclass(frozen=True)
class BlockstoreConfig:
    capacity_bytes: int = field(
        default=16 * 1024**3,
        metadata=_doc("bytes of blocks to keep; least-recently-used unpinned objects are evicted beyond it", _positive),
    )
    map_size_bytes: int = field(
        default=1024**4,
        metadata=_doc("LMDB map size: the largest the store file can grow (sparse; set above capacity)", _positive),
    )


@dataclass(frozen=True)
class StateConfig:
    map_size_bytes: int = field(
        default=64 * 1024**3, metadata=_doc("LMDB map size of the application state (sparse file)", _positive)
    )
    block_time_s: float = field(
        default=0.25,
        metadata=_doc("the single-node sequencer cuts a block at most this often while transactions wait", _positive),
    )
    mempool_max_txs: int = field(default=10_000, metadata=_doc("transactions the mempool holds at most", _positive))
    mempool_max_per_sender: int = field(
        default=64, metadata=_doc("pending transactions per sender at most (also the accepted nonce window)", _positive)
    )
    mempool_tx_ttl_s: float = field(
        default=600.0, metadata=_doc("a pending transaction not ordered within this is dropped", _positive)
    )
    epoch_driver: bool = field(
        default=True,
        metadata=_doc("as a committee member, send ChangeEpoch and beacon transactions automatically"),
    )


def _check_datagram(v: int) -> str | None:
    return None if 1200 <= v <= 9000 else "must be between 1200 (QUIC's minimum) and 9000"


def _check_node_ids(v: tuple[str, ...]) -> str | None:
    for text in v:
        s = text.strip().lower().removeprefix("0x")
        if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
            return f"{text!r} is not a node id (64 hex digits)"
    return None


@dataclass(frozen=True)
class NetConfig:
    """The QUIC connection pool (docs/net.md)."""

    port: int = field(default=4300, metadata=_doc("QUIC UDP port (0 = any free port)", _check_port))
    datagram_bytes: int = field(
        default=1350,
        metadata=_doc("largest UDP payload sent, 1200..9000 (1452 suits plain Ethernet paths)", _check_datagram),
    )
    socket_buffer_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata=_doc("SO_RCVBUF/SO_SNDBUF asked for (the kernel caps it at net.core.rmem_max/wmem_max)", _positive),
    )
    congestion_control: Literal["reno", "cubic"] = field(default="reno", metadata=_doc("QUIC congestion control"))
    max_connections: int = field(default=256, metadata=_doc("peer connections at most", _positive))
    max_handshakes: int = field(
        default=64, metadata=_doc("incoming connections still handshaking or authenticating at once", _positive)
    )
    handshake_timeout_s: float = field(
        default=10.0, metadata=_doc("a dial or an incoming connection must be authenticated within this", _positive)
    )
    idle_timeout_s: float = field(
        default=60.0, metadata=_doc("a connection without requests or messages this long is closed", _positive)
    )
    request_timeout_s: float = field(default=30.0, metadata=_doc("default timeout of a request", _positive))
    max_frame_bytes: int = field(
        default=4 * 1024 * 1024, metadata=_doc("largest message, request or reply frame", _positive)
    )
    max_requests_per_peer: int = field(
        default=64,
        metadata=_doc("requests a peer may have open to us at once (more get TooManyRequests); ours to it", _positive),
    )
    message_queue_len: int = field(
        default=1024, metadata=_doc("messages per scope waiting for their handler; more are dropped", _positive)
    )
    stream_window_bytes: int = field(
        default=4 * 1024 * 1024, metadata=_doc("bytes of a large reply a receiver buffers (its credit)", _positive)
    )
    send_buffer_bytes: int = field(
        default=1024 * 1024, metadata=_doc("unacknowledged bytes a stream buffers before its writer waits", _positive)
    )
    backoff_min_s: float = field(default=0.5, metadata=_doc("first delay before re-dialing a failed peer", _positive))
    backoff_max_s: float = field(default=60.0, metadata=_doc("longest delay before re-dialing", _positive))
    block_serve_concurrency: int = field(
        default=50, metadata=_doc("block transfers served to peers at once", _positive)
    )
    block_fetch_concurrency: int = field(
        default=50, metadata=_doc("block transfers fetched from peers at once", _positive)
    )
    allow: tuple[str, ...] = field(
        default=(),
        metadata=_doc("node ids admitted besides the genesis nodes (until stakes are known)", _check_node_ids),
    )


@dataclass(frozen=True)
class FetcherConfig:
    max_concurrent: int = field(default=8, metadata=_doc("downloads running at once", _positive))
    max_queued: int = field(
        default=256, metadata=_doc("downloads waiting for a slot; beyond it clients get 503", _positive)
    )
    first_byte_timeout_s: float = field(
        default=15.0, metadata=_doc("a source must send its first verified byte within this", _positive)
    )
    idle_timeout_s: float = field(
        default=30.0, metadata=_doc("a source that sends nothing for this long is abandoned", _positive)
    )
    spool_max_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_doc("bytes of an in-flight download buffered between its slowest client and the source", _positive),
    )


@dataclass(frozen=True)
class OriginIpfsConfig:
    gateways: list[str] = field(
        default_factory=list,
        metadata=_doc("trustless IPFS gateways, tried in order, e.g. [\"https://trustless-gateway.link\"]"),
    )
    request_timeout_s: float = field(default=60.0, metadata=_doc("whole-request timeout per gateway", _positive))


def _check_non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def _check_payload(v: int) -> str | None:
    return None if 0 < v <= 3 * 1024 * 1024 else "must be between 1 and 3145728 (a message must fit a 4 MiB frame)"


@dataclass(frozen=True)
class TopologyConfig:
    """Which peers a node keeps connected (docs/broadcast.md, "Topology")."""

    full_mesh_max: int = field(
        default=12, metadata=_doc("networks of at most this many nodes connect fully", _positive)
    )
    cluster_size: int = field(default=8, metadata=_doc("nodes per cluster of nearby nodes at most", _positive))
    long_cycles: int = field(
        default=2, metadata=_doc("random cycles through all nodes for long links (2 links each)", _positive)
    )
    recompute_interval_s: float = field(
        default=600.0, metadata=_doc("recompute the peer set with fresh latency measurements this often", _positive)
    )
    probes_per_round: int = field(
        default=2, metadata=_doc("nodes outside the peer set whose latency is measured per ping round", _positive)
    )


@dataclass(frozen=True)
class BroadcastConfig:
    """Gossip of signed topic messages (docs/broadcast.md)."""

    max_payload_bytes: int = field(
        default=1024 * 1024, metadata=_doc("largest message payload; larger ones are dropped", _check_payload)
    )
    max_age_s: float = field(
        default=300.0,
        metadata=_doc("messages timestamped longer ago than this are dropped (the dedup cache covers it)", _positive),
    )
    max_skew_s: float = field(
        default=30.0, metadata=_doc("messages timestamped further ahead of our clock are dropped", _positive)
    )
    future_epochs: int = field(
        default=1, metadata=_doc("messages at most this many epochs ahead of ours are accepted", _check_non_negative)
    )
    seen_cache_entries: int = field(
        default=100_000, metadata=_doc("message digests remembered (in memory and in LMDB) at most", _positive)
    )
    want_timeout_s: float = field(
        default=2.0, metadata=_doc("a wanted message not sent within this is asked of the next advertiser", _positive)
    )
    want_queue_len: int = field(
        default=8192, metadata=_doc("advertised messages being fetched at once; more adverts are ignored", _positive)
    )
    retain_s: float = field(
        default=60.0, metadata=_doc("relayed messages are kept this long to answer peers' wants", _positive)
    )
    retain_bytes: int = field(
        default=64 * 1024 * 1024, metadata=_doc("bytes of relayed messages kept at most", _positive)
    )
    subscriber_buffer: int = field(
        default=1024, metadata=_doc("messages waiting for a topic's subscriber; more are dropped", _positive)
    )
    validation_timeout_s: float = field(
        default=60.0, metadata=_doc("a message its subscriber has not judged by then is dropped unrelayed", _positive)
    )
    send_queue_len: int = field(
        default=1024, metadata=_doc("frames queued for one peer; more are dropped (and re-advertised)", _positive)
    )
    ping_interval_s: float = field(
        default=15.0, metadata=_doc("peers are pinged (latency, liveness) this often", _positive)
    )
    max_inbound_peers: int = field(
        default=64, metadata=_doc("peers outside our topology that we also advertise to at most", _check_non_negative)
    )
    map_size_bytes: int = field(
        default=1024**3, metadata=_doc("LMDB map size of the dedup cache (sparse file)", _positive)
    )


@dataclass(frozen=True)
class ConsensusConfig:
    view_timeout_s: float = field(
        default=2.0, metadata=_doc("a view without a committed block times out after this (doubling)", _positive)
    )
    view_timeout_max_s: float = field(default=30.0, metadata=_doc("the longest view timeout", _positive))
    empty_block_s: float = field(
        default=1.0,
        metadata=_doc("a leader with no transactions proposes an empty block after this", _positive),
    )


@dataclass(frozen=True)
class OriginUrlConfig:
    enabled: bool = field(
        default=False, metadata=_doc("serve /services/0/url/<url#integrity=…> (the node fetches URLs clients name)")
    )
    allow_private_addresses: bool = field(
        default=False, metadata=_doc("allow URLs on loopback, private and link-local addresses (tests, labs)")
    )
    max_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_doc("largest body a URL origin may return (it is held in memory)", _positive),
    )


@dataclass(frozen=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = field(default="info", metadata=_doc("log level"))
    format: Literal["text", "json"] = field(default="text", metadata=_doc("log line format"))


@dataclass(frozen=True)
class Config:
    node: NodeConfig = NodeConfig()
    http: HttpConfig = HttpConfig()
    rpc: RpcConfig = RpcConfig()
    blockstore: BlockstoreConfig = BlockstoreConfig()
    state: StateConfig = StateConfig()
    net: NetConfig = NetConfig()
    fetcher: FetcherConfig = FetcherConfig()
    origin_ipfs: OriginIpfsConfig = OriginIpfsConfig()
    origin_url: OriginUrlConfig = OriginUrlConfig()
    topology: TopologyConfig = TopologyConfig()
    broadcast: BroadcastConfig = BroadcastConfig()
    consensus: ConsensusConfig = ConsensusConfig()
    log: LogConfig = LogConfig()


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
