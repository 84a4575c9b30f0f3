"""`lightning bench` against real nodes: sane figures, per-node distribution, errors when a node stops mid-run."""

from __future__ import annotations

import json
import random
import re
import subprocess
import time

from lightning.blockstore import BLOCK_SIZE
from tests.integration.harness import http_get, lightning_cmd, run_cli


def _store(node, tmp_path, size: int) -> str:
    src = tmp_path / f"obj{size}"
    src.write_bytes(random.Random(size).randbytes(size))
    return run_cli("dev", "store", str(src), "--home", str(node.home)).stdout.split()[0]


def test_bench_reports_figures_per_node(spawn, tmp_path):
    a, b = spawn("a"), spawn("b")
    pa, pb = a.wait_ready(), b.wait_ready()
    size = BLOCK_SIZE + 1000
    roots = [_store(n, tmp_path, size) for n in (a, b)]
    assert roots[0] == roots[1]
    out = tmp_path / "report.json"
    res = run_cli(
        "bench",
        "--target", f"http://{pa['http']}", "--target", f"http://{pb['http']}",
        "--root", roots[0], "--requests", "120", "--concurrency", "6", "--json", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    total = report["total"]
    assert total["ok"] == 120 and total["errors"] == 0 and total["bytes"] == 120 * size
    assert set(report["nodes"]) == {f"http://{pa['http']}", f"http://{pb['http']}"}
    assert [n["ok"] for n in report["nodes"].values()] == [60, 60]
    for q in ("p50", "p90", "p99"):
        assert 0 < total["ttfb_ms"][q] <= total["ttfl_ms"][q]
    assert total["ttfb_ms"]["p50"] <= total["ttfb_ms"]["p90"] <= total["ttfb_ms"]["p99"]
    assert "total" in res.stdout and f"http://{pa['http']}" in res.stdout


def _served(ports) -> float:
    text = http_get(f"http://{ports['rpc']}/metrics")[2].decode()
    m = re.search(r'lightning_services_requests_total\{service="0",status="200"\} ([0-9.]+)', text)
    return float(m.group(1)) if m else 0.0


def test_bench_counts_errors_when_the_node_stops(spawn, tmp_path):
    node = spawn("a")
    ports = node.wait_ready()
    root = _store(node, tmp_path, 4096)
    out = tmp_path / "report.json"
    args = ["bench", "--target", f"http://{ports['http']}", "--root", root, "--duration", "8"]
    args += ["--concurrency", "4", "--timeout", "5", "--json", str(out)]
    proc = subprocess.Popen(
        lightning_cmd(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _served(ports) < 50:  # the run is under way
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert node.stop() == 0
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    total = json.loads(out.read_text())["total"]
    assert total["ok"] >= 50 and total["errors"] > 0
    assert total["errors_by_kind"].get("connect", 0) > 0  # after the stop, connections are refused
    # in-flight responses cut by the stop show up as reset, closed or protocol (truncated body)
    assert set(total["errors_by_kind"]) <= {"connect", "reset", "closed", "protocol", "timeout"}, total
    assert b"errors: " in stdout
