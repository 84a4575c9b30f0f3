"""``lightning dev cluster``: spawn a generated cluster's nodes, prefix and stream their logs, stop them together.

Each node is a real ``lightning run`` child process. Readiness is observed (the node's ``run/ports.json`` names its
pid and ``/health`` answers), never assumed. SIGINT/SIGTERM stop every node with SIGTERM (then SIGKILL after a
grace period) and the supervisor exits 0; a node that dies on its own is reported with its last log lines.
"""

from __future__ import annotations

import collections
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from lightning.devnet.genesis import ClusterLayout, NodeLayout
from lightning.errors import LightningError

__all__ = ["ClusterSupervisor", "NodeDied"]

logger = logging.getLogger(__name__)

TAIL_LINES = 20
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
READY_POLL_S = 0.05


@dataclass
class NodeDied:
    name: str
    returncode: int
    tail: list[str]


@dataclass
class _Running:
    layout: NodeLayout
    process: trio.Process
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    stopping: bool = False


class ClusterSupervisor:
    def __init__(
        self,
        layout: ClusterLayout,
        *,
        echo: Callable[[str], None] = print,
        extra_args: tuple[str, ...] = (),
        python: str = sys.executable,
    ) -> None:
        self.layout = layout
        self.echo = echo
        self.extra_args = extra_args
        self.python = python
        self.running: dict[str, _Running] = {}
        self.died: list[NodeDied] = []
        self._stopping = False

    async def run(
        self, *, task_status: trio.TaskStatus[dict[str, dict[str, object]]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start every node, report endpoints, then supervise until cancelled (then stop them all)."""
        try:
            async with trio.open_nursery() as nursery:
                for node in self.layout.nodes:
                    await nursery.start(self._run_node, node)
                endpoints = {}
                with trio.fail_after(READY_TIMEOUT_S):
                    for node in self.layout.nodes:
                        endpoints[node.name] = await self._wait_ready(node)
                for name, ports in endpoints.items():
                    self.echo(f"{name}  http://{ports['http']}  rpc http://{ports['rpc']}/rpc/v0  pid {ports['pid']}")
                self.echo(f"cluster of {len(endpoints)} nodes ready; Ctrl-C stops it")
                task_status.started(endpoints)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await self.stop_all()

    async def _run_node(
        self, node: NodeLayout, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        # --no-hints: the cluster prints its own next steps once, not one set per node
        cmd = [self.python, "-m", "lightning", "run", "--home", str(node.home), "--no-hints", *self.extra_args]
        process = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        running = _Running(node, process)
        self.running[node.name] = running
        task_status.started()
        assert process.stdout is not None
        buf = b""
        async for chunk in process.stdout:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                running.tail.append(line)
                self.echo(f"[{node.name}] {line}")
        if buf:
            running.tail.append(buf.decode(errors="replace"))
        code = await process.wait()
        if not running.stopping and not self._stopping:
            died = NodeDied(node.name, code, list(running.tail))
            self.died.append(died)
            self.echo(f"!! {node.name} exited with code {code}; last lines:")
            for line in died.tail:
                self.echo(f"!!   {line}")

    async def _wait_ready(self, node: NodeLayout) -> dict[str, object]:
        running = self.running[node.name]
        path = node.home / "run" / "ports.json"
        while True:
            if running.process.returncode is not None:
                raise NodeFailedToStart(node.name, list(running.tail))
            try:
                ports = json.loads(path.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                ports = None
            if ports and ports.get("pid") == running.process.pid and await _healthy(str(ports["rpc"])):
                return dict(ports)
            await trio.sleep(READY_POLL_S)

    async def stop_all(self) -> None:
        self._stopping = True
        for running in self.running.values():
            if running.process.returncode is None:
                running.stopping = True
                running.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_GRACE_S):
            for running in self.running.values():
                await running.process.wait()
        for running in self.running.values():
            if running.process.returncode is None:
                logger.warning("%s did not stop within %.0f s; killing it", running.layout.name, STOP_GRACE_S)
                running.process.kill()
                await running.process.wait()


class NodeFailedToStart(LightningError):
    def __init__(self, name: str, tail: list[str]) -> None:
        super().__init__(f"{name} exited before it was ready; last lines:\n" + "\n".join(tail))
        self.name = name
        self.tail = tail


async def _healthy(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        stream = await trio.open_tcp_stream(host.strip("[]"), int(port))
    except OSError:
        return False
    async with stream:
        await stream.send_all(f"GET /health HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        with trio.move_on_after(5):
            while len(data) < 12:
                chunk = await stream.receive_some(1024)
                if not chunk:
                    break
                data += chunk
        return data.startswith(b"HTTP/1.1 200")
