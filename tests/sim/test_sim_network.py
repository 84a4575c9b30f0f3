"""Whole nodes over the simulated network (lightning/sim/): seeded fault schedules, clients, invariants.

The default run is a CI-sized batch; ``pytest -m slow tests/sim/test_sim_network.py`` runs the large one. A failure
prints the seed and the command that replays its schedule (docs/simulation.md)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from lightning.sim.byzantine import BEHAVIOURS
from lightning.sim.cluster import SimCluster, open_cluster
from lightning.sim.http import MemoryHttp
from lightning.sim.invariants import Invariants, InvariantViolation
from lightning.sim.run import simulate
from lightning.sim.scenario import FAULT_KINDS, plan


def _check(seed: int, nodes: int, committee: int, seconds: float) -> None:
    result = simulate(plan(seed, nodes=nodes, committee=committee, seconds=seconds))
    replay = (
        f"lightning dev simulate network --nodes {nodes} --committee {committee} --seconds {seconds:g} "
        f"--seeds 1 --seed {seed} --faults {','.join(FAULT_KINDS)}"
    )
    assert result.ok, f"seed {seed}: {result.violation}\nfaults: {result.faults}\nreplay: {replay}"
    assert result.commits > 0 and min(result.heights.values()) > 0, f"seed {seed}: nothing committed ({replay})"
    assert result.fetches_ok > 0, f"seed {seed}: no fetch succeeded ({replay})"


@pytest.mark.parametrize("seed", range(6))
def test_eight_nodes_keep_every_invariant_through_a_seeded_fault_schedule(seed: int) -> None:
    _check(seed, nodes=8, committee=4, seconds=45)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_sixteen_nodes_over_three_simulated_minutes(seed: int) -> None:
    _check(seed, nodes=16, committee=7, seconds=180)


async def test_a_crashed_node_restarts_from_its_storage_and_catches_up(tmp_path: Path, autojump_clock: object) -> None:
    async with open_cluster(tmp_path, seed=3, nodes=5, committee=4) as cluster:
        await cluster.wait_height(5)
        await cluster.crash(4)
        before = cluster.invariants.heights[cluster.members[4].node_id]
        await trio.sleep(10)
        node = await cluster.start(4)
        assert node.state.head().height >= before  # durability across the restart
        target = max(cluster.heights().values()) + 3
        await cluster.wait_height(target)
        # the restarted node executed every block up to ``target`` again, each checked against the others' hash and root
        assert cluster.invariants.heights[cluster.members[4].node_id] >= target
        assert cluster.violation is None and target in cluster.invariants.roots


async def test_a_peer_serving_corrupt_content_is_never_believed(tmp_path: Path, autojump_clock: object) -> None:
    async with trio.open_nursery() as nursery:
        cluster = SimCluster(tmp_path, nursery, seed=5, nodes=4, committee=4, factories={1: BEHAVIOURS["corrupt"]})
        await cluster.start_all()
        liar, honest = cluster.members[1].node, cluster.members[2].node
        assert liar is not None and honest is not None
        data = random.Random(5).randbytes(600 * 1024)
        root = await liar.blockstore.put(data)
        reply = await MemoryHttp(nursery, honest.client.handle).get(f"/services/0/blake3/{root.hex()}")
        assert liar.content_server.corrupted_chunks > 0  # type: ignore[attr-defined]
        assert reply.status != 200 and not honest.blockstore.has(root)  # nothing unverified stored or served
        await cluster.members[0].node.blockstore.put(data)  # type: ignore[union-attr]  # an honest holder appears
        reply = await MemoryHttp(nursery, honest.client.handle).get(f"/services/0/blake3/{root.hex()}")
        assert reply.status == 200 and reply.complete and reply.body == data
        await cluster.stop_all()
        nursery.cancel_scope.cancel()


def test_invariants_catch_disagreement_rollback_bad_bytes_and_stalls() -> None:
    a, b = (bytes([i]) * 32 for i in (1, 2))
    from lightning.ids import NodeId

    na, nb = NodeId(a), NodeId(b)
    inv = Invariants(resume_bound_s=5)
    inv.on_commit(na, 1, b"h" * 32, b"r" * 32, 1.0)
    with pytest.raises(InvariantViolation, match="agreement"):
        inv.on_commit(nb, 1, b"x" * 32, b"r" * 32, 1.0)
    with pytest.raises(InvariantViolation, match="state"):
        inv.on_commit(nb, 1, b"h" * 32, b"z" * 32, 1.0)
    with pytest.raises(InvariantViolation, match="durability"):
        inv.on_restart(na, 0)
    with pytest.raises(InvariantViolation, match="verified"):
        inv.on_served(na, "x", False, 10)
    inv.on_faults(True, 2.0)
    inv.on_faults(False, 3.0)
    inv.check_liveness(7.9)  # within the bound
    with pytest.raises(InvariantViolation, match="liveness"):
        inv.check_liveness(8.1)


def test_a_seed_gives_the_same_schedule() -> None:
    assert plan(9, nodes=8, committee=4, seconds=60) == plan(9, nodes=8, committee=4, seconds=60)
    assert plan(9, nodes=8, committee=4, seconds=60) != plan(10, nodes=8, committee=4, seconds=60)
    with pytest.raises(ValueError, match="unknown fault"):
        plan(1, nodes=4, committee=4, seconds=30, kinds=["meteor"])


async def test_a_violation_is_recorded_and_ends_the_run_not_a_node(tmp_path: Path, autojump_clock: object) -> None:
    """Two of four committee members down: no quorum, so once the faults are declared healed, liveness breaks; the
    cluster records the first violation and sets ``broken`` instead of raising into a node or client task."""
    async with open_cluster(tmp_path, seed=4, nodes=4, committee=4, invariants=Invariants(resume_bound_s=5)) as c:
        await c.wait_height(3)
        await c.crash(0)
        await c.crash(1)
        await trio.sleep(5)  # what was committed before the crashes has reached the survivors
        c.check(c.invariants.on_faults, False, trio.current_time())  # claim the faults healed; they have not
        with trio.move_on_after(30):
            while not c.broken.is_set():
                await trio.sleep(1)
                c.check(c.invariants.check_liveness, trio.current_time())
        assert c.violation is not None and c.violation.name == "liveness"
        assert all(m.node is not None for m in c.members[2:])  # the nodes themselves kept running
