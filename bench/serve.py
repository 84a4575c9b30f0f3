"""Serving content: a node's /services/0/blake3/<root> against nginx serving the same bytes from a file.

Figures (see ../shared/BENCHMARKS.md), each side driven by the same `wrk` client, rounds alternating node/nginx,
medians quoted:
- serve_large_throughput: one 256 MiB object (64 MiB with --quick), cached, every block verified on read, one
  connection. Anchor: nginx (sendfile). Goal >= 0.9.
- serve_small_rps: one 4 KiB object at 64 concurrent connections. Anchor: nginx. Goal >= 0.25.
- serve_small_p99_ms: wrk's p99 latency for the 4 KiB requests (≈ TTFB for a body this small); no anchor, goal <= 15.

- miss_ttfb_ms: first byte of a file the node does not have (fetched from a local trustless gateway serving an
  ipfs-car CAR), against that gateway's own TTFB for the same file. Goal: within 10 ms of the origin.

Needs `nginx` and `wrk` (Debian: `apt-get install nginx-light wrk`) and ipfs-car (`npm install ipfs-car@3.1.0`;
point IPFS_CAR at its binary, else `npx` fetches it).
Usage: python bench/serve.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.config import dump_toml, load_config
from lightning.fetcher.config import OriginIpfsConfig

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


def ttfb_ms(host: str, port: int, target: str) -> float:
    """Time from sending a GET to the first response byte, then read the rest (one fresh connection)."""
    with socket.create_connection((host, port), timeout=30) as sock:
        t0 = time.perf_counter()
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        first = sock.recv(65536)
        elapsed = (time.perf_counter() - t0) * 1000
        if not first.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{target}: {first[:80]!r}")
        while sock.recv(1 << 20):
            pass
    return elapsed


GATEWAY_SCRIPT = """
import sys, trio
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.ipfs_gateway import TestGateway
gw = TestGateway.from_cars([Path(sys.argv[1])])
async def main():
    async with trio.open_nursery() as n:
        host, port = await n.start(gw.serve)
        print(port, flush=True)
trio.run(main)
"""


def make_miss_car(work: Path, files: int) -> tuple[Path, str]:
    """`files` distinct 64 KiB files in one directory, packed by ipfs-car (IPFS_CAR env, else npx)."""
    src = work / "miss"
    src.mkdir()
    for i in range(files):
        (src / f"f{i:03d}.bin").write_bytes(os.urandom(64 * 1024))
    ipfs_car = os.environ.get("IPFS_CAR")
    cmd = [ipfs_car] if ipfs_car else ["npx", "--yes", "ipfs-car@3.1.0"]
    out = subprocess.run([*cmd, "pack", str(src), "--output", str(work / "miss.car")], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ipfs-car failed (set IPFS_CAR to its binary): {out.stderr[-500:]}")
    return work / "miss.car", out.stdout.split()[-1]


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
    node = nginx = gateway = None
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
        car, miss_root = make_miss_car(work, 16 if args.quick else 48)
        repo = str(Path(__file__).resolve().parents[1])
        gateway = subprocess.Popen([sys.executable, "-c", GATEWAY_SCRIPT, str(car), repo], stdout=subprocess.PIPE)
        assert gateway.stdout is not None
        gw_port = int(gateway.stdout.readline())
        config = load_config(home / "config.toml")
        origin = OriginIpfsConfig(gateways=[f"http://127.0.0.1:{gw_port}"])
        (home / "config.toml").write_text(dump_toml(dataclasses.replace(config, origin_ipfs=origin)))
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

        node_host, node_port = http.rsplit(":", 1)
        miss_node, miss_origin = [], []
        for i in range(16 if args.quick else 48):
            path = f"{miss_root}/f{i:03d}.bin"
            miss_origin.append(ttfb_ms("127.0.0.1", gw_port, f"/ipfs/{path}?format=car&dag-scope=entity"))
            miss_node.append(ttfb_ms(node_host, int(node_port), f"/services/0/ipfs/{path}"))

        results: dict[str, list[dict[str, float]]] = {"node_l": [], "nginx_l": [], "node_s": [], "nginx_s": []}
        wrk(node_url["large.bin"], 1, 1)  # warm-up: page cache, tree cache
        wrk(nginx_url["large.bin"], 1, 1)
        for _ in range(rounds):
            results["node_l"].append(wrk(node_url["large.bin"], 1, seconds))
            results["nginx_l"].append(wrk(nginx_url["large.bin"], 1, seconds))
            results["node_s"].append(wrk(node_url["small.bin"], 64, seconds, threads=2))
            results["nginx_s"].append(wrk(nginx_url["small.bin"], 64, seconds, threads=2))
    finally:
        for proc in (node, nginx, gateway):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGQUIT if proc is nginx else signal.SIGTERM)
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
        ("miss_ttfb_ms", round(statistics.median(miss_node), 2), "ms", "origin gateway TTFB",
         round(statistics.median(miss_origin), 2), "value <= anchor + 10"),
    ]  # fmt: skip
    out = []
    for name, value, unit, anchor, anchor_value, goal in figures:
        ratio = round(value / anchor_value, 2) if anchor_value else None
        if "anchor +" in goal:
            assert anchor_value is not None
            ok = value <= anchor_value + float(goal.split("+")[1])
            line = f"{name}  {value} {unit}  ({anchor} {anchor_value} {unit})  ratio {ratio}  goal {goal}"
        elif ratio is not None:
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
    print(f"# large {large // 2**20} MiB, {rounds} rounds x {seconds} s, wrk, medians; misses: {len(miss_node)} files")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
