"""The trio adapter's own rules: API errors, frame merging, metrics and RPC (over a two-node simulated network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from lightning.broadcast import Broadcast, BroadcastError, DebugLog, Topic, register_broadcast_rpc
from lightning.broadcast.component import _coalesce
from lightning.broadcast.config import BroadcastConfig
from lightning.broadcast.sim import WALL_BASE_MS, open_broadcast_sim
from lightning.clock import TrioWallClock
from lightning.net.config import TopologyConfig
from lightning.net.sim import SimNetwork
from lightning.net.topology import GenesisNodes, Topology
from lightning.rpc import Dispatcher


def test_adverts_and_wants_merge_other_frames_keep_their_order() -> None:
    d = [i.to_bytes(32, "big") for i in range(300)]
    frames = [
        {"t": "adv", "d": [d[0]]},
        {"t": "pong", "n": 1},
        {"t": "want", "d": [d[1]]},
        {"t": "adv", "d": [*d[2:300], d[0]]},
        {"t": "msg", "m": {}, "h": 1},
    ]
    assert _coalesce(frames) == [
        {"t": "pong", "n": 1},
        {"t": "msg", "m": {}, "h": 1},
        {"t": "want", "d": [d[1]]},
        {"t": "adv", "d": [d[0], *d[2:257]]},
        {"t": "adv", "d": d[257:300]},
    ]


async def test_api_errors(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    net = SimNetwork(3)
    pool = net.pool()
    known = GenesisNodes([pool.node_id])
    bc = Broadcast(
        BroadcastConfig(max_payload_bytes=10),
        pool,
        pool.key,
        chain_id=1,
        known=known,
        topology=Topology(TopologyConfig(), pool.node_id, known),
        wall_clock=TrioWallClock(WALL_BASE_MS),
        path=tmp_path / "bc",
        inline=True,
    )
    bc.subscribe(Topic.RESOLVER)
    with pytest.raises(BroadcastError, match="already has a subscriber"):
        bc.subscribe(Topic.RESOLVER)
    with pytest.raises(BroadcastError, match="not running"):
        await bc.send(Topic.DEBUG, b"x")
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        await nursery.start(pool.run)
        await nursery.start(bc.run)
        with pytest.raises(BroadcastError, match="max_payload_bytes"):
            await bc.send(Topic.DEBUG, b"x" * 11)
        with pytest.raises(BroadcastError, match="ourselves"):
            await bc.send(Topic.DEBUG, b"x", to=pool.node_id)
        assert bc.statistics().published == {}
        nursery.cancel_scope.cancel()


async def test_rpc_and_metrics(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with open_broadcast_sim(4, 2, tmp_path, topics=()) as cluster:
        a, b = cluster.nodes
        debug = DebugLog(b.broadcast)
        cluster.nursery.start_soon(debug.run)
        rpc_a, rpc_b = Dispatcher(), Dispatcher()
        register_broadcast_rpc(rpc_a, a.broadcast)
        register_broadcast_rpc(rpc_b, b.broadcast, debug)

        async def call(d: Dispatcher, method: str, *params: object) -> object:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
            answer = json.loads(await d.handle(body, "127.0.0.1") or b"{}")
            return answer.get("result", answer.get("error"))

        sent = await call(rpc_a, "admin_broadcast_debug", "hello")
        assert isinstance(sent, dict)
        with trio.fail_after(10):
            await debug.wait_count(1)
        (got,) = await call(rpc_b, "admin_broadcast_debug_recent")  # type: ignore[misc]
        assert got["digest"] == sent["digest"] and got["text"] == "hello" and got["hops"] == 1
        assert got["origin"] == a.node_id.hex() and got["to"] is None
        bad = await call(rpc_a, "admin_broadcast_debug", "x", "not a key")
        assert isinstance(bad, dict) and bad["code"] == -32602
        stats = await call(rpc_b, "flk_broadcast_stats")
        assert isinstance(stats, dict)
        assert stats["received"] == {"debug": 1} and stats["topology"]["peer_ids"] == [a.node_id.hex()]
        registry: CollectorRegistry = b.broadcast.metrics.registry
        assert (
            registry.get_sample_value("lightning_broadcast_messages_total", {"topic": "debug", "direction": "in"}) == 1
        )
        assert registry.get_sample_value("lightning_broadcast_propagation_seconds_count", {"topic": "debug"}) == 1
        assert registry.get_sample_value("lightning_broadcast_seen_digests") == 1
