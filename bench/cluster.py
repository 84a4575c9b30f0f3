"""A local cluster on this machine: time until every node is ready, RSS per node, CPU when idle.

Figures (see ../shared/BENCHMARKS.md):
- cluster_ready_seconds: `lightning dev cluster --nodes N` start → every node ready. Anchor: one node
  (`--nodes 1`) measured the same way in the same run. Start-up is CPU-bound (each node imports its modules), so on
  a 2-core machine the floor is about N/2 single-node start-ups; the goal is on the value (all ready within 5 s).
- node_idle_rss: median RSS of a cluster node after the cluster has been idle for a while. Anchor: the single node.
- node_idle_cpu: CPU time a node uses per second of wall time while idle (percent of one core); no anchor.

Usage: python bench/cluster.py [--nodes 16] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
IDLE_S = 5.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run_cluster(nodes: int, host_base: str) -> tuple[float, list[float], list[float]]:
    with tempfile.TemporaryDirectory() as d:
        home = Path(d) / "cluster"
        log = Path(d) / "log"
        t0 = time.perf_counter()
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lightning", "dev", "cluster", "--nodes", str(nodes), "--home", str(home),
                 "--host-base", host_base],
                stdout=f,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            while b"nodes ready" not in log.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text(errors="replace")[-3000:])
                time.sleep(0.01)
            ready = time.perf_counter() - t0
            ports = [home / f"node-{k}" / "run" / "ports.json" for k in range(1, nodes + 1)]
            pids = [json.loads(p.read_text())["pid"] for p in ports]
            time.sleep(2.0)  # let start-up work settle
            before = {p: cpu_s(p) for p in pids}
            time.sleep(IDLE_S)
            cpu = [100 * (cpu_s(p) - before[p]) / IDLE_S for p in pids]
            rss = [rss_mb(p) for p in pids]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return ready, rss, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs = 1 if args.quick else 3
    readies, one_readies, rsses, one_rsses, cpus = [], [], [], [], []
    for i in range(runs):
        one_ready, one_rss, _ = run_cluster(1, f"127.60.{i}.1")
        ready, rss, cpu = run_cluster(args.nodes, f"127.61.{i}.1")
        one_readies.append(one_ready)
        one_rsses.extend(one_rss)
        readies.append(ready)
        rsses.extend(rss)
        cpus.extend(cpu)
    figures = [
        {"name": f"cluster{args.nodes}_ready_seconds", "value": round(statistics.median(readies), 2), "unit": "s",
         "anchor": "1-node cluster", "anchor_value": round(statistics.median(one_readies), 2), "goal": "value <= 5"},
        {"name": "node_idle_rss", "value": round(statistics.median(rsses), 1), "unit": "MB",
         "anchor": "1-node cluster", "anchor_value": round(statistics.median(one_rsses), 1), "goal": "ratio <= 1.1"},
        {"name": "node_idle_cpu", "value": round(statistics.median(cpus), 2), "unit": "% of a core",
         "anchor": None, "anchor_value": None, "goal": "value <= 1"},
    ]  # fmt: skip
    for f in figures:
        f["ratio"] = round(f["value"] / f["anchor_value"], 2) if f["anchor_value"] else None
        anchor = f"({f['anchor']} {f['anchor_value']} {f['unit']})" if f["anchor"] else "(no anchor)"
        ratio = f"ratio {f['ratio']}" if f["ratio"] is not None else ""
        target = f["ratio"] if str(f["goal"]).startswith("ratio") else f["value"]
        ok = "OK" if target is not None and target <= float(str(f["goal"]).split("<=")[1]) else "MISS"
        print(f"{f['name']}  {f['value']} {f['unit']}  {anchor}  {ratio}  goal {f['goal']}  {ok}")
    print(f"# max RSS {max(rsses):.1f} MB, max idle CPU {max(cpus):.2f} %, {runs} run(s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
