"""Whole nodes in one process: N real :class:`~lightning.node.Node` objects over one simulated network.

Every node is the production wiring (``node.py``) with a simulated :class:`Runtime`: its pool on a
:class:`~lightning.net.sim.SimNetwork`, a wall clock that follows trio's clock (plus a per-node skew the scenario may
change), storage inline on the trio thread, no HTTP sockets (clients reach the handlers in memory,
``lightning/sim/http.py``); transactions are forwarded over the simulated pool like any other traffic. Each node has
its own home under ``root`` (keys, LMDB stores), so a crashed node restarts from exactly what it had stored.

Run under ``trio.testing.MockClock(autojump_threshold=0)``::

    async with open_cluster(tmp_path, seed=1, nodes=8, committee=4) as cluster:
        await cluster.wait_height(10)
        cluster.crash(2); ...; await cluster.restart(2)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from lightning.config import Config
from lightning.fetcher.config import OriginIpfsConfig
from lightning.home import Home, Keys
from lightning.ids import NodeId
from lightning.net import PeerPool
from lightning.net.sim import Link, SimNetwork
from lightning.node import Node, PoolSpec, Runtime
from lightning.sim.invariants import Invariants, InvariantViolation
from lightning.state.store import BlockOutcome
from lightning.testing.devchain import DevChain

__all__ = ["SimCluster", "SimMember", "SkewedClock", "open_cluster"]

logger = logging.getLogger(__name__)

WALL_BASE_MS = 1_750_000_000_000


class SkewedClock:
    """Wall time following trio's clock from ``base_ms``, plus ``skew_ms`` (a fault may change it)."""

    def __init__(self, base_ms: int, skew_ms: int = 0) -> None:
        self.base_ms = base_ms
        self.skew_ms = skew_ms

    def now_ms(self) -> int:
        return self.base_ms + int(trio.current_time() * 1000) + self.skew_ms


class _SimNet:
    """The :class:`lightning.node.Network` of a simulated node."""

    def __init__(self, net: SimNetwork) -> None:
        self.net = net

    def make_pool(self, spec: PoolSpec) -> PeerPool:
        return self.net.pool(spec.node_key, config=spec.config.net, admission=spec.admission, registry=spec.registry)


@dataclass
class SimMember:
    index: int
    keys: Keys
    home: Home
    clock: SkewedClock
    node: Node | None = None
    scope: trio.CancelScope | None = None
    stopped: trio.Event = field(default_factory=trio.Event)
    starts: int = 0

    @property
    def node_id(self) -> NodeId:
        return self.keys.node_id

    @property
    def running(self) -> bool:
        return self.node is not None and self.node.status().ready


