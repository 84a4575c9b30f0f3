"""One simulated run: a cluster, a scenario's faults and clients on a timeline, invariants checked throughout.

:func:`run_scenario` starts the cluster (``cluster.py``), stores the run's content object on node 0, then plays the
scenario (``scenario.py``): faults start and heal at their times; clients fetch the content through a node's
client endpoint (in-memory HTTP to the node's real handlers) and send transfers through its JSON-RPC dispatcher.
Every commit, restart and response is checked by :class:`~lightning.sim.invariants.Invariants`; liveness is checked
once a second. The first violation ends the run. Must run under ``trio.testing.MockClock(autojump_threshold=0)``:
:func:`simulate` does that for a plain (non-trio) caller.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio
import trio.testing

from lightning.blockstore.tree import root_of_bytes
from lightning.crypto import SigningKey
from lightning.net.sim import Link
from lightning.sim.byzantine import BEHAVIOURS
from lightning.sim.cluster import SimCluster
from lightning.sim.http import MemoryHttp
from lightning.sim.invariants import Invariants
from lightning.sim.scenario import Fault, Scenario
from lightning.state.tx import sign_transaction

__all__ = ["RunResult", "run_scenario", "simulate"]

CONTENT_BYTES = 600 * 1024  # three 256 KiB blocks: fetches between nodes cross block boundaries
FETCH_TIMEOUT_S = 20.0
TX_AMOUNT = 10**15


@dataclass
class RunResult:
    seed: int
    ok: bool
    violation: str = ""
    invariant: str = ""
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    heights: dict[int, int] = field(default_factory=dict)
    commits: int = 0
    faults: list[str] = field(default_factory=list)
    fetches_ok: int = 0
    fetches_failed: int = 0
    verified_bytes: int = 0
    txs_accepted: int = 0
    txs_refused: int = 0
    txs_committed: int = 0
    corrupted_chunks: int = 0  # chunks of content the Byzantine nodes sent peers corrupted
    ttfb_ms: list[float] = field(default_factory=list)  # per successful fetch, simulated time to the first byte
    ttlb_ms: list[float] = field(default_factory=list)  # ... and to the last byte

    @property
    def ttfb_ms_p50(self) -> float:
        return statistics.median(self.ttfb_ms) if self.ttfb_ms else 0.0

    @property
    def ttlb_ms_p50(self) -> float:
        return statistics.median(self.ttlb_ms) if self.ttlb_ms else 0.0


def simulate(scenario: Scenario, *, root: Path | None = None, resume_bound_s: float = 30.0) -> RunResult:
    """Run ``scenario`` under a fresh MockClock in a fresh trio run (and a temporary directory unless ``root``)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lightning-sim-") as tmp:
        result = trio.run(
            run_scenario,
            root or Path(tmp),
            scenario,
            resume_bound_s,
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
    result.wall_seconds = time.monotonic() - started
    return result


async def run_scenario(root: Path, scenario: Scenario, resume_bound_s: float = 30.0) -> RunResult:
    result = RunResult(
        scenario.seed,
        ok=True,
        faults=[f.describe() for f in scenario.faults] + [f"{b}[{i}] whole run" for i, b in scenario.byzantine],
    )
    invariants = Invariants(resume_bound_s=resume_bound_s)
    async with trio.open_nursery() as nursery:
        cluster = SimCluster(
            root,
            nursery,
            seed=scenario.seed,
            nodes=scenario.nodes,
            committee=scenario.committee,
            invariants=invariants,
            accounts=len(scenario.transactions) + 1,  # account 0 receives; one sender per transaction (nonce 1)
            factories={i: BEHAVIOURS[b] for i, b in scenario.byzantine},
        )
        senders = cluster.chain.accounts[1:]
        t0 = trio.current_time()
        try:
            await cluster.start_all()
            data = random.Random(scenario.seed).randbytes(CONTENT_BYTES)
            node0 = cluster.members[0].node
            assert node0 is not None
            content_root = await node0.blockstore.put(data, pin=True)
            assert content_root == root_of_bytes(data)
            objects = {content_root: data}
            for i, _ in scenario.byzantine:  # an object only a liar holds: peers can only get it corrupted
                liar = cluster.members[i].node
                assert liar is not None
                secret = random.Random(f"{scenario.seed}/liar/{i}").randbytes(CONTENT_BYTES)
                objects[await liar.blockstore.put(secret, pin=True)] = secret
            play = _Player(cluster, invariants, result, objects, senders)
            async with trio.open_nursery() as inner:
                inner.start_soon(play.liveness)
                inner.start_soon(_stop_when_broken, cluster, inner.cancel_scope)
                for at, action in _timeline(scenario):
                    await trio.sleep_until(t0 + at)
                    await action(play, inner)
                await trio.sleep_until(t0 + scenario.seconds)
                cluster.check(invariants.check_liveness, trio.current_time())
                inner.cancel_scope.cancel()
        finally:
            if cluster.violation is not None:
                exc = cluster.violation
                result.ok, result.violation, result.invariant = False, str(exc), exc.name
            result.sim_seconds = trio.current_time() - t0
            result.heights = cluster.heights()
            result.commits = invariants.commits
            result.verified_bytes = invariants.verified_bytes
            result.txs_committed = _committed(cluster, [s.public.raw for s in senders])
            result.corrupted_chunks = sum(
                getattr(node.content_server, "corrupted_chunks", 0)
                for i, _ in scenario.byzantine
                if (node := cluster.members[i].node) is not None
            )
            await cluster.stop_all()
            nursery.cancel_scope.cancel()
    return result


def _committed(cluster: SimCluster, senders: list[bytes]) -> int:
    up = [m.node for m in cluster.members if m.node is not None and m.node.state.running]
    if not up:
        return 0
    return sum(up[0].state.account(s).nonce for s in senders)


class _Player:
    def __init__(
        self,
        cluster: SimCluster,
        invariants: Invariants,
        result: RunResult,
        objects: dict[bytes, bytes],
        senders: list[SigningKey],
    ) -> None:
        self.cluster = cluster
        self.invariants = invariants
        self.result = result
        self.objects = objects  # root -> bytes
        self.roots = list(objects)
        self.senders = senders
        self.fetches = 0
        self.next_sender = 0
        self.active = 0

    # -- faults ------------------------------------------------------------------------------------------------------
    async def start_fault(self, fault: Fault) -> None:
        self.active += 1
        self.cluster.check(self.invariants.on_faults, True, trio.current_time())
        c = self.cluster
        if fault.kind == "crash":
            for i in fault.nodes:
                if c.members[i].node is not None:
                    await c.crash(i)
        elif fault.kind == "partition":
            c.partition(list(fault.nodes))
        elif fault.kind == "slow":
            a, b = fault.nodes
            c.set_link(a, b, Link(latency_s=fault.amount, jitter_s=fault.amount / 4))
        elif fault.kind == "lossy":
            a, b = fault.nodes
            c.set_link(a, b, Link(loss=fault.amount))
        elif fault.kind == "skew":
            c.members[fault.nodes[0]].clock.skew_ms = int(fault.amount)

    async def end_fault(self, fault: Fault) -> None:
        c = self.cluster
        if fault.kind == "crash":
            for i in fault.nodes:
                if c.members[i].node is None:
                    await c.start(i)
        elif fault.kind == "partition":
            c.heal()
        elif fault.kind in ("slow", "lossy"):
            a, b = fault.nodes
            c.set_link(a, b, c.net.default_link)
        elif fault.kind == "skew":
            c.members[fault.nodes[0]].clock.skew_ms = 0
        self.active -= 1
        if self.active == 0:
            self.cluster.check(self.invariants.on_faults, False, trio.current_time())

    # -- clients -----------------------------------------------------------------------------------------------------
    async def fetch(self, index: int) -> None:
        member = self.cluster.members[index]
        node = member.node
        if node is None:
            return  # a client of a crashed node gets no answer; nothing to check
        root = self.roots[self.fetches % len(self.roots)]
        self.fetches += 1
        data = self.objects[root]
        http = MemoryHttp(self.cluster.nursery, node.client.handle)
        with trio.move_on_after(FETCH_TIMEOUT_S):
            started = trio.current_time()
            exchange = await http.open("GET", f"/services/0/blake3/{root.hex()}")
            await exchange.head()
            first = trio.current_time()
            reply = await exchange.finish()
            if reply.status == 200 and reply.complete:
                self.result.ttfb_ms.append((first - started) * 1000)
                self.result.ttlb_ms.append((trio.current_time() - started) * 1000)
                ok = reply.body == data and root_of_bytes(reply.body) == root
                self.cluster.check(self.invariants.on_served, member.node_id, root.hex()[:16], ok, len(reply.body))
                self.result.fetches_ok += 1
                return
            # Refused or cut short (the node could not get it): whatever did arrive must be a true prefix.
            if reply.status == 200:
                ok = data.startswith(reply.body)
                self.cluster.check(self.invariants.on_served, member.node_id, "a partial body", ok, len(reply.body))
        self.result.fetches_failed += 1

    async def send_tx(self, index: int) -> None:
        node = self.cluster.members[index].node
        key = self.senders[self.next_sender]
        self.next_sender += 1
        if node is None:
            self.result.txs_refused += 1
            return
        to = self.cluster.chain.accounts[0].public.raw
        stx = sign_transaction(
            key, chain_id=self.cluster.genesis.chain_id, nonce=1, method="transfer", to=to, amount=TX_AMOUNT
        )
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "flk_send_txn", "params": [stx.raw.hex()]})
        answer = json.loads((await node.dispatcher.handle(body.encode(), "127.0.0.1")) or b"{}")
        if "result" in answer:
            self.result.txs_accepted += 1
        else:
            self.result.txs_refused += 1

    async def liveness(self) -> None:
        while True:
            await trio.sleep(1.0)
            self.cluster.check(self.invariants.check_liveness, trio.current_time())


