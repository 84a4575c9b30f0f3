from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lightning.config import dump_toml, load_config, parse_section
from tests.integration.harness import NodeProcess, run_cli


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    """``spawn(name, *run_args, init=True, config=None)`` → a started NodeProcess with a fresh dev home.

    Every node is killed after the test."""
    nodes: list[NodeProcess] = []

    def _spawn(
        name: str = "node", *args: str, init: bool = True, config: dict[str, dict[str, Any]] | None = None
    ) -> NodeProcess:
        """``config``: {table: {key: value}} merged into the home's config.toml before the node starts."""
        home = tmp_path / name
        if init:
            res = run_cli("init", "--dev", "--home", str(home))
            assert res.returncode == 0, res.stderr
        if config:
            path = home / "config.toml"
            current = load_config(path)
            for table, values in config.items():
                section = getattr(current, table)
                merged = parse_section(type(section), {**dataclasses.asdict(section), **values}, table)
                current = dataclasses.replace(current, **{table: merged})
            path.write_text(dump_toml(current))
        node = NodeProcess(home, "--http-port", "0", "--rpc-port", "0", "--quic-port", "0", *args)
        nodes.append(node)
        return node.start()

    yield _spawn
    for node in nodes:
        node.kill()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
