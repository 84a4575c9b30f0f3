"""Transactions reach the committee over the pool only: a spawned cluster in which no node can reach another node's
JSON-RPC. The genesis publishes no RPC port (``rpc_port = 0``) and each node binds its RPC on a loopback address of its
own that nothing (genesis, registry, peers' config) names; its QUIC pool listens on its registry host. A transaction
sent to an edge node's own RPC commits and is visible on every node.

The default run has a one-member committee (the sequencer) and one edge node that follows it over the pool's sync
scope; the slow variant has a committee of four ordering by BFT consensus and one edge node."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import pytest

from lightning.devnet import make_cluster
from tests.integration.harness import NodeProcess, http_get, rpc, run_cli

TO = "46" * 32


def _result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, list(params))
    assert "result" in answer, answer
    return answer["result"]


def _wait_height(node: NodeProcess, height: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        root = _result(node.rpc_url, "flk_get_state_root")
        if root["height"] >= height:
            return
        assert time.monotonic() < deadline, f"height {height} not reached ({root['height']}):\n{node.log()[-4000:]}"
        _result(node.rpc_url, "flk_get_blocks", root["height"] + 1, 1, 2000)  # long poll, not a sleep


def _metric(node: NodeProcess, name: str) -> float:
    _, _, body = http_get(f"http://{node.ports['rpc']}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _run(spawn: Any, tmp_path: Path, *, nodes: int, committee: int, net: str) -> None:
    out = tmp_path / "c"
    quic_hosts = ipaddress.IPv4Network(f"{net}.0.0/24")
    rpc_hosts = ipaddress.IPv4Network(f"{net}.1.0/24")
    layout = make_cluster(out, nodes=nodes, committee=committee, host_base=f"{net}.0.1", rpc_port=0)
    procs = []
    for i, n in enumerate(layout.nodes):
        rpc_host = f"{net}.1.{i + 1}"  # its own RPC address: in no genesis, registry or peer config
        procs.append(spawn(f"c/{n.name}", "--quic-port", "4300", init=False, config={"node": {"rpc_host": rpc_host}}))
    for p in procs:
        p.wait_ready()
    edge = procs[-1]
    assert [n.committee for n in layout.nodes] == [True] * committee + [False] * (nodes - committee)

    # Nothing points at any node's RPC: the registry every node holds publishes no RPC port, every RPC listens where
    # no registry host is, and every pool listens on its registry host.
    registry_hosts = {n.host for n in layout.nodes}
    for p in procs:
        rpc_address = ipaddress.IPv4Address(p.ports["rpc"].rsplit(":", 1)[0])
        assert rpc_address in rpc_hosts and str(rpc_address) not in registry_hosts
        registry = _result(p.rpc_url, "flk_get_node_registry")
        assert len(registry) == nodes
        for entry in registry:
            assert entry["ports"]["rpc"] == 0, entry
            assert ipaddress.IPv4Address(entry["host"]) in quic_hosts
        for other in layout.nodes:
            if other.name != p.home.name:
                assert str(rpc_address) not in (out / other.name / "config.toml").read_text()

    res = run_cli("account", "mint", TO, "3", "--home", str(edge.home), "--key", str(out / "faucet.key"), timeout=120)
    assert res.returncode == 0, res.stderr + edge.log()[-4000:]
    head = _result(edge.rpc_url, "flk_get_state_root")
    for p in procs:
        _wait_height(p, head["height"])
        assert _result(p.rpc_url, "flk_get_flk_balance", TO) == str(3 * 10**18), p.log()[-4000:]
    # It went over the pool: every member counted it among the transactions forwarded to it over TXS.
    for p in procs[:committee]:
        assert _metric(p, 'lightning_txs_received_total{result="accepted"}') >= 1


def test_one_member_committee_gets_an_edge_nodes_transaction_over_the_pool(spawn: Any, tmp_path: Path) -> None:
    _run(spawn, tmp_path, nodes=2, committee=1, net="127.49")


@pytest.mark.slow
def test_bft_committee_gets_an_edge_nodes_transaction_over_the_pool(spawn: Any, tmp_path: Path) -> None:
    _run(spawn, tmp_path, nodes=5, committee=4, net="127.50")
