from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import NodeProcess, run_cli


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    """``spawn(name, *run_args, init=True)`` → a started NodeProcess with a fresh dev home; all are killed after."""
    nodes: list[NodeProcess] = []

    def _spawn(name: str = "node", *args: str, init: bool = True) -> NodeProcess:
        home = tmp_path / name
        if init:
            res = run_cli("init", "--dev", "--home", str(home))
            assert res.returncode == 0, res.stderr
        node = NodeProcess(home, "--http-port", "0", "--rpc-port", "0", *args)
        nodes.append(node)
        return node.start()

    yield _spawn
    for node in nodes:
        node.kill()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
