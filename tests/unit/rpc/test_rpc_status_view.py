"""How `lightning status` shows a report: sync state, time to the next epoch, registry entry, served bytes (the
report itself comes from a running node: tests/integration/test_rpc_parity.py)."""

from __future__ import annotations

from typing import Any

from lightning.cli.status import render_status

BASE: dict[str, Any] = {
    "version": "0.1.0",
    "node_id": "ab" * 32,
    "chain_id": 1337,
    "uptime_s": 3725.4,
    "ready": True,
    "peers": 3,
    "epoch": 4,
    "committee": False,
    "syncing": False,
    "head_height": 120,
    "best_known_height": 120,
    "served_bytes": 3 * 1024 * 1024 + 5,
    "epoch_start_ms": 1_000,
    "epoch_end_ms": 2_000,
    "epoch_ends_in_s": 272.9,
    "registered": True,
    "stake": str(1500 * 10**18 + 5 * 10**17),
    "participation": "true",
    "reputation": 87,
}


def rows(report: dict[str, Any]) -> dict[str, str]:
    lines = render_status(report)
    width = len(lines[0]) - len(lines[0].split(":", 1)[1].lstrip())
    assert all(line[width - 1] == " " and line[width] != " " for line in lines), lines  # one value column
    return {k: v.strip() for k, v in (line.split(":", 1) for line in lines)}


def test_a_registered_node_caught_up() -> None:
    r = rows(BASE)
    assert r["uptime"] == "1h 02m" and r["ready"] == "yes" and r["peers"] == "3"
    assert r["height"] == "120 (caught up)"
    assert r["epoch"] == "4, ends in 4m 32s"
    assert r["committee"] == "no"
    assert r["stake"] == "1500.5 FLK (participation: true)" and r["reputation"] == "87/100"
    assert r["served"] == "3.0 MiB (3145733 bytes) to clients since start"
    assert "rewards" not in r


def test_a_syncing_node_past_its_epoch_end_unregistered() -> None:
    report = {
        **BASE,
        "syncing": True,
        "head_height": 40,
        "best_known_height": 100,
        "epoch_ends_in_s": -3.0,
        "registered": False,
        "ready": False,
        "served_bytes": 12,
    }
    r = rows(report)
    assert r["height"] == "40 of 100 seen at peers (syncing, 60 behind)"
    assert r["epoch"] == "4, end due (waits for the committee's votes)"
    assert r["ready"] == "no (starting)"
    assert r["stake"].startswith("not registered") and "reputation" not in r
    assert r["served"] == "12 B to clients since start"


def test_rewards_and_unmeasured_reputation_once_the_state_has_them() -> None:
    r = rows({**BASE, "reputation": None, "rewards": str(2 * 10**18)})
    assert r["reputation"] == "not measured yet" and r["rewards"] == "2 FLK"


def test_an_older_node_without_the_newer_fields() -> None:
    old = {k: BASE[k] for k in ("version", "node_id", "chain_id", "uptime_s", "ready", "peers", "epoch", "committee")}
    r = rows(old)
    assert r["epoch"] == "4" and "height" not in r and "served" not in r and r["stake"].startswith("not registered")
