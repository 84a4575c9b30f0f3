"""Speed of the whole-node simulation (lightning/sim/, see ../shared/BENCHMARKS.md).

Figures:
- sim_speedup_{8,16,32}: simulated seconds per wall second for N real nodes (committee 4) over the simulated network,
  no faults, clients fetching and sending transactions as in a scenario. Measured after start-up (start-up is
  reported on its own line). No anchor (a ratio of two clocks of the same run); goal for 16 nodes: >= 20.
- sim_ci_seeds_per_minute: seeds of the default test batch (8 nodes, 45 simulated seconds, every fault kind)
  finished per wall minute. No anchor; goal >= 6 (the batch of 6 seeds within a minute).

Each figure is the median of several runs. Usage: python bench/sim.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.sim.cluster import open_cluster
from lightning.sim.run import simulate
from lightning.sim.scenario import plan


async def _steady(root: Path, nodes: int, seconds: float, wall: dict[str, float]) -> None:
    started = time.monotonic()
    async with open_cluster(root, seed=1, nodes=nodes, committee=4) as cluster:
        wall["startup"] = time.monotonic() - started
        t0, w0 = trio.current_time(), time.monotonic()
        await trio.sleep(seconds)
        wall["run"] = time.monotonic() - w0
        wall["sim"] = trio.current_time() - t0
        assert min(cluster.heights().values()) > 0


def speedup(nodes: int, seconds: float) -> tuple[float, float]:
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        trio.run(_steady, Path(tmp), nodes, seconds, wall, clock=trio.testing.MockClock(autojump_threshold=0))
    return wall["sim"] / wall["run"], wall["startup"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs, shorter simulated time")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    runs, seconds = (1, 20.0) if args.quick else (3, 60.0)
    figures = []
    for n in (8, 16) if args.quick else (8, 16, 32):
        samples = [speedup(n, seconds) for _ in range(runs)]
        value = statistics.median(s for s, _ in samples)
        start = statistics.median(s for _, s in samples)
        goal = ">= 20" if n == 16 else None
        figures.append({"name": f"sim_speedup_{n}", "value": round(value, 2), "unit": "sim s / wall s",
                        "anchor": None, "anchor_value": None, "ratio": None, "goal": goal})  # fmt: skip
        print(f"# {n} nodes: start-up {start:.2f} s wall")
    walls = []
    for seed in range(2 if args.quick else 6):
        result = simulate(plan(seed, nodes=8, committee=4, seconds=45))
        assert result.ok, result.violation
        walls.append(result.wall_seconds)
    per_minute = 60.0 / statistics.median(walls)
    figures.append({"name": "sim_ci_seeds_per_minute", "value": round(per_minute, 1), "unit": "seeds/min",
                    "anchor": None, "anchor_value": None, "ratio": None, "goal": ">= 6"})  # fmt: skip
    for f in figures:
        goal = f["goal"]
        verdict = ""
        if goal is not None:
            verdict = "OK" if float(f["value"]) >= float(str(goal).split()[1]) else "MISS"
        print(f"{f['name']}  {f['value']} {f['unit']}  (no anchor)  goal {goal or '-'}  {verdict}".rstrip())
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
