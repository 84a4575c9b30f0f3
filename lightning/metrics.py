"""Per-node Prometheus registry (not the global one, so a simulation can run many nodes in one process)."""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

import lightning

__all__ = ["CONTENT_TYPE", "NodeMetrics", "new_registry", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def new_registry(*, process: bool = True) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


class NodeMetrics:
    """Node-level figures: build info, start time, readiness."""

    def __init__(self, registry: CollectorRegistry, *, node_id: str, chain_id: int) -> None:
        self.build_info = Info("lightning_build", "Build and identity of this node", registry=registry)
        self.build_info.info(
            {
                "version": lightning.__version__,
                "python": platform.python_version(),
                "node_id": node_id,
                "chain_id": str(chain_id),
            }
        )
        self.ready = Gauge("lightning_node_ready", "1 once every component is ready", registry=registry)
        self.uptime = Gauge("lightning_node_uptime_seconds", "Seconds since the node started", registry=registry)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