async def _stop_when_broken(cluster: SimCluster, scope: trio.CancelScope) -> None:
    await cluster.broken.wait()
    scope.cancel()


def _timeline(scenario: Scenario) -> list[tuple[float, Action]]:
    events: list[tuple[float, int, Action]] = []
    for seq, f in enumerate(scenario.faults):
        events.append((f.start_s, seq, _FaultStart(f)))
        events.append((f.end_s, seq, _FaultEnd(f)))
    base = len(events)
    for i, (at, node) in enumerate(scenario.fetches):
        events.append((at, base + i, _Spawn("fetch", node)))
    base = len(events)
    for i, (at, node) in enumerate(scenario.transactions):
        events.append((at, base + i, _Spawn("tx", node)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(at, action) for at, _, action in events]


class Action:
    async def __call__(self, play: _Player, nursery: trio.Nursery) -> None:
        raise NotImplementedError


class _FaultStart(Action):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    async def __call__(self, play: _Player, nursery: trio.Nursery) -> None:
        await play.start_fault(self.fault)


class _FaultEnd(Action):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    async def __call__(self, play: _Player, nursery: trio.Nursery) -> None:
        await play.end_fault(self.fault)


class _Spawn(Action):
    def __init__(self, what: str, node: int) -> None:
        self.what = what
        self.node = node

    async def __call__(self, play: _Player, nursery: trio.Nursery) -> None:
        nursery.start_soon(play.fetch if self.what == "fetch" else play.send_tx, self.node)
