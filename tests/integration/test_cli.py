"""CLI commands other than `run`, as a user invokes them."""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path

from tests.integration.harness import run_cli


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
    assert res.returncode == 1 and "no such file" in res.stderr


def test_python_dash_m_and_version():
    res = run_cli("version")
    assert res.returncode == 0 and res.stdout.startswith("lightning-py ")


def test_global_options_anywhere(tmp_path):
    home = tmp_path / "h"
    res = run_cli("init", "--dev", "--home", str(home), "-q", "--log-format", "json")
    assert res.returncode == 0, res.stderr
    res = run_cli("--log-format", "xml", "version")
    assert res.returncode == 2 and "xml" in res.stderr
