"""Scale on one machine (issue 10, item 4): a 16-node cluster with a committee of 4 becomes ready, commits a
transaction sent to a non-committee node, and serves content stored on one node from every other node.
The figures (ready time, RSS, commit latency, TTFB under load) come from ``python bench/cluster.py``."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from lightning.blockstore import BLOCK_SIZE
from lightning.chain.forward import decode_block_record
from lightning.devnet import make_cluster
from tests.integration.harness import http_get, rpc, run_cli

PORTS = ("--quic-port", "4300", "--rpc-port", "4240", "--http-port", "4220")
TO = "5a" * 32


def _result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, list(params))
    assert "result" in answer, answer
    return answer["result"]


def test_sixteen_nodes_commit_and_serve(spawn, tmp_path: Path) -> None:
    out = tmp_path / "c"
    layout = make_cluster(out, nodes=16, committee=4, host_base="127.93.0.1")
    nodes = [spawn(f"c/node-{k}", *PORTS, init=False) for k in range(1, 17)]
    for node in nodes:
        node.wait_ready()
    assert sum(n.committee for n in layout.nodes) == 4

    # a transaction sent to the last (non-committee) node commits, and every node sees it
    edge = nodes[-1]
    res = run_cli("account", "mint", TO, "7", "--home", str(edge.home), "--key", str(out / "faucet.key"), timeout=120)
    assert res.returncode == 0, res.stderr + edge.log()[-3000:]
    height = _result(edge.rpc_url, "flk_get_state_root")["height"]
    roots = set()
    for node in nodes:
        deadline = time.monotonic() + 90
        while _result(node.rpc_url, "flk_get_state_root")["height"] < height:
            assert time.monotonic() < deadline, f"{node.home.name} never reached height {height}"
            _result(node.rpc_url, "flk_get_blocks", height, 1, 30_000)  # long poll, not a sleep
        assert _result(node.rpc_url, "flk_get_flk_balance", TO) == str(7 * 10**18)
        record = _result(node.rpc_url, "flk_get_blocks", height, 1, 0)
        block, _proof = decode_block_record(bytes.fromhex(record[0]))  # proofs may carry different 2f+1 votes
        roots.add(block.hash())
    assert len(roots) == 1, "all 16 nodes hold the same block at that height"

    # content stored on node 1 is served by every other node (fetched from peers, verified)
    data = random.Random(16).randbytes(2 * BLOCK_SIZE + 99)
    (tmp_path / "obj").write_bytes(data)
    root = run_cli("dev", "store", str(tmp_path / "obj"), "--home", str(nodes[0].home)).stdout.split()[0]
    for node in nodes[1:]:
        status, _, body = http_get(f"http://{node.ports['http']}/services/0/blake3/{root}")
        assert status == 200 and body == data, node.home.name
