"""Two real nodes of one devnet: a transaction sent to the non-ordering node is forwarded to the sequencer, and the
follower executes the sequencer's blocks to the same state root."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lightning.devnet import ClusterLayout
from tests.integration.harness import NodeProcess, rpc, run_cli

TO = "44" * 32


def _result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, list(params))
    assert "result" in answer, answer
    return answer["result"]


def _wait_height(url: str, height: int, node: NodeProcess, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        root = _result(url, "flk_get_state_root")
        if root["height"] >= height:
            return dict(root)
        assert time.monotonic() < deadline, f"height {height} not reached:\n{node.log()}"
        # long-poll on the node itself rather than sleeping
        _result(url, "flk_get_blocks", root["height"] + 1, 1, 2000)


def test_forwarding_and_following(tmp_path: Path) -> None:
    out = tmp_path / "net"
    res = run_cli("dev", "genesis", "--nodes", "2", "--committee", "1", "--out", str(out), "--host-base", "127.36.0.1")
    assert res.returncode == 0, res.stderr
    layout = ClusterLayout.load(out)
    nodes = [NodeProcess(n.home).start() for n in layout.nodes]
    try:
        for n in nodes:
            n.wait_ready()
        sequencer, follower = nodes
        leader = _result(follower.rpc_url, "flk_get_committee_members")[0]
        assert leader == layout.nodes[0].node_id

        # the follower's own account sends through the follower; the CLI waits for the receipt there
        res = run_cli("account", "transfer", TO, "3", "--home", str(follower.home), timeout=120)
        assert res.returncode == 0, res.stderr + follower.log()
        res = run_cli("account", "mint", TO, "2", "--home", str(follower.home), "--key", str(out / "faucet.key"))
        assert res.returncode == 0, res.stderr
        assert _result(follower.rpc_url, "flk_get_flk_balance", TO) == str(5 * 10**18)

        head = _result(follower.rpc_url, "flk_get_state_root")
        assert _wait_height(sequencer.rpc_url, head["height"], sequencer) == head
        assert _result(sequencer.rpc_url, "flk_get_flk_balance", TO) == str(5 * 10**18)
        assert "forward attempt" not in follower.log()  # no forward had to be retried
    finally:
        for n in nodes:
            n.kill()
