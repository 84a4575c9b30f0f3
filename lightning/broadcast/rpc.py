"""The broadcast's JSON-RPC methods (registered by ``node.py``) and the debug topic's consumer.

``flk_broadcast_stats``: counters, cache sizes and the topology. ``admin_broadcast_debug {text, to?}``: publish a
debug-topic message (to every node, or to one); ``admin_broadcast_debug_recent``: the debug messages this node
received last. Together they are a smoke test of a running network.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import trio

from lightning.broadcast.component import Broadcast
from lightning.broadcast.core import Received
from lightning.broadcast.message import BroadcastError, Topic
from lightning.errors import LightningError
from lightning.ids import NodeId
from lightning.rpc.jsonrpc import INVALID_PARAMS, Dispatcher, RpcError

__all__ = ["DebugLog", "register_broadcast_rpc"]

MAX_DEBUG_TEXT = 4096


class DebugLog:
    """Subscribes to the debug topic, keeps the last ``size`` messages and relays them all."""

    def __init__(self, broadcast: Broadcast, size: int = 100) -> None:
        self.subscription = broadcast.subscribe(Topic.DEBUG)
        self.recent: deque[Received] = deque(maxlen=size)
        self.count = 0
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for received in self.subscription:
            self.recent.append(received)
            self.count += 1
            self.subscription.propagate(received)
            self._changed.set()
            self._changed = trio.Event()

    async def wait_count(self, count: int) -> None:
        """Until ``count`` debug messages have arrived since the start."""
        while self.count < count:
            await self._changed.wait()


def _received_json(r: Received) -> dict[str, Any]:
    m = r.message
    return {
        "digest": r.digest.hex(),
        "origin": m.origin.hex(),
        "from": r.sender.hex(),
        "to": m.to.hex() if m.to is not None else None,
        "epoch": m.epoch,
        "timestamp_ms": m.timestamp_ms,
        "hops": r.hops,
        "delay_ms": r.delay_ms,
        "text": m.payload.decode("utf-8", "replace"),
    }


def register_broadcast_rpc(dispatcher: Dispatcher, broadcast: Broadcast, debug: DebugLog | None = None) -> None:
    async def stats() -> dict[str, Any]:
        """The broadcast's counters, cache sizes and topology.

        Returns: {received, published, payloads_sent (per topic), duplicate_adverts, duplicate_payloads,
            want_timeouts, invalid, dropped (per reason), strikes, seen, wants, waiting_for_subscriber, retained,
            peers, topology: {its statistics, peer_ids: [node id]}}.
        """
        out = dataclasses.asdict(broadcast.statistics())
        out["topology"] = dataclasses.asdict(broadcast.topology.statistics())
        out["topology"]["peer_ids"] = sorted(p.hex() for p in broadcast.topology.peers())
        return out

    async def debug_publish(text: str, to: str | None = None) -> dict[str, Any]:
        """Publish a message on the debug topic: a smoke test of a running network.

        Args:
            text: the message (at most 4096 bytes of UTF-8)
            to: a node id to address it to; omit to send it to every node
        Returns: {digest (hex)}.
        """
        if not isinstance(text, str) or len(text.encode()) > MAX_DEBUG_TEXT:
            raise RpcError(INVALID_PARAMS, f"text: a string of at most {MAX_DEBUG_TEXT} bytes", {"param": "text"})
        try:
            target = NodeId.parse(to) if to is not None else None
        except LightningError as exc:
            raise RpcError(INVALID_PARAMS, f"to: {exc}", {"param": "to"}) from None
        try:
            digest = await broadcast.send(Topic.DEBUG, text.encode(), to=target)
        except BroadcastError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from None
        return {"digest": digest.hex()}

    async def debug_recent() -> list[dict[str, Any]]:
        """The debug-topic messages this node received last (at most 100), oldest first.

        Returns: [{digest, origin, from, to, epoch, timestamp_ms, hops, delay_ms, text}].
        """
        return [] if debug is None else [_received_json(r) for r in debug.recent]

    dispatcher.add("flk_broadcast_stats", stats)
    dispatcher.add("admin_broadcast_debug", debug_publish, admin=True)
    dispatcher.add("admin_broadcast_debug_recent", debug_recent, admin=True)
