"""What the spawned-cluster benchmarks share: one JSON-RPC call, and starting/stopping `lightning run` processes.

Imported by ``bench/forward.py``, ``bench/consensus.py`` and ``bench/cluster.py`` (each puts the repository root on
``sys.path`` first, so this is ``bench.spawn``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["rpc", "start_nodes", "stop_nodes"]


def rpc(url: str, method: str, *params: Any, timeout: float = 30.0) -> Any:
    """One JSON-RPC call; raises RuntimeError with the node's error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def start_nodes(homes: list[Path], *, ready_s: float = 90.0) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """Start ``lightning run`` on each home (logs next to it, ``<home>.log``) and wait until each wrote its
    ``run/ports.json``; return the processes and their RPC URLs. If one fails, the others are stopped."""
    procs = []
    for home in homes:
        with open(home.parent / f"{home.name}.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "lightning", "run", "--home", str(home)], stdout=log, stderr=log
                )
            )
    urls = []
    deadline = time.monotonic() + ready_s
    try:
        for home, proc in zip(homes, procs, strict=True):
            while True:
                assert proc.poll() is None, (home.parent / f"{home.name}.log").read_text()[-3000:]
                try:
                    ports = json.loads((home / "run" / "ports.json").read_text())
                    if ports.get("pid") == proc.pid:
                        urls.append(f"http://{ports['rpc']}/rpc/v0")
                        break
                except (FileNotFoundError, json.JSONDecodeError):
                    pass
                assert time.monotonic() < deadline, "cluster not ready"
                time.sleep(0.05)
    except BaseException:
        stop_nodes(procs)  # one node failed to start: do not leave the others running
        raise
    return procs, urls


def stop_nodes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each, then wait (SIGKILL after 30 s)."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
