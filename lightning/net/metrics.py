"""Pool metrics: connections, bytes per scope and direction, request latency, rejections by reason, peer admission."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lightning.net.wire import Scope

__all__ = ["NetMetrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class NetMetrics:
    """One per pool. Without a registry (simulations) the metrics live in a private one."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("lightning_net_connections", "Open, authenticated peer connections", registry=r)
        bytes_total = Counter(
            "lightning_net_bytes", "Payload bytes per scope and direction", ["scope", "direction"], registry=r
        )
        latency = Histogram(
            "lightning_net_request_seconds",
            "Latency of our requests that got an answer (including rejections), per scope",
            ["scope"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._rejections = Counter(
            "lightning_net_rejections",
            "Requests, messages and connections refused or failed, by reason",
            ["reason"],
            registry=r,
        )
        self._dials = Counter("lightning_net_dials", "Dial attempts by result", ["result"], registry=r)
        self._penalties = Counter("lightning_net_penalties", "Peers penalised, by reason", ["reason"], registry=r)
        self.limited_peers = Gauge(
            "lightning_net_limited_peers", "Connected peers with limited access (transactions, sync reads)", registry=r
        )
        rate_limited = Counter(
            "lightning_net_rate_limited",
            "Messages and requests refused because their unstaked peer exceeded its rate, per scope",
            ["scope"],
            registry=r,
        )
        self.roles_lost = Counter(
            "lightning_net_roles_lost", "Connections closed because their peer's access level dropped", registry=r
        )
        # Label children resolved once: the hot path only increments.
        self.bytes_in = {s: bytes_total.labels(scope=s.name.lower(), direction="in") for s in Scope}
        self.bytes_out = {s: bytes_total.labels(scope=s.name.lower(), direction="out") for s in Scope}
        self.latency = {s: latency.labels(scope=s.name.lower()) for s in Scope}
        self.rate_limited = {s: rate_limited.labels(scope=s.name.lower()) for s in Scope}

    def rejection(self, reason: str) -> None:
        self._rejections.labels(reason=reason).inc()

    def dial(self, result: str) -> None:
        self._dials.labels(result=result).inc()

    def penalty(self, reason: str) -> None:
        self._penalties.labels(reason=reason).inc()

    def rejections(self, reason: str) -> float:
        """The count for one reason (tests, statistics)."""
        return self.registry.get_sample_value("lightning_net_rejections_total", {"reason": reason}) or 0.0
