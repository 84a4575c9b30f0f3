"""Config of the QUIC connection pool (``[net]``) and of the topology that picks its peers (``[topology]``).
Stdlib only (no trio or aioquic): see :mod:`lightning.config_fields`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lightning.config_fields import check_port, doc, positive

__all__ = ["NetConfig", "TopologyConfig"]


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

    port: int = field(default=4300, metadata=doc("QUIC UDP port (0 = any free port)", check_port))
    datagram_bytes: int = field(
        default=1350,
        metadata=doc("largest UDP payload sent, 1200..9000 (1452 suits plain Ethernet paths)", _check_datagram),
    )
    socket_buffer_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata=doc("SO_RCVBUF/SO_SNDBUF asked for (the kernel caps it at net.core.rmem_max/wmem_max)", positive),
    )
    congestion_control: Literal["reno", "cubic"] = field(default="reno", metadata=doc("QUIC congestion control"))
    max_connections: int = field(default=256, metadata=doc("peer connections at most", positive))
    max_handshakes: int = field(
        default=64, metadata=doc("incoming connections still handshaking or authenticating at once", positive)
    )
    handshake_timeout_s: float = field(
        default=10.0, metadata=doc("a dial or an incoming connection must be authenticated within this", positive)
    )
    idle_timeout_s: float = field(
        default=60.0, metadata=doc("a connection without requests or messages this long is closed", positive)
    )
    request_timeout_s: float = field(default=30.0, metadata=doc("default timeout of a request", positive))
    max_frame_bytes: int = field(
        default=4 * 1024 * 1024, metadata=doc("largest message, request or reply frame", positive)
    )
    max_requests_per_peer: int = field(
        default=64,
        metadata=doc("requests a peer may have open to us at once (more get TooManyRequests); ours to it", positive),
    )
    message_queue_len: int = field(
        default=1024, metadata=doc("messages per scope waiting for their handler; more are dropped", positive)
    )
    stream_window_bytes: int = field(
        default=4 * 1024 * 1024, metadata=doc("bytes of a large reply a receiver buffers (its credit)", positive)
    )
    send_buffer_bytes: int = field(
        default=1024 * 1024, metadata=doc("unacknowledged bytes a stream buffers before its writer waits", positive)
    )
    backoff_min_s: float = field(default=0.5, metadata=doc("first delay before re-dialing a failed peer", positive))
    backoff_max_s: float = field(default=60.0, metadata=doc("longest delay before re-dialing", positive))
    block_serve_concurrency: int = field(default=50, metadata=doc("block transfers served to peers at once", positive))
    block_fetch_concurrency: int = field(
        default=50, metadata=doc("block transfers fetched from peers at once", positive)
    )
    allow: tuple[str, ...] = field(
        default=(),
        metadata=doc("node ids given every scope but consensus, staked or not (peer admission)", _check_node_ids),
    )
    max_limited_peers: int = field(
        default=64,
        metadata=doc("unstaked peers (transactions and sync reads only) connected at once; more are refused", positive),
    )
    limited_rate_per_s: float = field(
        default=20.0,
        metadata=doc("messages and requests a second from one unstaked peer; more are refused", positive),
    )
    limited_burst: int = field(
        default=100, metadata=doc("messages and requests an unstaked peer may send at once (its bucket)", positive)
    )
    rate_log_interval_s: float = field(
        default=10.0, metadata=doc("a rate-limited peer is logged at most once per this many seconds", positive)
    )


@dataclass(frozen=True)
class TopologyConfig:
    """Which peers a node keeps connected (docs/broadcast.md, "Topology")."""

    full_mesh_max: int = field(default=12, metadata=doc("networks of at most this many nodes connect fully", positive))
    cluster_size: int = field(default=8, metadata=doc("nodes per cluster of nearby nodes at most", positive))
    long_cycles: int = field(
        default=2, metadata=doc("random cycles through all nodes for long links (2 links each)", positive)
    )
    recompute_interval_s: float = field(
        default=600.0, metadata=doc("recompute the peer set with fresh latency measurements this often", positive)
    )
    probes_per_round: int = field(
        default=2, metadata=doc("nodes outside the peer set whose latency is measured per ping round", positive)
    )
