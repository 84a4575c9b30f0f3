"""CLI commands other than `run`, as a user invokes them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

from tests.integration.harness import NodeProcess, http_get, lightning_cmd, run_cli


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "lightning"
    assert script.exists() or shutil.which("lightning")


def test_init_and_keys(tmp_path):
    home = tmp_path / "h"
    res = run_cli("init", "--home", str(home))
    assert res.returncode == 0, res.stderr
    node_id = next(line.split()[-1] for line in res.stdout.splitlines() if line.startswith("node id:"))
    assert len(node_id) == 64
    for name in ("node", "consensus", "account"):
        assert stat.S_IMODE((home / "keystore" / f"{name}.key").stat().st_mode) == 0o600
    show = run_cli("keys", "show", "--home", str(home))
    assert node_id in show.stdout

    again = run_cli("init", "--home", str(home))
    assert again.returncode == 1 and "--force" in again.stderr

    regen = run_cli("keys", "generate", "--home", str(home))
    assert regen.returncode == 1 and "--force" in regen.stderr
    regen = run_cli("keys", "generate", "--force", "--home", str(home))
    assert regen.returncode == 0 and node_id not in regen.stdout


def test_home_from_environment(tmp_path):
    home = tmp_path / "env-home"
    res = run_cli("init", env={"LIGHTNING_HOME": str(home)})
    assert res.returncode == 0, res.stderr
    assert (home / "config.toml").exists()


def test_print_config(tmp_path):
    res = run_cli("print-config", "--default")
    assert res.returncode == 0 and "[http]" in res.stdout and "port = 4220" in res.stdout
    home = tmp_path / "h"
    run_cli("init", "--dev", "--home", str(home))
    res = run_cli("print-config", "--home", str(home))
    assert 'listen_host = "127.0.0.1"' in res.stdout
    res = run_cli("print-config", "--home", str(tmp_path / "none"))
    assert res.returncode == 1 and "not a node home (no config.toml)" in res.stderr


def test_python_dash_m_and_version():
    res = run_cli("version")
    assert res.returncode == 0 and res.stdout.startswith("lightning-py ")


def test_global_options_anywhere(tmp_path):
    home = tmp_path / "h"
    res = run_cli("init", "--dev", "--home", str(home), "-q", "--log-format", "json")
    assert res.returncode == 0, res.stderr
    res = run_cli("--log-format", "xml", "version")
    assert res.returncode == 2 and "xml" in res.stderr


# -- the newcomer path: `lightning run --dev` and what follows (issue 23) ------------------------------------------
def _free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def test_dev_node_prints_next_steps_and_the_commands_find_its_home(tmp_path):
    env = {"HOME": str(tmp_path), "LIGHTNING_HOME": ""}
    dev_home = tmp_path / ".lightning-dev"
    node = NodeProcess(
        dev_home, "--dev", "--http-port", "0", "--rpc-port", "0", "--quic-port", "0", env=env, pass_home=False
    )
    node.start()
    try:
        ports = node.wait_ready()
        log = node.log()
        assert log.count("next, in another terminal:") == 1, log
        assert f"curl http://{ports['http']}/health" in log
        assert "lightning dev store FILE --dev" in log
        assert f"http://{ports['http']}/services/0/blake3/<root>" in log

        # the README's round trip: store into the dev node, fetch it back over HTTP
        data = os.urandom(300_000)
        (tmp_path / "hello.bin").write_bytes(data)
        stored = run_cli("dev", "store", str(tmp_path / "hello.bin"), "--dev", env=env)
        assert stored.returncode == 0, stored.stderr
        root = stored.stdout.split()[0]
        status, _, body = http_get(f"http://{ports['http']}/services/0/blake3/{root}")
        assert status == 200 and body == data

        # without --dev, the commands say where the home is
        res = run_cli("account", "balance", env=env)
        assert res.returncode == 1 and "the dev home ~/.lightning-dev does: add --dev" in res.stderr, res.stderr
        res = run_cli("account", "balance", "--dev", env=env)
        assert res.returncode == 0 and "balance: 1000000 FLK" in res.stdout, res.stderr
        res = run_cli("keys", "show", "--dev", env=env)
        assert res.returncode == 0 and ports["node_id"] in res.stdout
        assert "lightning status --dev" in log  # the ready message names the command that works
        res = run_cli("status", "--dev", "--wait-sync", "--json", env=env)
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout)
        assert report["node_id"] == ports["node_id"] and report["syncing"] is False and report["committee"] is True
        assert node.stop() == 0
    finally:
        node.kill()


def test_dev_node_with_its_quic_port_taken_says_which_option_and_leaves_no_home(tmp_path):
    env = {"HOME": str(tmp_path), "LIGHTNING_HOME": ""}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        res = run_cli("run", "--dev", "--http-port", "0", "--rpc-port", "0", "--quic-port", str(port), env=env)
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"lightning: error: component 'net' failed: quic: cannot bind 127.0.0.1:{port}/udp: ")
    assert "already in use" in last and "--quic-port N (0 = any free port)" in last
    assert last.endswith(
        f"taken here: {port}/udp; to run beside it: `lightning run --dev --quic-port 0` (0 = any free port)"
    )
    assert "Traceback" not in res.stderr
    assert not (tmp_path / ".lightning-dev").exists()  # created for the run, removed when it could not start


def _run_group(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``run_cli`` for a command that spawns nodes: on timeout the whole process group is killed, nodes included."""
    proc = subprocess.Popen(lightning_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{args} still running after {timeout} s:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_cluster_with_a_port_taken_suggests_host_base(tmp_path):
    host = "127.34.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind((host, 0))
        quic = busy.getsockname()[1]
        http, rpc = _free_port(host), _free_port(host)
        args = ["--nodes", "1", "--home", str(tmp_path / "c"), "--host-base", host]
        res = _run_group("dev", "cluster", *args, "--quic-port", str(quic), "--http-port", str(http), "--rpc-port",
                         str(rpc))  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("lightning: error: node-1 exited before it was ready: ")
    assert f"quic: cannot bind {host}:{quic}/udp: the port is already in use" in last
    assert "--host-base 127.0.1.1" in last and "--quic-port" in last and "--fresh" in last
    assert "Traceback" not in res.stderr

    # the cluster it generated is not deleted silently by the next run
    res = run_cli("dev", "cluster", "--nodes", "1", "--home", str(tmp_path / "c"))
    assert res.returncode == 1 and "pass --keep to run it again, or --fresh" in res.stderr
    assert (tmp_path / "c" / "cluster.json").exists()
