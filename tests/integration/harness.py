"""Spawning real ``lightning`` processes with temporary homes, for integration tests.

Readiness is observed, never assumed: a node is ready once its ``run/ports.json`` names its own pid and ``/health``
answers 200. Every wait has a deadline and reports the node's log when it expires.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 60.0
POLL_S = 0.02


def lightning_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lightning", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lightning_cmd(*args), capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def http_get(
    url: str, headers: dict[str, str] | None = None, *, method: str = "GET", timeout: float = 60.0
) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body) — HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def rpc(url: str, method: str, params: Any = None) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class NodeProcess:
    def __init__(self, home: Path, *extra: str, env: dict[str, str] | None = None, pass_home: bool = True) -> None:
        """``pass_home=False`` runs without ``--home`` (the process must find ``home`` by itself, e.g. ``--dev``)."""
        self.home = home
        self.pass_home = pass_home
        self.extra = extra
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home.parent / f"{home.name}.log"
        self.ports: dict[str, Any] = {}

    def start(self) -> NodeProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            lightning_cmd("run", *(["--home", str(self.home)] if self.pass_home else []), *self.extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(self.env or {})},
        )
        log.close()
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        ports_path = self.home / "run" / "ports.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node exited with {self.proc.returncode} before ready:\n{self.log()}")
            try:
                ports = json.loads(ports_path.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                ports = None
            if ports and ports.get("pid") == self.proc.pid:
                try:
                    status, _, _ = http_get(f"http://{ports['rpc']}/health", timeout=2)
                except OSError:
                    status = 0
                if status == 200:
                    self.ports = ports
                    return ports
            time.sleep(POLL_S)
        raise AssertionError(f"node not ready within {timeout} s:\n{self.log()}")

    @property
    def rpc_url(self) -> str:
        return f"http://{self.ports['rpc']}/rpc/v0"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"node did not stop within {timeout} s after {sig}:\n{self.log()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
