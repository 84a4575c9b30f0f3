"""The node's own JSON-RPC methods (``flk_ping``, ``flk_get_node_status``, ``flk_get_public_keys``, ``flk_metrics``,
``admin_shutdown`` …), registered by ``Node._register_rpc``. Methods over the state live in ``lightning.chain.rpc``,
the pool's in ``lightning.net.rpc``, the broadcast's in ``lightning.broadcast.rpc``. Reference: docs/rpc.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from lightning.metrics import render
from lightning.rpc.jsonrpc import Dispatcher

if TYPE_CHECKING:
    from lightning.node import Node

__all__ = ["SERVED_BYTES_METRIC", "counter_total", "register_node_rpc"]

logger = logging.getLogger(__name__)

SERVED_BYTES_METRIC = "lightning_services_served_bytes"  # services/serve.py: body bytes served to clients


def counter_total(registry: CollectorRegistry, name: str) -> int:
    """The sum of counter ``name`` over all its label values (0 when it has none)."""
    total = 0.0
    for metric in registry.collect():
        if metric.name == name:
            total += sum(s.value for s in metric.samples if s.name == f"{name}_total")
    return int(total)


def register_node_rpc(d: Dispatcher, node: Node) -> None:
    async def ping() -> str:
        """Whether the node answers at all.

        Returns: the string ``"pong"``.
        """
        return "pong"

    async def health() -> dict[str, Any]:
        """The node's health, as ``/health`` shows it.

        Returns: {status: "ok" once every component is ready, else "starting", node_id}.
        """
        return node.health()

    async def node_status() -> dict[str, Any]:
        """What ``lightning status`` shows: version, uptime, peers, epoch, committee membership, sync state and the
        bytes served.

        Returns: {version, node_id, chain_id, uptime_s, ready, peers (connected), epoch, committee (whether this node
        is in the current epoch's committee), syncing (still catching up with the chain), head_height,
        best_known_height (the highest block a peer has shown), served_bytes (body bytes served to clients since the
        start)}.
        """
        return {**vars(node.status()), "served_bytes": counter_total(node.registry, SERVED_BYTES_METRIC)}

    async def public_keys() -> dict[str, str]:
        """This node's public keys (hex), as Lightning's ``flk_get_public_keys``.

        Returns: {node_public_key (the node id), consensus_public_key, account_public_key (the owner account)}.
        """
        keys = node.keys
        return {
            "node_public_key": keys.node.public.hex,
            "consensus_public_key": keys.consensus.public.hex,
            "account_public_key": keys.account.public.hex,
        }

    async def metrics() -> str:
        """The node's Prometheus metrics, the text ``/metrics`` serves.

        Returns: Prometheus text exposition format 0.0.4.
        """
        return render(node.registry).decode()

    async def video_streams() -> list[dict[str, Any]]:
        """Recent video streams served by this node (at most the last 1024), newest last.

        Returns: [{client, video, age_s, startup_s, requests, bytes, seeks, stalls_avoided, segment_misses}].
        """
        return node.video.streams()

    async def shutdown() -> bool:
        """Stop the node gracefully, as SIGTERM does.

        Returns: true; the node stops after answering.
        """
        logger.info("shutdown requested over RPC")
        node.request_stop()
        return True

    d.add("flk_ping", ping)
    d.add("flk_health", health)
    d.add("flk_get_node_status", node_status)
    d.add("flk_get_public_keys", public_keys)
    d.add("flk_metrics", metrics)
    d.add("flk_video_streams", video_streams)
    d.add("admin_shutdown", shutdown, admin=True)
