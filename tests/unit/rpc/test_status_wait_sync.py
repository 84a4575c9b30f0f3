"""`lightning status --wait-sync`: polls the node until it has caught up, reporting (head, best known) heights to the
progress bar; gives up after --timeout with a line saying how far it got. Against a stand-in JSON-RPC server (a
thread on a port of its own) that answers like a syncing node."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from lightning.cli.status import wait_synced
from lightning.errors import LightningError


class _Node:
    """Executes 40 blocks per poll towards a tip of 100 (or never moves, with ``stuck``)."""

    def __init__(self, stuck: bool = False) -> None:
        self.head, self.stuck = 0, stuck

    def status(self) -> dict[str, Any]:
        if not self.stuck:
            self.head = min(100, self.head + 40)
        return {"syncing": self.head < 100, "head_height": self.head, "best_known_height": 100}


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[HTTPServer] = []

    def start(node: _Node) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                calls = json.loads(self.rfile.read(int(self.headers["content-length"])))
                batch = isinstance(calls, list)
                each = calls if batch else [calls]
                out = [{"jsonrpc": "2.0", "id": c["id"], "result": node.status()} for c in each]
                body = json.dumps(out if batch else out[0]).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/rpc/v0"

    yield start
    for server in servers:
        server.shutdown()


def test_wait_sync_follows_the_heights_until_caught_up(serve: Any) -> None:
    seen: list[tuple[int, int]] = []
    url = serve(_Node())
    final = wait_synced(url, lambda head, best: seen.append((head, best)), timeout_s=60, sleep=lambda s: None)
    assert seen == [(40, 100), (80, 100), (100, 100)]
    assert final["syncing"] is False and final["head_height"] == 100


def test_wait_sync_gives_up_after_the_timeout_saying_how_far_it_got(serve: Any) -> None:
    with pytest.raises(LightningError, match=r"still syncing after 1 s \(block 0 of 100 seen at peers\)"):
        wait_synced(serve(_Node(stuck=True)), lambda head, best: None, timeout_s=1, poll_s=0.05)
