"""Broadcast between real nodes of one devnet over QUIC: a debug message reaches every node, a direct message only
its target, and a restarted node keeps its dedup cache (the digests it saw are still known)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lightning.devnet import ClusterLayout
from tests.integration.harness import POLL_S, NodeProcess, http_get, rpc, run_cli


def _result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, list(params))
    assert "result" in answer, answer
    return answer["result"]


def _wait_debug(node: NodeProcess, digest: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for item in _result(node.rpc_url, "admin_broadcast_debug_recent"):
            if item["digest"] == digest:
                return dict(item)
        assert time.monotonic() < deadline, f"{digest[:16]} never arrived:\n{node.log()}"
        time.sleep(POLL_S * 5)


def test_debug_messages_over_quic(tmp_path: Path) -> None:
    out = tmp_path / "net"
    res = run_cli("dev", "genesis", "--nodes", "3", "--committee", "1", "--out", str(out), "--host-base", "127.38.0.1")
    assert res.returncode == 0, res.stderr
    layout = ClusterLayout.load(out)
    nodes = [NodeProcess(n.home).start() for n in layout.nodes]
    try:
        for n in nodes:
            n.wait_ready()
        a, b, c = nodes
        ids = [n.node_id for n in layout.nodes]

        sent = _result(a.rpc_url, "admin_broadcast_debug", "hello from a")["digest"]
        for node in (b, c):
            got = _wait_debug(node, sent)
            assert got["text"] == "hello from a" and got["origin"] == ids[0] and got["hops"] >= 1
        assert all(item["digest"] != sent for item in _result(a.rpc_url, "admin_broadcast_debug_recent"))

        direct = _result(a.rpc_url, "admin_broadcast_debug", "only c", ids[2])["digest"]
        assert _wait_debug(c, direct)["to"] == ids[2]
        later = _result(c.rpc_url, "admin_broadcast_debug", "after the direct one")["digest"]
        _wait_debug(b, later)  # b got a later message, so the direct one would have reached it by now
        assert all(item["digest"] != direct for item in _result(b.rpc_url, "admin_broadcast_debug_recent"))

        stats = _result(b.rpc_url, "flk_broadcast_stats")
        assert stats["received"]["debug"] == 2 and stats["invalid"] == {} and stats["seen"] >= 2
        assert stats["topology"]["nodes"] == 3 and set(stats["topology"]["peer_ids"]) == {ids[0], ids[2]}
        _, _, metrics = http_get(f"http://{b.ports['rpc']}/metrics")
        assert b'lightning_broadcast_messages_total{direction="in",topic="debug"} 2.0' in metrics
        assert b"lightning_broadcast_propagation_seconds_bucket" in metrics

        # Restarted, b still knows what it saw: the dedup cache came back from LMDB.
        assert b.stop() == 0
        b.start().wait_ready()
        stats = _result(b.rpc_url, "flk_broadcast_stats")
        assert stats["seen"] >= 2 and stats["received"] == {}
        again = _result(a.rpc_url, "admin_broadcast_debug", "after the restart")["digest"]
        assert _wait_debug(b, again)["text"] == "after the restart"
        assert [item["digest"] for item in _result(b.rpc_url, "admin_broadcast_debug_recent")] == [again]
    finally:
        for n in nodes:
            n.kill()