class SimCluster:
    def __init__(
        self,
        root: Path,
        nursery: trio.Nursery,
        *,
        seed: int,
        nodes: int,
        committee: int,
        link: Link = Link(),
        epoch_time_ms: int = 3_600_000,
        accounts: int = 4,
        factories: Mapping[int, Mapping[str, Callable[..., Any]]] | None = None,
        invariants: Invariants | None = None,
    ) -> None:
        self.root = root
        self.nursery = nursery
        self.seed = seed
        self.net = SimNetwork(seed, link=link)
        self.chain = DevChain.create(
            seed=seed,
            nodes=nodes,
            committee=committee,
            accounts=accounts,
            epoch_time_ms=epoch_time_ms,
            genesis_time_ms=WALL_BASE_MS,
        )
        self.genesis = self.chain.genesis
        self.invariants = invariants or Invariants()
        self.violation: InvariantViolation | None = None  # the first one; the run ends there
        self.broken = trio.Event()
        self.config = dataclasses.replace(Config(), origin_ipfs=OriginIpfsConfig(gateways=[]))
        self._factories = factories or {}
        self.members: list[SimMember] = []
        for i, keys in enumerate(self.chain.nodes):
            home = Home(root / f"node-{i}")
            home.ensure_dirs()
            home.write_keys(keys)
            self.members.append(SimMember(i, keys, home, SkewedClock(WALL_BASE_MS)))
        self.by_id = {m.node_id: m for m in self.members}

    def check(self, fn: Callable[..., None], *args: Any) -> None:
        """Report an event to the invariants. A violation is recorded (the first one) and :attr:`broken` set, rather
        than raised into whichever node or client task made the report."""
        try:
            fn(*args)
        except InvariantViolation as exc:
            if self.violation is None:
                self.violation = exc
                self.broken.set()

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start_all(self) -> None:
        await self.nursery.start(self.net.run)
        for m in self.members:
            await self.start(m.index)

    async def start(self, index: int) -> Node:
        """Start (or restart, from its storage) node ``index``; returns once it is ready."""
        m = self.members[index]
        assert m.node is None, f"node {index} is running"
        runtime = Runtime(
            network=_SimNet(self.net),
            wall_clock=m.clock,
            inline=True,
            durable=False,  # a simulated crash is a process crash: the OS keeps what was written
            endpoints=False,
            factories=self._factories.get(index, {}),
        )
        node = Node(home=m.home, config=self.config, genesis=self.genesis, keys=m.keys, runtime=runtime)
        nid = m.node_id

        def on_commit(outcome: BlockOutcome) -> None:
            head = outcome.head
            self.check(
                self.invariants.on_commit, nid, head.height, head.block_hash, head.state_root, trio.current_time()
            )

        node.state.add_commit_listener(on_commit)
        m.node, m.scope, m.stopped = node, trio.CancelScope(), trio.Event()
        await self.nursery.start(self._run_member, m, node, m.scope, m.stopped)
        m.starts += 1
        if m.starts > 1:
            self.check(self.invariants.on_restart, nid, node.state.head().height)
        return node

    async def _run_member(
        self,
        m: SimMember,
        node: Node,
        scope: trio.CancelScope,
        stopped: trio.Event,
        *,
        task_status: trio.TaskStatus[dict[str, Any]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with scope:
                await node.run(task_status=task_status)
        finally:
            stopped.set()

    async def crash(self, index: int) -> None:
        """Node ``index`` dies at once (like SIGKILL between two storage writes): peers are not told."""
        m = self.members[index]
        assert m.node is not None and m.scope is not None, f"node {index} is not running"
        self.net.crash(m.node_id)
        m.scope.cancel()
        await m.stopped.wait()
        m.node, m.scope = None, None

    async def stop_all(self) -> None:
        for m in self.members:
            if m.scope is not None:
                m.scope.cancel()
                await m.stopped.wait()
                m.node, m.scope = None, None

    # -- faults --------------------------------------------------------------------------------------------------
    def partition(self, cut: list[int]) -> None:
        side = [self.members[i].node_id for i in cut]
        rest = [m.node_id for m in self.members if m.index not in cut]
        self.net.partition(side, rest)

    def heal(self) -> None:
        self.net.heal()

    def set_link(self, a: int, b: int, link: Link) -> None:
        self.net.set_link(
            self.members[a].node_id, self.members[b].node_id,
            latency_s=link.latency_s, jitter_s=link.jitter_s, loss=link.loss,
        )  # fmt: skip

    # -- observation ---------------------------------------------------------------------------------------------
    def running(self) -> list[SimMember]:
        return [m for m in self.members if m.node is not None]

    def heights(self) -> dict[int, int]:
        return {
            m.index: m.node.state.head().height for m in self.members if m.node is not None and m.node.state.running
        }

    async def wait_height(self, height: int, *, nodes: list[int] | None = None) -> None:
        """Wait until every (given) running node has executed ``height``."""
        for m in self.running():
            if nodes is not None and m.index not in nodes:
                continue
            assert m.node is not None
            await m.node.state.wait_head_change(height - 1)


@asynccontextmanager
async def open_cluster(root: Path, **kwargs: Any) -> AsyncIterator[SimCluster]:
    """A started cluster (every node ready); stopped on exit."""
    async with trio.open_nursery() as nursery:
        cluster = SimCluster(root, nursery, **kwargs)
        await cluster.start_all()
        try:
            yield cluster
        finally:
            await cluster.stop_all()
            nursery.cancel_scope.cancel()
