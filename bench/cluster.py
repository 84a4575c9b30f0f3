"""A local cluster on this machine (issue 10, item 4): ready time, RSS per node, idle CPU, commit latency, TTFB under
`lightning bench`.

The cluster is `lightning dev cluster --nodes N` (committee min(N, 4)); the anchor is a one-node cluster measured the
same way in the same run. Figures (see ../shared/BENCHMARKS.md):
- cluster_ready_seconds: `lightning dev cluster --nodes N` start → every node ready. Anchor: one node
  (`--nodes 1`) measured the same way in the same run. Start-up is CPU-bound (each node imports its modules), so on
  a 2-core machine the floor is about N/2 single-node start-ups; the goal is on the value (all ready within 5 s).
- node_idle_rss: median RSS of a cluster node after the cluster has been idle for a while. Anchor: the single node.
- node_idle_cpu: CPU time a node uses per second of wall time while idle (percent of one core); no anchor.
- cluster_commit_latency_p50 / _max: a few faucet transfers sent one at a time, round-robin over every node (edge
  nodes forward to the committee), each timed from `flk_send_txn` to the moment that node's long poll
  (`flk_get_blocks`) returns the block holding it. Anchor: the one-node cluster (a sequencer). Goal on the value.
- cluster_ttfb_p50 / _p99: `lightning bench` round-robin over every node's client endpoint for one 1 MiB blake3
  object stored on node 1 (the others fetch it from peers on their warm-up request), 16 concurrent clients (each
  keeps one connection per node, so enough requests per node that connection set-up is amortised), TTFB
  percentiles of the measured run. Anchor: the same load (total requests, concurrency) against the one-node
  cluster. Errors are printed; a run with errors fails.

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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.spawn import rpc
from lightning.chain.forward import decode_block_record
from lightning.crypto import SigningKey
from lightning.state.tx import sign_transaction

TICKS = os.sysconf("SC_CLK_TCK")
IDLE_S = 5.0
OBJECT_BYTES = 1 << 20
TO = "47" * 32
CONCURRENCY = 16  # the same for the cluster and the one-node anchor: the same load


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def commit_latencies(home: Path, rpc_urls: list[str], count: int) -> list[float]:
    """Seconds from submission to the block holding it, per transaction (sent one at a time)."""
    faucet = SigningKey(bytes.fromhex((home / "faucet.key").read_text().strip()))
    chain_id = int(json.loads((home / "cluster.json").read_text())["chain_id"])
    nonce = rpc(rpc_urls[0], "flk_get_account_info", faucet.public.raw.hex())["nonce"]
    out = []
    for k in range(count):
        url = rpc_urls[k % len(rpc_urls)]
        nonce += 1
        stx = sign_transaction(faucet, chain_id=chain_id, nonce=nonce, method="transfer", to=bytes.fromhex(TO),
                               amount=1)  # fmt: skip
        nxt = rpc(url, "flk_get_state_root")["height"] + 1
        t0 = time.perf_counter()
        rpc(url, "flk_send_txn", stx.raw.hex())
        deadline = t0 + 60
        found = False
        while not found:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"transaction {k} not committed on {url} within 60 s")
            for text in rpc(url, "flk_get_blocks", nxt, 64, 5000):  # long poll
                block, _ = decode_block_record(bytes.fromhex(text))
                found = found or stx.raw in block.txs
                nxt = block.height + 1
        out.append(time.perf_counter() - t0)
    return out


def bench_load(http_urls: list[str], root: str, requests: int, work: Path) -> dict[str, Any]:
    report = work / f"bench-{len(http_urls)}-{requests}.json"
    cmd = [sys.executable, "-m", "lightning", "bench", *(a for u in http_urls for a in ("--target", u)),
           "--root", root, "--requests", str(requests), "--concurrency", str(CONCURRENCY),
           "--json", str(report)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"lightning bench failed: {res.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def run_cluster(nodes: int, host_base: str, *, txs: int, requests_per_node: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        home = Path(d) / "cluster"
        log = Path(d) / "log"
        committee = min(nodes, 4)
        t0 = time.perf_counter()
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lightning", "dev", "cluster", "--nodes", str(nodes), "--home", str(home),
                 "--host-base", host_base, "--committee", str(committee)],
                stdout=f,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            while b"nodes ready" not in log.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(log.read_text(errors="replace")[-3000:])
                time.sleep(0.01)
            ready = time.perf_counter() - t0
            ports = [json.loads((home / f"node-{k}" / "run" / "ports.json").read_text()) for k in range(1, nodes + 1)]
            pids = [p["pid"] for p in ports]
            time.sleep(2.0)  # let start-up work settle
            before = {p: cpu_s(p) for p in pids}
            time.sleep(IDLE_S)
            cpu = [100 * (cpu_s(p) - before[p]) / IDLE_S for p in pids]
            rss = [rss_mb(p) for p in pids]

            rpc_urls = [f"http://{p['rpc']}/rpc/v0" for p in ports]
            latencies = commit_latencies(home, rpc_urls, txs)

            obj = Path(d) / "object"
            obj.write_bytes(os.urandom(OBJECT_BYTES))
            stored = subprocess.run(
                [sys.executable, "-m", "lightning", "dev", "store", str(obj), "--home", str(home / "node-1")],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if stored.returncode != 0:
                raise RuntimeError(f"dev store failed: {stored.stderr}")
            root = stored.stdout.split()[0]
            http_urls = [f"http://{p['http']}" for p in ports]
            warm = bench_load(http_urls, root, nodes, Path(d))  # one request per node: the others fetch from peers
            load = bench_load(http_urls, root, requests_per_node * nodes, Path(d))
            loaded_rss = [rss_mb(p) for p in pids]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return {"ready": ready, "rss": rss, "cpu": cpu, "latencies": latencies, "warm": warm, "load": load,
            "loaded_rss": loaded_rss}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs = 1 if args.quick else 3
    txs = 5 if args.quick else 10
    per_node = 160 if args.quick else 320
    one_runs, many_runs = [], []
    for i in range(runs):
        one_runs.append(run_cluster(1, f"127.60.{i}.1", txs=txs, requests_per_node=per_node * args.nodes))
        many_runs.append(run_cluster(args.nodes, f"127.61.{i}.1", txs=txs, requests_per_node=per_node))

    def med(runs_: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in runs_))

    def all_of(runs_: list[dict[str, Any]], key: str) -> list[float]:
        return [v for r in runs_ for v in r[key]]

    def ttfb(runs_: list[dict[str, Any]], q: str) -> float:
        return float(statistics.median(r["load"]["total"]["ttfb_ms"][q] for r in runs_))

    n = args.nodes
    figures: list[dict[str, Any]] = [
        {"name": f"cluster{n}_ready_seconds", "value": round(med(many_runs, "ready"), 2), "unit": "s",
         "anchor": "1-node cluster", "anchor_value": round(med(one_runs, "ready"), 2), "goal": "value <= 5"},
        {"name": "node_idle_rss", "value": round(statistics.median(all_of(many_runs, "rss")), 1), "unit": "MB",
         "anchor": "1-node cluster", "anchor_value": round(statistics.median(all_of(one_runs, "rss")), 1),
         "goal": "ratio <= 1.1"},
        {"name": "node_idle_cpu", "value": round(statistics.median(all_of(many_runs, "cpu")), 2),
         "unit": "% of a core", "anchor": None, "anchor_value": None, "goal": "value <= 1"},
        {"name": f"cluster{n}_commit_latency_p50", "unit": "ms",
         "value": round(1000 * statistics.median(all_of(many_runs, "latencies")), 1),
         "anchor": "1-node cluster", "anchor_value": round(1000 * statistics.median(all_of(one_runs, "latencies")), 1),
         "goal": "value <= 1000"},
        {"name": f"cluster{n}_commit_latency_max", "unit": "ms",
         "value": round(1000 * max(all_of(many_runs, "latencies")), 1),
         "anchor": "1-node cluster", "anchor_value": round(1000 * max(all_of(one_runs, "latencies")), 1),
         "goal": "value <= 2000"},
        {"name": f"cluster{n}_ttfb_p50", "value": ttfb(many_runs, "p50"), "unit": "ms",
         "anchor": "1-node cluster", "anchor_value": ttfb(one_runs, "p50"), "goal": "ratio <= 1.5"},
        {"name": f"cluster{n}_ttfb_p99", "value": ttfb(many_runs, "p99"), "unit": "ms",
         "anchor": "1-node cluster", "anchor_value": ttfb(one_runs, "p99"), "goal": "ratio <= 2"},
    ]  # fmt: skip
    for f in figures:
        f["ratio"] = round(f["value"] / f["anchor_value"], 2) if f["anchor_value"] else None
        anchor = f"({f['anchor']} {f['anchor_value']} {f['unit']})" if f["anchor"] else "(no anchor)"
        ratio = f"ratio {f['ratio']}" if f["ratio"] is not None else ""
        target = f["ratio"] if str(f["goal"]).startswith("ratio") else f["value"]
        ok = "OK" if target is not None and target <= float(str(f["goal"]).split("<=")[1]) else "MISS"
        print(f"{f['name']}  {f['value']} {f['unit']}  {anchor}  {ratio}  goal {f['goal']}  {ok}")
    rss = all_of(many_runs, "rss")
    print(f"# RSS per node (MB, idle, run 1): {' '.join(f'{v:.0f}' for v in many_runs[0]['rss'])}")
    print(f"# RSS per node (MB, after load, run 1): {' '.join(f'{v:.0f}' for v in many_runs[0]['loaded_rss'])}")
    print(f"# max RSS {max(rss):.1f} MB, max idle CPU {max(all_of(many_runs, 'cpu')):.2f} %, {runs} run(s)")
    for r in many_runs:
        load, warm = r["load"], r["warm"]
        errors = load["total"]["errors"] + warm["total"]["errors"]
        spread = [s["ok"] for s in load["nodes"].values()]
        print(f"# bench: {load['total']['ok']} ok, {errors} errors (warm-up included), per node ok "
              f"{min(spread)}..{max(spread)}, {load['total']['requests_per_s']} req/s, "
              f"ttfl p50 {load['total']['ttfl_ms']['p50']} ms")  # fmt: skip
        if errors:
            raise SystemExit(f"lightning bench saw errors: {load['total']['errors_by_kind']} {warm['total']}")
    for r in one_runs:
        total = r["load"]["total"]
        print(f"# anchor bench (1 node): {total['ok']} ok, {total['errors']} errors, {total['requests_per_s']} req/s, "
              f"ttfl p50 {total['ttfl_ms']['p50']} ms")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
