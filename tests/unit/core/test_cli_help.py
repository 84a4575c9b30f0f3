"""``--help`` of every command, as a new user reads it: values with readable metavars (no ``{files}...``,
``<list[str]>``, ``<int range>``), repeatable options marked, the global options listed, ``--dev`` beside every
``--home`` of a node home; and the tables and hints the CLI prints (bench, ready, amounts)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lightning.cli.common import flk_in_text
from lightning.cli.dev import DEFAULT_COMMITTEE, _committee, cluster_ready_lines
from lightning.cli.main import bench_table, command, main, ready_lines
from lightning.devnet import make_cluster


def _paths(cmd: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = [(prefix, cmd)]
    for name, sub in getattr(cmd, "commands", {}).items():
        out += _paths(sub, (*prefix, name))
    return out


COMMANDS = _paths(command())
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not getattr(cmd, "commands", None)]


def help_text(path: tuple[str, ...]) -> str:
    with CliRunner().isolation(env={"COLUMNS": "120"}) as (out, _err, _mixed):
        try:
            main([*path, "--help"])
        except SystemExit as exc:
            assert not exc.code
        sys.stdout.flush()
        return out.getvalue().decode()


NOISE = re.compile(r"\{\w+\}|<list\[|<int|<float|<str>|<path>|<bool>| range>|<Path>")


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) or "lightning" for p, _ in COMMANDS])
def test_help_has_readable_values(path: tuple[str, ...], cmd: Any) -> None:
    text = help_text(path)
    assert text.startswith(f"Usage: lightning {' '.join(path)}".rstrip()), text
    assert not NOISE.search(text), NOISE.search(text)
    if path:  # every subcommand lists the global options it accepts anywhere on the line
        flat = " ".join(text.split())
        assert "-v/--verbose" in flat and "-q/--quiet" in flat and "--log-format text|json" in flat, text


def test_usage_lines_name_arguments_plainly() -> None:
    assert help_text(("dev", "store")).splitlines()[0] == "Usage: lightning dev store [OPTIONS] FILE..."
    assert help_text(("account", "transfer")).splitlines()[0] == "Usage: lightning account transfer [OPTIONS] TO AMOUNT"
    assert help_text(("account", "balance")).splitlines()[0] == "Usage: lightning account balance [OPTIONS] [ADDRESS]"


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_repeatable_options_say_so(path: tuple[str, ...], cmd: Any) -> None:
    text = " ".join(help_text(path).split())
    for param in cmd.params:
        if getattr(param, "multiple", False) or getattr(param, "count", False):
            assert param.help and "repeatable" in param.help, (path, param.name)
            assert param.opts[-1] in text


def test_commands_with_a_node_home_take_dev() -> None:
    with_home = [p for p, cmd in LEAVES if any("--home" in getattr(prm, "opts", ()) for prm in cmd.params)]
    cluster_dir = {("dev", "cluster")}  # its --home is a cluster directory, not a node home
    missing = [
        p
        for p, cmd in LEAVES
        if p in with_home and p not in cluster_dir and not any("--dev" in getattr(x, "opts", ()) for x in cmd.params)
    ]
    assert missing == []
    assert len(with_home) >= 20


def test_genesis_and_cluster_agree_on_the_committee(tmp_path: Path) -> None:
    assert _committee(2, None) == 2 and _committee(9, None) == DEFAULT_COMMITTEE == 4
    for path in (("dev", "genesis"), ("dev", "cluster")):
        assert "min(N, 4)" in " ".join(help_text(path).split())
    with CliRunner().isolation():
        main(["dev", "genesis", "--nodes", "2", "--out", str(tmp_path / "g")])  # 4 > 2 nodes used to fail
    assert "committee" in (tmp_path / "g" / "node-1" / "genesis.toml").read_text()


def test_bench_table_has_units_and_requests_per_second() -> None:
    stats = {
        "requests": 10,
        "ok": 9,
        "errors": 1,
        "errors_by_kind": {"timeout": 1},
        "bytes": 9_000_000,
        "throughput_mb_s": 4.5,
        "requests_per_s": 4.5,
        "ttfb_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0},
        "ttfl_ms": {"p50": 10.0, "p90": 20.0, "p99": 30.0},
    }
    lines = bench_table({"elapsed_s": 2.0, "total": stats, "nodes": {"http://127.0.0.1:4220": stats}})
    header = " ".join(lines[0].split())
    assert header == "node ok errors req/s TTFB ms TTFL ms MB/s"
    assert lines[1].split() == ["p50", "p90", "p99", "p50", "p90", "p99"]
    total = lines[3].split()
    assert total[:4] == ["total", "9", "1", "4.5"] and total[-1] == "4.5"
    assert "time to first byte" in lines[4] and lines[5] == "errors: timeout 1"


def test_ready_lines_say_what_to_do_next() -> None:
    ports = {"http": "127.0.0.1:4221", "rpc": "127.0.0.1:4241", "node_id": "ab" * 32}
    text = "\n".join(ready_lines(ports, "--dev"))
    assert "curl http://127.0.0.1:4221/health" in text
    assert "lightning dev store FILE --dev" in text
    assert "http://127.0.0.1:4221/services/0/blake3/<root>" in text
    assert "http://127.0.0.1:4241/rpc/v0" in text
    assert ready_lines({"pid": 1}, "--dev") == []  # a node without endpoints has nothing to show


def test_cluster_ready_lines_name_node_one(tmp_path: Path) -> None:
    layout = make_cluster(tmp_path / "c", nodes=2, committee=2, host_base="127.0.0.1")
    lines = cluster_ready_lines(layout, {"node-1": {"http": "127.0.0.1:4220"}, "node-2": {"http": "127.0.0.2:4220"}})
    text = "\n".join(lines)
    assert "curl http://127.0.0.1:4220/health" in text
    assert f"lightning dev store FILE --home {layout.nodes[0].home}" in text
    assert str(layout.root / "faucet.key") in text


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        (
            "mint cap: abababababababab… got 0 this epoch; the cap is 1000000000000000000000 per epoch",
            "mint cap: abababababababab… got 0 FLK this epoch; the cap is 1000 FLK per epoch",
        ),
        (
            "insufficient balance: 0123456789abcdef… has 500000000000000000, needs 1500000000000000000",
            "insufficient balance: 0123456789abcdef… has 0.5 FLK, needs 1.5 FLK",
        ),
        (
            "node has 2000000000000000000000 staked, cannot unstake 5",
            "node has 2000 FLK staked, cannot unstake 0.000000000000000005 FLK",
        ),
        ("content ab… already has 64 providers", "content ab… already has 64 providers"),
        ("epoch 3 ends at 1712345678901 ms; this block is at 1712345678000 ms", None),
        ("a stake lock is at most 12 epochs", None),
        ("root 1234567890123456789012345678901234567890123456789012345678901234abcd", None),
    ],
)
def test_amounts_in_revert_reasons_are_flk(reason: str, shown: str | None) -> None:
    assert flk_in_text(reason) == (reason if shown is None else shown)
