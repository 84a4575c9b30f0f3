"""A real `lightning run` process: init → run → /health, /metrics, JSON-RPC, `lightning status` → SIGTERM → exit 0."""

from __future__ import annotations

import json
import re
import signal
import socket

from tests.integration.harness import NodeProcess, http_get, rpc, run_cli


def test_run_serves_health_metrics_rpc_and_stops_cleanly(spawn):
    node = spawn("a")
    ports = node.wait_ready()
    assert ports["pid"] == node.proc.pid
    keys = run_cli("keys", "show", "--home", str(node.home))
    assert ports["node_id"] in keys.stdout

    status, _, body = http_get(f"http://{ports['http']}/health")
    assert status == 200 and json.loads(body)["status"] == "ok"

    status, headers, body = http_get(f"http://{ports['rpc']}/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert f'lightning_build_info{{chain_id="1337",node_id="{ports["node_id"]}"' in text
    assert "process_resident_memory_bytes" in text
    assert "lightning_node_ready 1.0" in text

    assert rpc(node.rpc_url, "flk_ping")["result"] == "pong"
    st = rpc(node.rpc_url, "flk_get_node_status")["result"]
    assert st["node_id"] == ports["node_id"] and st["ready"] is True and st["committee"] is True
    assert st["epoch"] == 0 and st["peers"] == 0 and st["uptime_s"] >= 0

    res = run_cli("status", "--home", str(node.home))
    assert res.returncode == 0, res.stderr
    assert ports["node_id"] in res.stdout and re.search(r"^committee: +yes$", res.stdout, re.MULTILINE)

    assert node.stop(signal.SIGTERM) == 0
    assert not (node.home / "run" / "ports.json").exists()
    assert "stopped" in node.log()


def test_sigint_also_stops_with_exit_zero(spawn):
    node = spawn("a")
    node.wait_ready()
    assert node.stop(signal.SIGINT) == 0


def test_admin_shutdown_over_rpc(spawn):
    node = spawn("a")
    node.wait_ready()
    assert rpc(node.rpc_url, "admin_shutdown")["result"] is True
    assert node.proc.wait(30) == 0


def test_second_node_on_same_home_is_refused(spawn):
    first = spawn("a")
    first.wait_ready()
    second = NodeProcess(first.home, "--http-port", "0", "--rpc-port", "0").start()
    rc = second.proc.wait(60)
    assert rc == 1
    lines = [line for line in second.log().splitlines() if line.startswith("lightning: error:")]
    assert lines and "in use by a running node" in lines[0], second.log()
    assert "Traceback" not in second.log()
    assert first.proc.poll() is None


def test_port_in_use_names_the_port_and_the_component(spawn, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        node = spawn("a", "--http-port", str(port))
        rc = node.proc.wait(60)
    assert rc == 1
    err = [line for line in node.log().splitlines() if line.startswith("lightning: error:")]
    assert err and str(port) in err[0] and "'http'" in err[0], node.log()
    assert "Traceback" not in node.log()


def test_bad_config_is_one_line_naming_file_and_key(spawn, tmp_path):
    home = tmp_path / "bad"
    assert run_cli("init", "--dev", "--home", str(home)).returncode == 0
    (home / "config.toml").write_text('[http]\nport = "eighty"\n')
    res = run_cli("run", "--home", str(home))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        f"lightning: error: {home / 'config.toml'}: http.port: expected an integer, got 'eighty'"
    )
    assert "Traceback" not in res.stderr


def test_missing_keystore_is_a_clear_error(tmp_path):
    home = tmp_path / "h"
    assert run_cli("init", "--dev", "--home", str(home)).returncode == 0
    (home / "keystore" / "node.key").unlink()
    res = run_cli("run", "--home", str(home))
    assert res.returncode == 1
    assert "node.key: key file missing" in res.stderr and "Traceback" not in res.stderr


def test_unknown_option_is_a_usage_error(tmp_path):
    res = run_cli("run", "--no-such-flag")
    assert res.returncode == 2
    assert res.stderr.strip() == "lightning: error: No such option: --no-such-flag (see `lightning run --help`)"


def test_status_without_a_node(tmp_path):
    res = run_cli("status", "--home", str(tmp_path / "none"))
    assert res.returncode == 1
    assert "no node is running" in res.stderr


def test_run_dev_creates_its_own_home(tmp_path):
    # `lightning run --dev` with no --home uses ~/.lightning-dev: point HOME at a temp dir to see it.
    env = {"HOME": str(tmp_path), "LIGHTNING_HOME": ""}
    dev_home = tmp_path / ".lightning-dev"
    node = NodeProcess(dev_home, "--dev", "--http-port", "0", "--rpc-port", "0", env=env, pass_home=False)
    try:
        ports = node.start().wait_ready()
        assert (dev_home / "genesis.toml").exists()
        assert not (tmp_path / ".lightning").exists()
        st = rpc(node.rpc_url, "flk_get_node_status")["result"]
        assert st["committee"] is True and st["chain_id"] == 1337
        assert ports["http"].startswith("127.0.0.1:")
        assert node.stop() == 0
    finally:
        node.kill()
