"""The docker image and the compose cluster.

Without an engine: `docker-compose config` validates docker/docker-compose.yml (part of the default run).
With an engine (marker ``docker``, excluded from the default run; `.ci/run` starts the engine and runs
`pytest -m docker`): the image is built, the four-node cluster comes up on free host ports under its own compose
project, every node turns healthy, all four hold the same block at a height all have reached, an object stored
through node 1 is served by nodes 2 and 4, a transaction sent through node 3 is seen by all four; the project is
torn down with `down -v` whatever happens.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lightning.blockstore import BLOCK_SIZE
from lightning.chain.forward import decode_block_record
from tests.integration.harness import http_get, rpc

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
IMAGE = "lightning-py:dev"
BASE_IMAGE = "python:3.11-slim"
NODES = ("node-1", "node-2", "node-3", "node-4")
HEALTHY_DEADLINE_S = 180.0
CHAIN_DEADLINE_S = 120.0
TO = "45" * 32


def _compose_bin() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def _config(env: dict[str, str] | None = None) -> str:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed (.ci/run installs it)")
    res = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert res.returncode == 0, res.stderr
    return " ".join(res.stdout.split())


def _published(config: str) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of every published port, from v1's short or v2's long syntax."""
    short = re.findall(r"- ([0-9.]+):(\d+):(\d+)/tcp", config)
    long = re.findall(r"host_ip: ([0-9.]+) mode: ingress protocol: tcp published: \"?(\d+)\"? target: (\d+)", config)
    return short + long


def test_compose_file_is_valid_and_describes_four_nodes():
    config = _config()
    for k in range(1, 5):
        assert f"node-{k}:" in config and f"LIGHTNING_HOME: /cluster/node-{k}" in config
    assert "--nodes 4 --committee 4 --compose --out /cluster" in config
    assert "service_completed_successfully" in config
    assert "profiles: - monitoring" in config  # prometheus starts only with --profile monitoring
    # host ports: 422k/424k for node k and 9090, on loopback by default; never the node defaults 4220/4240 on the host
    expected = [("127.0.0.1", f"42{t}{k}", f"42{t}0") for k in range(1, 5) for t in (2, 4)]
    assert sorted(_published(config)) == sorted([*expected, ("127.0.0.1", "9090", "9090")])


def test_compose_port_variables_choose_the_host_ports():
    published = _published(_config({"LIGHTNING_PUBLISH_IP": "0.0.0.0", "LIGHTNING_NODE3_HTTP_PORT": "0"}))
    assert ("0.0.0.0", "0", "4220") in published and ("0.0.0.0", "4223", "4220") not in published
    assert {ip for ip, _, _ in published} == {"0.0.0.0"} and len(published) == 9


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_a_home_volume():
    text = (DOCKER / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "USER lightning" in text and "HEALTHCHECK" in text and "/health" in text
    assert 'VOLUME ["/home/lightning/.lightning"]' in text
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[:4] == ["*", "!pyproject.toml", "!README.md", "!lightning"]  # no .venv or .git in the context


# -- with a real engine -----------------------------------------------------------------------------------------------


def _run(*cmd: str, timeout: float = 600, env: dict[str, str] | None = None, **kw: Any) -> str:
    res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env, **kw)
    assert res.returncode == 0, f"{' '.join(cmd)} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def _engine_or_skip() -> list[str]:
    if shutil.which("docker") is None:
        pytest.skip("no docker client (apt-get install docker.io; .ci/run does)")
    compose = _compose_bin()
    if compose is None:
        pytest.skip("no docker compose (apt-get install docker-compose; .ci/run does)")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        pytest.skip(f"no Docker engine ({reason}); start one with `dockerd &` (.ci/run does)")
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        pulled = subprocess.run(["docker", "pull", "-q", BASE_IMAGE], capture_output=True, timeout=120)
        if pulled.returncode != 0:
            pytest.skip(
                f"base image {BASE_IMAGE} absent and cannot be pulled; build it from Debian packages with "
                "../shared/tools/docker-base.sh (.ci/run does when the script exists)"
            )
    return compose


class Cluster:
    """One compose project from docker/docker-compose.yml, on free loopback host ports."""

    def __init__(self, compose: list[str]) -> None:
        self.project = f"lightning-test-{os.getpid()}"
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": self.project, "LIGHTNING_PUBLISH_IP": "127.0.0.1"}
        for k in range(1, 5):  # 0: the engine picks free host ports (never 4220/4240 on the host)
            self.env[f"LIGHTNING_NODE{k}_HTTP_PORT"] = "0"
            self.env[f"LIGHTNING_NODE{k}_RPC_PORT"] = "0"
        self.compose = [*compose, "-f", str(COMPOSE_FILE)]

    def __call__(self, *args: str, timeout: float = 600, **kw: Any) -> str:
        return _run(*self.compose, *args, timeout=timeout, env=self.env, cwd=REPO, **kw)

    def container(self, service: str) -> str:
        return self("ps", "-q", service).strip()

    def published(self, service: str, port: int) -> str:
        host_port = self("port", service, str(port)).strip()
        assert re.fullmatch(r"127\.0\.0\.1:\d+", host_port), host_port
        assert not host_port.endswith((":4220", ":4240")), host_port
        return host_port

    def logs(self) -> str:
        res = subprocess.run(
            [*self.compose, "logs", "--no-color", "--tail", "60"], capture_output=True, text=True, env=self.env
        )
        return res.stdout[-12000:]

    def down(self) -> None:
        subprocess.run(
            [*self.compose, "down", "-v", "--remove-orphans", "-t", "20"],
            capture_output=True,
            env=self.env,
            timeout=300,
        )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster(_engine_or_skip())
    try:
        yield c
    finally:
        c.down()
        left = _run("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={c.project}")
        assert left.strip() == "", f"containers of {c.project} survived `down -v`: {left}"


