"""Broadcast nodes on the simulated network (``lightning.net.sim``): pool + topology + broadcast per node.

Use, under ``trio.testing.MockClock(autojump_threshold=0)``::

    async with open_broadcast_sim(seed, 16, tmp_path, link=Link(0.05, 0.02, 0.05)) as cluster:
        digest = await cluster.nodes[0].broadcast.send(Topic.DEBUG, b"hi")
        await cluster.wait_delivered(digest, cluster.nodes[1:])
        await cluster.restart(cluster.nodes[3])            # same key and dedup store, a fresh process

Every node subscribes to ``topics`` and judges each message with ``judge`` (default: valid), recording what it got
in ``node.received``. The dedup stores live under ``root``, written inline (no threads: the autojump clock would
leap ahead while a thread works). Randomness comes from the network's seeded RNG.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from lightning.broadcast.component import Broadcast, Subscription
from lightning.broadcast.config import BroadcastConfig
from lightning.broadcast.core import Received
from lightning.broadcast.message import Topic
from lightning.clock import TrioWallClock
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net.config import NetConfig, TopologyConfig
from lightning.net.sim import Link, SimNetwork, SimPool
from lightning.net.topology import GenesisNodes, Topology

__all__ = ["SimCluster", "SimNode", "open_broadcast_sim"]

CHAIN_ID = 1
WALL_BASE_MS = 1_750_000_000_000

Judge = Callable[["SimNode", Received], bool]


@dataclass(eq=False)
class SimNode:
    key: SigningKey
    path: Path
    pool: SimPool | None = None
    topology: Topology | None = None
    bc: Broadcast | None = None
    received: list[Received] = field(default_factory=list)
    got: set[bytes] = field(default_factory=set)
    starts: int = 0
    _scope: trio.CancelScope | None = None
    _stopped: trio.Event = field(default_factory=trio.Event)

    @property
    def node_id(self) -> NodeId:
        return NodeId.of(self.key)

    @property
    def broadcast(self) -> Broadcast:
        assert self.bc is not None, "the node is not running"
        return self.bc

    @property
    def running(self) -> bool:
        return self._scope is not None

    def digests(self) -> list[bytes]:
        return [r.digest for r in self.received]


class SimCluster:
    def __init__(
        self,
        net: SimNetwork,
        nursery: trio.Nursery,
        root: Path,
        keys: Sequence[SigningKey],
        *,
        config: BroadcastConfig,
        topology: TopologyConfig,
        topics: Iterable[Topic],
        judge: Judge,
        known: GenesisNodes | None = None,
    ) -> None:
        self.net = net
        self.root = root
        self.config = config
        self.topology_config = topology
        self.topics = tuple(topics)
        self.judge = judge
        self.known = known or GenesisNodes(NodeId.of(k) for k in keys)
        self.wall_clock = TrioWallClock(WALL_BASE_MS)
        self.nodes = [SimNode(k, root / NodeId.of(k).short()) for k in keys]
        self.nursery = nursery
        self._changed = trio.Event()

    def node(self, node_id: NodeId) -> SimNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    async def start(self, node: SimNode) -> None:
        assert not node.running
        node._stopped = trio.Event()
        await self.nursery.start(self._run_node, node)

    async def stop(self, node: SimNode) -> None:
        assert node._scope is not None
        node._scope.cancel()
        await node._stopped.wait()

    async def restart(self, node: SimNode) -> None:
        await self.stop(node)
        await self.start(node)

    async def _run_node(self, node: SimNode, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope() as scope:
                node._scope = scope
                node.pool = self.net.pool(node.key, config=self.net.config)
                node.topology = Topology(self.topology_config, node.node_id, self.known)
                node.bc = Broadcast(
                    self.config,
                    node.pool,
                    node.key,
                    chain_id=CHAIN_ID,
                    known=self.known,
                    topology=node.topology,
                    wall_clock=self.wall_clock,
                    path=node.path,
                    probes_per_round=self.topology_config.probes_per_round,
                    inline=True,
                )
                subs = [node.bc.subscribe(t) for t in self.topics]
                async with trio.open_nursery() as nursery:
                    await nursery.start(node.pool.run)
                    await nursery.start(node.topology.run)
                    await nursery.start(node.bc.run)
                    for sub in subs:
                        nursery.start_soon(self._consume, node, sub)
                    node.starts += 1
                    task_status.started()
        finally:
            node._scope = None
            node.bc = None
            node._stopped.set()

    async def _consume(self, node: SimNode, sub: Subscription) -> None:
        async for received in sub:
            node.received.append(received)
            node.got.add(received.digest)
            if self.judge(node, received):
                sub.propagate(received)
            else:
                sub.reject(received)
            self._changed.set()
            self._changed = trio.Event()

    async def wait_delivered(self, digests: Iterable[bytes], nodes: Iterable[SimNode]) -> None:
        """Until every one of ``nodes`` received every digest."""
        want = set(digests)
        targets = list(nodes)
        while not all(want <= n.got for n in targets):
            await self._changed.wait()


@asynccontextmanager
async def open_broadcast_sim(
    seed: int,
    nodes: int,
    root: Path,
    *,
    link: Link = Link(),
    config: BroadcastConfig | None = None,
    topology: TopologyConfig | None = None,
    net_config: NetConfig | None = None,
    topics: Iterable[Topic] = (Topic.DEBUG,),
    judge: Judge = lambda node, received: True,
    extra_known: Iterable[NodeId] = (),
) -> AsyncIterator[SimCluster]:
    """A running cluster of ``nodes`` broadcast nodes on one seeded :class:`SimNetwork`."""
    net = SimNetwork(seed, link=link, config=net_config)
    keys = [SigningKey(net.rng.randbytes(32)) for _ in range(nodes)]
    known = GenesisNodes([*(NodeId.of(k) for k in keys), *extra_known])
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        cluster = SimCluster(
            net,
            nursery,
            root,
            keys,
            config=config or BroadcastConfig(),
            topology=topology or TopologyConfig(),
            topics=topics,
            judge=judge,
            known=known,
        )
        for node in cluster.nodes:
            await cluster.start(node)
        yield cluster
        nursery.cancel_scope.cancel()
