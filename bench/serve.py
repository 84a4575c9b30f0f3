"""Serving content: a node's /services/0/blake3/<root> against nginx serving the same bytes from a file.

Figures (see ../shared/BENCHMARKS.md), each side driven by the same `wrk` client, rounds alternating node/nginx,
medians quoted:
- serve_large_throughput: one 256 MiB object (64 MiB with --quick), cached, every block verified on read, one
  connection. Anchor: nginx (sendfile). Goal >= 0.9.
- serve_small_rps: one 4 KiB object at 64 concurrent connections. Anchor: nginx. Goal >= 0.25.
- serve_small_p99_ms: wrk's p99 latency for the 4 KiB requests (≈ TTFB for a body this small); no anchor, goal <= 15.

Needs `nginx` and `wrk` (Debian: `apt-get install nginx-light wrk`).
Usage: python bench/serve.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIGHTNING = [sys.executable, "-m", "lightning"]
UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def wrk(url: str, connections: int, seconds: float, threads: int = 1) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"Transfer/sec:\s+([0-9.]+)([KMG]?B)", out)
    transfer = float(m.group(1)) * UNITS[m.group(2)] if m else 0.0
    p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses\n{out}")
    return {"rps": rps, "mb_s": transfer / 1e6, "p99_ms": p99_ms}


def start_nginx(root: Path, work: Path, port: int) -> subprocess.Popen[bytes]:
    conf = work / "nginx.conf"
    conf.write_text(
        f"""
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""
    )
    (work / "nginx-tmp").mkdir(exist_ok=True)
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)])


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read(16)
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url}: not up")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"bench/serve.py needs {tool}: apt-get install nginx-light wrk")
    large = (64 if args.quick else 256) * 1024 * 1024
    rounds = 3 if args.quick else 5
    seconds = 3 if args.quick else 5
    work = Path(tempfile.mkdtemp(prefix="lightning-serve-"))
    node = nginx = None
    try:
        work.chmod(0o755)  # nginx workers run as an unprivileged user when started by root
        files = work / "www"
        files.mkdir(mode=0o755)
        (files / "large.bin").write_bytes(os.urandom(large))
        (files / "small.bin").write_bytes(os.urandom(4096))
        home = work / "home"
        subprocess.run([*LIGHTNING, "init", "--dev", "--home", str(home)], check=True, capture_output=True)
        roots = {}
        for name in ("large.bin", "small.bin"):
            out = subprocess.run(
                [*LIGHTNING, "dev", "store", str(files / name), "--pin", "--home", str(home)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            roots[name] = out.split()[0]
        node = subprocess.Popen([*LIGHTNING, "-q", "run", "--home", str(home), "--http-port", "0", "--rpc-port", "0"])
        while not (home / "run" / "ports.json").exists():
            if node.poll() is not None:
                raise RuntimeError("node exited")
            time.sleep(0.05)
        http = json.loads((home / "run" / "ports.json").read_text())["http"]
        node_url = {n: f"http://{http}/services/0/blake3/{r}" for n, r in roots.items()}
        nginx = start_nginx(files, work, 18080 + os.getpid() % 1000)
        nginx_port = 18080 + os.getpid() % 1000
        nginx_url = {n: f"http://127.0.0.1:{nginx_port}/{n}" for n in roots}
        wait_http(nginx_url["small.bin"], nginx)
        wait_http(node_url["small.bin"], node)

        results: dict[str, list[dict[str, float]]] = {"node_l": [], "nginx_l": [], "node_s": [], "nginx_s": []}
        wrk(node_url["large.bin"], 1, 1)  # warm-up: page cache, tree cache
        wrk(nginx_url["large.bin"], 1, 1)
        for _ in range(rounds):
            results["node_l"].append(wrk(node_url["large.bin"], 1, seconds))
            results["nginx_l"].append(wrk(nginx_url["large.bin"], 1, seconds))
            results["node_s"].append(wrk(node_url["small.bin"], 64, seconds, threads=2))
            results["nginx_s"].append(wrk(nginx_url["small.bin"], 64, seconds, threads=2))
    finally:
        for proc in (node, nginx):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM if proc is node else signal.SIGQUIT)
                proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)

    def med(key: str, field: str) -> float:
        return statistics.median(r[field] for r in results[key])

    figures = [
        ("serve_large_throughput", round(med("node_l", "mb_s"), 1), "MB/s", "nginx", round(med("nginx_l", "mb_s"), 1),
         ">= 0.9"),
        ("serve_small_rps", round(med("node_s", "rps"), 0), "req/s", "nginx", round(med("nginx_s", "rps"), 0),
         ">= 0.25"),
        ("serve_small_p99_ms", round(med("node_s", "p99_ms"), 2), "ms", None, None, "value <= 15"),
    ]  # fmt: skip
    out = []
    for name, value, unit, anchor, anchor_value, goal in figures:
        ratio = round(value / anchor_value, 2) if anchor_value else None
        if ratio is not None:
            ok = ratio >= float(goal.split(">=")[1])
            line = f"{name}  {value} {unit}  ({anchor} {anchor_value} {unit})  ratio {ratio}  goal {goal}"
        else:
            ok = value <= float(goal.split("<=")[1])
            line = f"{name}  {value} {unit}  (no anchor)  goal {goal}"
        print(f"{line}  {'OK' if ok else 'MISS'}")
        out.append(
            {"name": name, "value": value, "unit": unit, "anchor": anchor, "anchor_value": anchor_value,
             "ratio": ratio, "goal": goal}
        )  # fmt: skip
    print(f"# large {large // 2**20} MiB, {rounds} rounds x {seconds} s, wrk, medians")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