def _health(container: str) -> tuple[str, str]:
    out = _run("docker", "inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
               container)  # fmt: skip
    state, _, health = out.strip().partition(" ")
    return state, health


def _result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, list(params))
    assert "result" in answer, answer
    return answer["result"]


def _wait_height(url: str, height: int) -> dict[str, Any]:
    deadline = time.monotonic() + CHAIN_DEADLINE_S
    while True:
        head = _result(url, "flk_get_state_root")
        if head["height"] >= height:
            return dict(head)
        assert time.monotonic() < deadline, f"{url}: height {height} not reached ({head['height']})"
        _result(url, "flk_get_blocks", head["height"] + 1, 1, 2000)  # long poll, not a sleep


@pytest.mark.docker
def test_compose_cluster_builds_comes_up_healthy_agrees_and_serves_content(cluster: Cluster, tmp_path: Path) -> None:
    t0 = time.monotonic()
    _run("docker", "build", "--network", "host", "-f", str(DOCKER / "Dockerfile"), "-t", IMAGE, str(REPO))
    built = time.monotonic()
    try:
        cluster("up", "-d", "--no-build")
        containers = {s: cluster.container(s) for s in NODES}
        assert all(containers.values()), containers
        deadline = time.monotonic() + HEALTHY_DEADLINE_S
        while True:
            health = {s: _health(c) for s, c in containers.items()}
            assert all(state == "running" and h != "unhealthy" for state, h in health.values()), health
            if all(h == "healthy" for _, h in health.values()):
                break
            assert time.monotonic() < deadline, f"not healthy within {HEALTHY_DEADLINE_S} s: {health}"
            time.sleep(0.5)
        healthy = time.monotonic()
        running = set(cluster("ps", "--services", "--filter", "status=running").split())
        assert running == set(NODES), running  # init has finished; prometheus needs --profile monitoring

        http = {s: f"http://{cluster.published(s, 4220)}" for s in NODES}
        rpc_url = {s: f"http://{cluster.published(s, 4240)}/rpc/v0" for s in NODES}
        node_ids = set()
        for s in NODES:
            status, _, body = http_get(f"{http[s]}/health", timeout=10)
            assert status == 200 and json.loads(body)["status"] == "ok", (s, status, body)
            node_status = _result(rpc_url[s], "flk_get_node_status")
            assert node_status["committee"] is True and node_status["chain_id"] == 1337, node_status
            node_ids.add(node_status["node_id"])
        assert len(node_ids) == 4

        # Content stored through node 1 (the CLI inside its container) is served by nodes 2 and 4 from a peer.
        data = random.Random(23).randbytes(4 * BLOCK_SIZE + 4321)
        (tmp_path / "obj").write_bytes(data)
        with open(tmp_path / "obj", "rb") as f:
            out = cluster("exec", "-T", "node-1", "sh", "-c", "cat > /tmp/obj && lightning dev store /tmp/obj", stdin=f)
        root = out.split()[0]
        assert re.fullmatch(r"[0-9a-f]{64}", root), out
        for s in ("node-2", "node-4"):
            status, headers, body = http_get(f"{http[s]}/services/0/blake3/{root}")
            assert status == 200 and body == data, (s, status, body[:200])
            assert headers["etag"] == f'"{root}"'
            metrics = http_get(f"http://{cluster.published(s, 4240)}/metrics")[2]
            fetched = re.search(r'^lightning_fetcher_bytes_total\{source="peer"\} (\S+)$', metrics.decode(), re.M)
            assert fetched and float(fetched.group(1)) == len(data), s

        # A transaction sent through node 3 commits; all four hold the same block at a height all have reached.
        out = cluster("exec", "-T", "node-3", "lightning", "account", "mint", TO, "2", "--key", "/cluster/faucet.key")
        assert "minted 2 FLK" in out, out
        target = max(_result(u, "flk_get_state_root")["height"] for u in rpc_url.values())
        blocks = {}
        for s in NODES:
            _wait_height(rpc_url[s], target)
            record = _result(rpc_url[s], "flk_get_blocks", target, 1, 0)[0]
            block, proof = decode_block_record(bytes.fromhex(record))
            assert proof.kind == "quorum" and len(proof.signatures) >= 3, (s, proof.kind)
            blocks[s] = (block.hash().hex(), block.prev_state_root.hex())
            assert _result(rpc_url[s], "flk_get_flk_balance", TO) == str(2 * 10**18), s
        assert len(set(blocks.values())) == 1, f"the nodes disagree at height {target}: {blocks}"
    except BaseException:
        print(cluster.logs())
        raise
    print(
        f"docker: image built in {built - t0:.1f} s; `up -d` to all four healthy in {healthy - built:.1f} s; "
        f"checks done at {time.monotonic() - t0:.1f} s (height {target})"
    )
