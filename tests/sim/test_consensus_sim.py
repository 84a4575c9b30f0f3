"""The consensus cores under the deterministic simulator: crashes and restarts, partitions and heals, slow links,
an equivocating leader and a Byzantine voter. Every run checks safety (one block per height, equal state roots) and
that progress resumes after the heal; a failure prints the seed and the command that replays it."""

from __future__ import annotations

import pytest

from lightning.consensus.sim import SimConfig, run_simulation


def _check(committee: int, seed: int) -> None:
    result = run_simulation(SimConfig(committee=committee, seed=seed))
    assert result.ok, (
        f"seed {seed}: {result.violations}; replay: lightning dev simulate consensus --committee {committee} "
        f"--seeds 1 --seed {seed}\n" + "\n".join(result.trace[-40:])
    )
    assert result.height_at_heal >= 0 and min(result.heights.values()) >= result.height_at_heal + 2


@pytest.mark.parametrize(
    ("committee", "seed"), [(4, s) for s in range(24)] + [(7, s) for s in range(16)] + [(10, s) for s in range(10)]
)
def test_consensus_sim_batch(committee: int, seed: int) -> None:
    _check(committee, seed)


@pytest.mark.slow
@pytest.mark.parametrize("committee", [4, 7, 10])
@pytest.mark.parametrize("seed", range(100, 300))
def test_consensus_sim_ci_batch(committee: int, seed: int) -> None:
    _check(committee, seed)


def test_consensus_sim_replays_exactly() -> None:
    a = run_simulation(SimConfig(committee=7, seed=11))
    b = run_simulation(SimConfig(committee=7, seed=11))
    assert a.trace == b.trace and a.heights == b.heights and a.events == b.events
    c = run_simulation(SimConfig(committee=7, seed=12))
    assert c.trace != a.trace


def test_consensus_sim_faults_are_injected() -> None:
    result = run_simulation(SimConfig(committee=4, seed=5))
    text = "\n".join(result.trace)
    assert result.byzantine and "FAULT" in text
    # without faults nothing ever times out
    calm = run_simulation(SimConfig(committee=4, seed=5, faults=()))
    assert calm.ok and calm.stats["timeouts"] == 0 and min(calm.heights.values()) > 50
