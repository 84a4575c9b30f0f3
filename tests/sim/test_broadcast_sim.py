"""Broadcast over the simulated network: 64 nodes on lossy links, a partition that heals, a node sending invalid
messages, a restarted node.

Every test runs under an autojump MockClock with a seeded network; the seed is in each test id (``[seed=N]``) and in
every assertion message. One seed runs by default; ``pytest -m slow`` runs more. Invariants are asserted, never
interleavings: trio's scheduler is not deterministic on purpose.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from lightning.broadcast import Received, Topic
from lightning.broadcast.config import BroadcastConfig
from lightning.broadcast.core import STRIKES_TO_CUT_OFF
from lightning.broadcast.message import sign_message
from lightning.broadcast.sim import CHAIN_ID, SimCluster, SimNode, open_broadcast_sim
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net import NetError, Scope
from lightning.net.config import NetConfig
from lightning.net.sim import Link

LOSSY = Link(latency_s=0.05, jitter_s=0.02, loss=0.05)
FAST_SEEDS = [1]
SLOW_SEEDS = [2, 3, 4, 5, 6]
SEEDS = [pytest.param(s, id=f"seed={s}") for s in FAST_SEEDS] + [
    pytest.param(s, id=f"seed={s}", marks=pytest.mark.slow) for s in SLOW_SEEDS
]
# Quick redials after a partition heals (the pool's default backoff reaches a minute).
NET = NetConfig(handshake_timeout_s=3.0, backoff_min_s=0.5, backoff_max_s=4.0)


async def publish(cluster: SimCluster, rng: random.Random, count: int, label: str) -> dict[bytes, SimNode]:
    sent: dict[bytes, SimNode] = {}
    for i in range(count):
        origin = rng.choice([n for n in cluster.nodes if n.running])
        digest = await origin.broadcast.send(Topic.DEBUG, f"{label} {i} from {origin.node_id.hex()[:8]}".encode())
        sent[digest] = origin
        await trio.sleep(rng.uniform(0, 0.1))
    return sent


async def wait_everywhere(cluster: SimCluster, sent: dict[bytes, SimNode], nodes: list[SimNode]) -> None:
    for digest, origin in sent.items():
        await cluster.wait_delivered([digest], [n for n in nodes if n is not origin])


def assert_exactly_once(cluster: SimCluster, sent: dict[bytes, SimNode], nodes: list[SimNode], seed: int) -> None:
    for n in nodes:
        got = n.digests()
        assert len(got) == len(set(got)), f"seed {seed}: {n.node_id.hex()[:8]} got a message twice"
        missing = {d for d, origin in sent.items() if origin is not n} - set(got)
        assert not missing, f"seed {seed}: {n.node_id.hex()[:8]} missed {len(missing)}"


@pytest.mark.parametrize("seed", SEEDS)
async def test_64_nodes_on_lossy_links_every_message_reaches_every_node_once(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    async with open_broadcast_sim(seed, 64, tmp_path, link=LOSSY) as cluster:
        sent = await publish(cluster, rng, 24, "lossy")
        with trio.fail_after(120):
            await wait_everywhere(cluster, sent, cluster.nodes)
        assert_exactly_once(cluster, sent, cluster.nodes, seed)
        stats = [n.broadcast.statistics() for n in cluster.nodes]
        received = sum(s.received.get("debug", 0) for s in stats)
        assert received == len(sent) * 63, f"seed {seed}"
        # Each node took each payload from one peer; a payload went out again only for a want that followed a
        # timeout (it arrives as a duplicate, or is still in flight), and never twice over one link.
        payloads = sum(s.payloads_sent.get("debug", 0) for s in stats)
        duplicates = sum(s.duplicate_payloads for s in stats)
        retries = sum(s.want_timeouts for s in stats)
        assert received + duplicates <= payloads <= received + retries, f"seed {seed}"
        assert duplicates <= received // 20, f"seed {seed}: {duplicates} duplicate payloads"
        assert sum(s.duplicate_adverts for s in stats) > 0 and not any(s.invalid for s in stats), f"seed {seed}"
        assert max(len(n.topology.peers()) for n in cluster.nodes if n.topology) <= 11, f"seed {seed}"

        # To one node: a node that is not its neighbour gets it, and no one else.
        a, b = cluster.nodes[0], next(n for n in cluster.nodes[1:] if n.node_id not in topology_of(cluster.nodes[0]))
        digest = await a.broadcast.send(Topic.DEBUG, b"just for b", to=b.node_id)
        with trio.fail_after(30):
            await cluster.wait_delivered([digest], [b])
        await trio.sleep(5)
        assert [n for n in cluster.nodes if digest in n.digests()] == [b], f"seed {seed}"
        assert b.received[-1].hops == 1 and b.received[-1].message.to == b.node_id


def topology_of(node: SimNode) -> frozenset[NodeId]:
    assert node.topology is not None
    return node.topology.peers()


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_partition_heals_and_messages_flow_again(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    config = BroadcastConfig(ping_interval_s=2.0)
    async with open_broadcast_sim(seed, 64, tmp_path, link=LOSSY, config=config, net_config=NET) as cluster:
        before = await publish(cluster, rng, 4, "before")
        with trio.fail_after(60):
            await wait_everywhere(cluster, before, cluster.nodes)
        side_a, side_b = cluster.nodes[:24], cluster.nodes[24:]
        cluster.net.partition([NodeId.of(n.key) for n in side_a], [NodeId.of(n.key) for n in side_b])
        during = await publish(cluster, rng, 8, "during")
        await trio.sleep(10)
        for digest, origin in during.items():  # nothing crossed the cut
            other = side_b if origin in side_a else side_a
            assert not any(digest in n.digests() for n in other), f"seed {seed}: a message crossed the partition"
        cluster.net.heal()
        after = await publish(cluster, rng, 8, "after")
        # Adverts that could not cross are sent again once the peer is heard from (retained for retain_s), so
        # the messages of the partition arrive too.
        with trio.fail_after(config.retain_s):
            await wait_everywhere(cluster, {**after, **during}, cluster.nodes)
        assert_exactly_once(cluster, {**before, **during, **after}, cluster.nodes, seed)


class RawPeer:
    """A node that speaks the broadcast frames directly on its own pool: it advertises whatever wire messages it is
    given (forged, rejectable, or old ones to replay), serves them to whoever wants them, and records the wants."""

    def __init__(self, cluster: SimCluster, key: SigningKey) -> None:
        self.cluster = cluster
        self.key = key
        self.pool = cluster.net.pool(key)
        self.wanted: list[tuple[NodeId, bytes]] = []
        self._served: dict[bytes, dict[str, Any]] = {}
        self.pool.on_message(Scope.BROADCAST, self._on_frame)

    async def _on_frame(self, peer: NodeId, frame: Any) -> None:
        if frame.get("t") == "want":
            for d in frame["d"]:
                self.wanted.append((peer, d))
                if d in self._served:
                    await self.pool.send(peer, Scope.BROADCAST, {"t": "msg", "m": self._served[d], "h": 1})
        elif frame.get("t") == "ping":
            await self.pool.send(peer, Scope.BROADCAST, {"t": "pong", "n": frame["n"]})

    async def advertise(self, targets: list[SimNode], messages: dict[bytes, dict[str, Any]]) -> None:
        self._served.update(messages)
        for t in targets:
            try:
                await self.pool.send(t.node_id, Scope.BROADCAST, {"t": "adv", "d": list(messages)})
            except NetError:  # banned and cut off: exactly what one test wants to see
                pass

    async def spam(self, targets: list[SimNode], kind: str, i: int) -> None:
        """A fresh message of ours with a bad signature (``forged``) or a payload subscribers reject."""
        wall = self.cluster.wall_clock.now_ms()
        payload = b"reject me" if kind == "rejected" else f"forged {i}".encode()
        m = sign_message(self.key, CHAIN_ID, Topic.DEBUG, epoch=0, timestamp_ms=wall, payload=payload)
        wire = m.to_wire()
        if kind == "forged":
            wire["s"] = bytes(64)
        await self.advertise(targets, {m.digest: wire})


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["forged", "rejected"])
async def test_a_node_sending_invalid_messages_is_cut_off(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, seed: int, kind: str
) -> None:
    rng = random.Random(seed)
    bad_key = SigningKey(random.Random(seed + 1000).randbytes(32))

    def judge(node: SimNode, received: Received) -> bool:
        return received.message.payload != b"reject me"

    extra = [NodeId.of(bad_key)]
    async with open_broadcast_sim(seed, 16, tmp_path, link=LOSSY, judge=judge, extra_known=extra) as cluster:
        async with trio.open_nursery() as nursery:
            forger = RawPeer(cluster, bad_key)
            await nursery.start(forger.pool.run)
            victims = cluster.nodes[:4]
            for i in range(STRIKES_TO_CUT_OFF + 3):
                await forger.spam(victims, kind, i)
                await trio.sleep(1.0)
            # Cut off: every victim banned it in the pool and ignores what it still manages to send.
            for v in victims:
                assert v.pool is not None and v.pool.statistics().banned == 1, f"seed {seed}"
                assert v.broadcast.core.is_cut_off(NodeId.of(bad_key), trio.current_time()), f"seed {seed}"
                reason = "bad_signature" if kind == "forged" else "rejected_by_subscriber"
                assert v.broadcast.statistics().invalid[reason] >= STRIKES_TO_CUT_OFF, f"seed {seed}"
            wanted_before = len(forger.wanted)
            await forger.spam(victims, kind, 99)
            await trio.sleep(5.0)
            assert len(forger.wanted) == wanted_before, f"seed {seed}: a cut-off node was still served"
            # Nothing it sent went further than its victims: forged messages reached no subscriber, rejected ones
            # only the victims' (which rejected them, so they were not relayed).
            reached = {n for n in cluster.nodes for r in n.received if r.message.origin == NodeId.of(bad_key)}
            assert reached <= (set(victims) if kind == "rejected" else set()), f"seed {seed}"
            assert kind == "forged" or reached, f"seed {seed}"
            sent = await publish(cluster, rng, 6, "honest")
            with trio.fail_after(60):
                await wait_everywhere(cluster, sent, cluster.nodes)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_restarted_node_does_not_deliver_old_messages_again(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    replayer_key = SigningKey(random.Random(seed + 2000).randbytes(32))
    async with open_broadcast_sim(
        seed, 16, tmp_path, link=LOSSY, net_config=NET, extra_known=[NodeId.of(replayer_key)]
    ) as cluster:
        node = cluster.nodes[5]
        old = await publish(cluster, rng, 10, "old")
        with trio.fail_after(60):
            await wait_everywhere(cluster, old, cluster.nodes)
        delivered_before = list(node.digests())
        await cluster.restart(node)
        assert node.starts == 2 and len(node.broadcast.core.seen) >= len(old)
        # A replayer holding the old messages advertises them all again to the fresh process, and would serve them.
        replayer = RawPeer(cluster, replayer_key)
        await cluster.nursery.start(replayer.pool.run)
        wires = {r.digest: r.message.to_wire() for r in cluster.nodes[0].received}
        wires.update((r.digest, r.message.to_wire()) for r in cluster.nodes[1].received)
        assert set(wires) == set(old), f"seed {seed}"
        await replayer.advertise([node], wires)
        new = await publish(cluster, rng, 6, "new")
        with trio.fail_after(60):
            await wait_everywhere(cluster, new, cluster.nodes)
        got = node.digests()
        assert got[: len(delivered_before)] == delivered_before, f"seed {seed}"
        assert sorted(got[len(delivered_before) :]) == sorted(d for d, o in new.items() if o is not node), (
            f"seed {seed}: the restarted node delivered an old message again"
        )
        stats = node.broadcast.statistics()
        assert stats.received.get("debug", 0) == sum(1 for o in new.values() if o is not node), f"seed {seed}"
        assert stats.duplicate_adverts >= len(old), f"seed {seed}: the replay was not even seen"
        assert replayer.wanted == [], f"seed {seed}: old digests were wanted again"
