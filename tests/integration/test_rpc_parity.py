"""A spawned `lightning run --dev` node on its own address: `rpc.discover`, the Lightning-named methods, invalid-params
messages over HTTP, and `lightning status` (text and --json) after the node served content."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

from tests.integration.harness import http_get, rpc, run_cli

HOST = "127.23.0.1"  # this file's own address (tests never bind the default ports on 127.0.0.1)
WAIT_S = 30.0


def test_rpc_parity_and_status(spawn: Any, tmp_path: Path) -> None:
    node = spawn("p", "--listen-host", HOST, "--rpc-host", HOST)
    ports = node.wait_ready()
    assert ports["rpc"].startswith(f"{HOST}:")
    url, node_id = node.rpc_url, ports["node_id"]

    def result(method: str, params: Any = None) -> Any:
        answer = rpc(url, method, params)
        assert "result" in answer, answer
        return answer["result"]

    # the OpenRPC document lists every method, documented
    doc = result("rpc.discover")
    names = {m["name"] for m in doc["methods"]}
    assert {"rpc.discover", "flk_get_total_supply", "net_peerCount", "flk_get_node_status"} <= names
    assert all(m["summary"] and m["result"]["description"] for m in doc["methods"])
    assert all(p["description"] for m in doc["methods"] for p in m["params"])
    assert {m["name"] for m in doc["methods"] if m.get("tags")} == {n for n in names if n.startswith("admin_")}

    # Lightning's names with this node's data
    assert result("net_peerCount") == "0x0" and result("net_listening") is True
    assert result("net_version") == "1337" and result("flk_get_chain_id") == 1337
    keys = result("flk_get_public_keys")
    assert keys["node_public_key"] == node_id and len(keys["consensus_public_key"]) == 64
    assert result("flk_get_staking_amount") == result("flk_get_protocol_params", ["MinimumNodeStake"])
    assert result("flk_node_has_sufficient_stake", [node_id]) is True
    assert int(result("flk_get_total_supply", [None])) > 0
    assert [i for i, _ in result("flk_get_genesis_committee")] == [0]
    assert "lightning_node_ready 1.0" in result("flk_metrics")

    # invalid params name the parameter, never a Python signature
    err = rpc(url, "admin_broadcast_debug", [])["error"]
    assert err["code"] == -32602 and err["data"] == {"param": "text"}
    assert err["message"] == "invalid params: missing param 'text' (admin_broadcast_debug takes text, to?)"
    err = rpc(url, "flk_get_staked", [node_id, 4])["error"]
    assert err["data"] == {"param": "epoch"} and "current state only (epoch 0)" in err["message"]

    # serve an object to a client, then ask `lightning status`
    data = random.Random(23).randbytes(300_000)
    src = tmp_path / "obj.bin"
    src.write_bytes(data)
    stored = run_cli("dev", "store", str(src), "--home", str(node.home))
    assert stored.returncode == 0, stored.stderr
    root = stored.stdout.split()[0]
    status, _, body = http_get(f"http://{ports['http']}/services/0/blake3/{root}")
    assert status == 200 and body == data
    deadline = time.monotonic() + WAIT_S  # the counter moves once the response has ended on the node's side
    while result("flk_get_node_status")["served_bytes"] < len(data):
        assert time.monotonic() < deadline, "served_bytes never counted the response"
        time.sleep(0.05)

    res = run_cli("status", "--home", str(node.home), "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["node_id"] == node_id and report["served_bytes"] >= len(data)
    assert report["committee"] is True and report["syncing"] is False and report["registered"] is True
    assert report["head_height"] >= 0 and report["epoch"] == 0 and report["epoch_end_ms"] > report["epoch_start_ms"]
    assert report["stake"] == str(1000 * 10**18) and report["reputation"] is None

    res = run_cli("status", "--home", str(node.home))
    assert res.returncode == 0, res.stderr
    lines = dict(re.findall(r"^([a-z ]+): +(.*)$", res.stdout, re.MULTILINE))
    assert lines["node id"] == node_id and lines["committee"] == "yes" and lines["peers"] == "0"
    assert re.fullmatch(r"\d+ \(caught up\)", lines["height"]), lines["height"]
    assert re.fullmatch(r"0, (ends in \d.*|end due \(waits for the committee's votes\))", lines["epoch"])
    assert lines["stake"] == "1000 FLK (participation: true)" and lines["reputation"] == "not measured yet"
    assert lines["served"].endswith(" to clients since start") and "KiB" in lines["served"]
