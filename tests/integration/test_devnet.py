"""`lightning dev genesis` and `lightning dev cluster` as a developer runs them."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from lightning.config import load_config
from lightning.devnet import ClusterLayout
from lightning.genesis import load_genesis
from lightning.home import Home
from tests.integration.harness import http_get, lightning_cmd, run_cli


def test_dev_genesis_writes_valid_homes(tmp_path):
    out = tmp_path / "c"
    res = run_cli("dev", "genesis", "--nodes", "5", "--committee", "4", "--out", str(out), "--host-base", "127.31.0.1")
    assert res.returncode == 0, res.stderr
    layout = ClusterLayout.load(out)
    assert [n.host for n in layout.nodes] == [f"127.31.0.{k}" for k in range(1, 6)]
    assert [n.committee for n in layout.nodes] == [True, True, True, True, False]
    genesis = [load_genesis(n.home / "genesis.toml") for n in layout.nodes]
    assert len({g.digest() for g in genesis}) == 1
    g = genesis[0]
    assert g.faucet is not None and g.faucet.hex == layout.faucet and g.balances[layout.faucet] > 0
    assert [n.node_id for n in g.nodes] == [n.node_id for n in layout.nodes]
    for n in layout.nodes:
        cfg = load_config(n.home / "config.toml")
        assert cfg.node.listen_host == cfg.node.rpc_host == n.host
        assert str(Home(n.home).load_keys().node_id) == n.node_id
        assert n.node_id in res.stdout
    assert stat.S_IMODE((out / "faucet.key").stat().st_mode) == 0o600


def test_dev_genesis_compose_hosts(tmp_path):
    out = tmp_path / "c"
    assert run_cli("dev", "genesis", "--nodes", "2", "--committee", "1", "--out", str(out), "--compose").returncode == 0
    g = load_genesis(out / "node-1" / "genesis.toml")
    assert [n.host for n in g.nodes] == ["node-1", "node-2"]
    assert load_config(out / "node-2" / "config.toml").node.listen_host == "0.0.0.0"


def test_dev_genesis_bad_parameters(tmp_path):
    res = run_cli("dev", "genesis", "--nodes", "2", "--committee", "3", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "--committee: a committee of 3 needs at least 3 nodes" in res.stderr  # usage
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    res = run_cli("dev", "genesis", "--out", str(tmp_path / "full"))
    assert res.returncode == 1 and "not empty" in res.stderr
    res = run_cli("dev", "genesis", "--host-base", "nope", "--out", str(tmp_path / "y"))
    assert res.returncode == 2 and "--host-base" in res.stderr


def _wait_for_line(proc_log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = proc_log.read_text(errors="replace")
        if text in log:
            return log
        assert proc.poll() is None, f"cluster exited early:\n{log}"
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not seen within {timeout} s:\n{proc_log.read_text(errors='replace')}")


def test_cluster_becomes_healthy_reports_a_dead_node_and_stops_cleanly(tmp_path):
    home = tmp_path / "cluster"
    log_path = tmp_path / "cluster.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            lightning_cmd("dev", "cluster", "--nodes", "4", "--home", str(home), "--host-base", "127.32.0.1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_line(log_path, "cluster of 4 nodes ready", proc)
        layout = ClusterLayout.load(home)
        pids = []
        for n in layout.nodes:
            ports = json.loads((n.home / "run" / "ports.json").read_text())
            pids.append(ports["pid"])
            status, _, body = http_get(f"http://{ports['http']}/health")
            assert status == 200 and json.loads(body)["node_id"] == n.node_id
            assert ports["http"] == f"{n.host}:4220"
        os.kill(pids[1], signal.SIGKILL)
        log = _wait_for_line(log_path, "!! node-2 exited with code -9; last lines:", proc)
        assert "!!   " in log and "ready in" in log
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        log = log_path.read_text(errors="replace")
        assert "cluster stopped" in log
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # --keep reuses the same homes (same node ids); --fresh regenerates the cluster
    ids = [n.node_id for n in layout.nodes]
    for keep, same in ((True, True), (False, False)):
        args = ["dev", "cluster", "--nodes", "4", "--home", str(home), "--host-base", "127.32.0.1"]
        args += ["--keep"] if keep else ["--fresh"]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(lightning_cmd(*args), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_line(log_path, "cluster of 4 nodes ready", proc)
            assert ([n.node_id for n in ClusterLayout.load(home).nodes] == ids) is same
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
