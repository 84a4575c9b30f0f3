"""``lightning opt in`` refuses until the home's node reports it has caught up (asked over the node's own RPC, here a
JSON-RPC server in a thread answering ``flk_get_node_status`` as a node would); ``--force`` overrides."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lightning.bootstrap import init_home
from lightning.cli.main import main
from lightning.home import Home


class NodeRpc:
    """Answers ``flk_get_node_status`` with ``status``; any other method with a JSON-RPC error (and records it)."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.calls: list[str] = []
        rpc = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["content-length"])))
                rpc.calls.append(request["method"])
                if request["method"] == "flk_get_node_status":
                    answer = {"jsonrpc": "2.0", "id": request["id"], "result": rpc.status}
                else:
                    answer = {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "nope"}}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def node_rpc() -> Iterator[NodeRpc]:
    rpc = NodeRpc()
    thread = threading.Thread(target=rpc.server.serve_forever, daemon=True)
    thread.start()
    yield rpc
    rpc.server.shutdown()
    rpc.server.server_close()


@pytest.fixture
def home(tmp_path: Path, node_rpc: NodeRpc) -> Home:
    h = Home(tmp_path / "h")
    init_home(h, dev=False, force=False)
    h.write_ports({"rpc": node_rpc.address, "pid": 1, "node_id": str(h.load_keys().node_id)})
    return h


def opt_in(capsys: pytest.CaptureFixture[str], home: Home, *extra: str) -> tuple[int, str]:
    try:
        main(["opt", "in", "--home", str(home.root), *extra])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def status(home: Home, *, syncing: bool, head: int, best: int, node_id: str | None = None) -> dict[str, Any]:
    return {
        "chain_id": 7,
        "node_id": node_id or str(home.load_keys().node_id),
        "syncing": syncing,
        "head_height": head,
        "best_known_height": best,
    }


def test_opt_in_waits_until_the_node_has_caught_up(
    home: Home, node_rpc: NodeRpc, capsys: pytest.CaptureFixture[str]
) -> None:
    node_rpc.status = status(home, syncing=True, head=88, best=100)
    code, err = opt_in(capsys, home)
    assert code == 1 and "node is 12 blocks behind (at block 88; peers have shown block 100)" in err
    assert "wait until it has caught up" in err and "--force" in err
    assert node_rpc.calls == ["flk_get_node_status"]  # nothing was signed or sent

    node_rpc.status = status(home, syncing=True, head=7, best=7)  # no peer has answered yet
    code, err = opt_in(capsys, home)
    assert code == 1 and "node is still catching up with the chain (at block 7)" in err

    # another node's RPC cannot vouch for this one
    node_rpc.status = status(home, syncing=False, head=100, best=100, node_id="ab" * 32)
    code, err = opt_in(capsys, home)
    assert code == 1 and f"answers as node {'ab' * 32}, not this home's node" in err

    # caught up, or --force: the command goes on to the transaction (which this stand-in refuses)
    for extra, state in (((), status(home, syncing=False, head=100, best=101)), (("--force",), {"chain_id": 7})):
        node_rpc.status, node_rpc.calls = state, []
        code, err = opt_in(capsys, home, *extra)
        assert code == 1 and "caught up" not in err
        assert node_rpc.calls[-1] == "flk_get_account_info"  # the transaction's nonce
