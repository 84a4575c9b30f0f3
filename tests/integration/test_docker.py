"""The docker image and compose cluster are valid (no engine runs here: validated with `docker-compose config`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def test_compose_file_is_valid_and_describes_four_nodes():
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed (.ci/run installs it)")
    res = subprocess.run(
        ["docker-compose", "-f", str(DOCKER / "docker-compose.yml"), "config"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    config = " ".join(res.stdout.split())
    for k in range(1, 5):
        assert f"node-{k}:" in config and f"LIGHTNING_HOME: /cluster/node-{k}" in config
    assert "--nodes 4 --committee 4 --compose --out /cluster" in config
    assert "service_completed_successfully" in config


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_a_home_volume():
    text = (DOCKER / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "USER lightning" in text and "HEALTHCHECK" in text and "/health" in text
    assert 'VOLUME ["/home/lightning/.lightning"]' in text
