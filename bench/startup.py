"""Start-up time and idle memory of `lightning run --dev` (see ../shared/BENCHMARKS.md).

Figures:
- startup_ready_seconds: process start → run/ports.json written and /health 200. Anchor: a bare `python -c pass`
  interpreter start on the same machine (the floor any Python node pays).
- idle_rss: resident memory of the ready node after it has been idle for a moment. Anchor: a bare interpreter that
  has imported trio (the floor for a trio program). Goals from the foundation issue: ready <= 2 s, RSS <= 80 MB.

Usage: python bench/startup.py [--quick] [--json PATH]
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
import urllib.request
from pathlib import Path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def one_node(tmp: Path) -> tuple[float, float]:
    env = {**os.environ, "HOME": str(tmp), "LIGHTNING_HOME": ""}
    home = tmp / ".lightning-dev"
    subprocess.run([sys.executable, "-m", "lightning", "init", "--dev"], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning", "run", "--dev", "--http-port", "0", "--rpc-port", "0", "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                ports = json.loads((home / "run" / "ports.json").read_text())
                if ports.get("pid") == proc.pid:
                    with urllib.request.urlopen(f"http://{ports['rpc']}/health", timeout=2) as r:
                        if r.status == 200:
                            break
            except (FileNotFoundError, json.JSONDecodeError, OSError):
                pass
            if proc.poll() is not None:
                raise RuntimeError("node exited")
            time.sleep(0.005)
        ready = time.perf_counter() - t0
        time.sleep(1.0)
        rss = rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return ready, rss


def anchor_start() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def anchor_rss() -> float:
    proc = subprocess.Popen([sys.executable, "-c", "import trio, sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    time.sleep(1.0)
    try:
        return rss_mb(proc.pid)
    finally:
        proc.communicate(b"")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs = 3 if args.quick else 7
    readies, rsses, a_starts, a_rss = [], [], [], []
    anchor_start()  # warm-up
    for i in range(runs + 1):
        with tempfile.TemporaryDirectory() as d:
            ready, rss = one_node(Path(d))
        if i == 0:
            continue  # warm-up (page cache, .pyc)
        readies.append(ready)
        rsses.append(rss)
        a_starts.append(anchor_start())
        a_rss.append(anchor_rss())
    figures = [
        {
            "name": "startup_ready_seconds",
            "value": round(statistics.median(readies), 3),
            "unit": "s",
            "anchor": "python -c pass",
            "anchor_value": round(statistics.median(a_starts), 3),
            "goal": "value <= 2.0",
        },
        {
            "name": "idle_rss",
            "value": round(statistics.median(rsses), 1),
            "unit": "MB",
            "anchor": "python + import trio",
            "anchor_value": round(statistics.median(a_rss), 1),
            "goal": "value <= 80",
        },
    ]
    for f in figures:
        f["ratio"] = round(f["value"] / f["anchor_value"], 2)
        limit = float(str(f["goal"]).split("<=")[1])
        ok = "OK" if f["value"] <= limit else "MISS"
        print(
            f"{f['name']}  {f['value']} {f['unit']}  ({f['anchor']} {f['anchor_value']} {f['unit']})  "
            f"ratio {f['ratio']}  goal {f['goal']}  {ok}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
