"""What ``lightning status`` asks a running node and how it shows it (the command itself is in ``cli/main.py``).

One JSON-RPC batch (``flk_get_node_status``, ``flk_get_epoch_info``, ``flk_get_node_info`` of the node itself) gives
one flat report: the node status fields, the epoch's planned end and the time left to it, and the node's registry
entry (stake, participation, reputation, and rewards once the state has them). ``--json`` prints that report.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from lightning.amounts import format_flk
from lightning.errors import LightningError

__all__ = ["fetch_status", "render_status"]


def _batch(url: str, calls: list[tuple[str, list[Any]]], timeout_s: float) -> list[dict[str, Any]]:
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
    req = urllib.request.Request(url, data=body.encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            answers = json.loads(resp.read())
    except urllib.error.URLError as exc:
        raise LightningError(f"no node answers at {url} ({exc.reason}); is `lightning run` running?") from None
    except (OSError, ValueError) as exc:
        raise LightningError(f"bad answer from {url}: {exc}") from None
    if not isinstance(answers, list):
        raise LightningError(f"bad answer from {url}: not a JSON-RPC batch answer")
    by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
    return [by_id.get(i, {"error": {"message": "no answer"}}) for i in range(len(calls))]


def _result(answer: dict[str, Any], method: str) -> Any:
    if "error" in answer:
        raise LightningError(f"{method}: {answer['error'].get('message')}")
    return answer.get("result")


def wait_synced(
    url: str,
    update: Callable[[int, int], None],
    *,
    timeout_s: float,
    poll_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ``flk_get_node_status`` until the node is no longer syncing, reporting ``(head, best known)`` heights to
    ``update``; return the last status. Raises :class:`LightningError` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        (answer,) = _batch(url, [("flk_get_node_status", [])], poll_s + 10.0)
        status = _result(answer, "flk_get_node_status")
        update(int(status.get("head_height", 0)), int(status.get("best_known_height", 0)))
        if not status.get("syncing", False):
            return dict(status)
        if time.monotonic() >= deadline:
            head, best = status.get("head_height", 0), status.get("best_known_height", 0)
            raise LightningError(
                f"still syncing after {timeout_s:g} s (block {head} of {best} seen at peers); "
                "run `lightning status --wait-sync` again, or raise --timeout"
            )
        sleep(poll_s)


def fetch_status(url: str, *, timeout_s: float = 10.0, now_ms: int | None = None) -> dict[str, Any]:
    """The status report of the node whose RPC answers at ``url``. Raises :class:`LightningError`."""
    status_answer, epoch_answer = _batch(url, [("flk_get_node_status", []), ("flk_get_epoch_info", [])], timeout_s)
    report: dict[str, Any] = dict(_result(status_answer, "flk_get_node_status"))
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if "result" in epoch_answer:  # absent while the state is starting
        epoch = epoch_answer["result"]
        report["epoch_start_ms"] = epoch["start_ms"]
        report["epoch_end_ms"] = epoch["end_ms"]
        report["epoch_ends_in_s"] = round((epoch["end_ms"] - now_ms) / 1000, 3)
    (info_answer,) = _batch(url, [("flk_get_node_info", [report["node_id"]])], timeout_s)
    info = info_answer.get("result")
    report["registered"] = info is not None
    if info is not None:
        report["stake"] = info["stake"]
        report["participation"] = info["participation"]
        report["reputation"] = info["reputation"]
        if "rewards" in info:
            report["rewards"] = info["rewards"]
    return report


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit} ({n} bytes)"
        size /= 1024
    raise AssertionError("unreachable")


def render_status(r: dict[str, Any]) -> list[str]:
    """The lines ``lightning status`` prints for a report of :func:`fetch_status`."""
    rows: list[tuple[str, str]] = [
        ("node id", r["node_id"]),
        ("version", r["version"]),
        ("chain id", str(r["chain_id"])),
        ("uptime", _duration(r["uptime_s"])),
        ("ready", "yes" if r["ready"] else "no (starting)"),
    ]
    if "syncing" in r:
        head, best = r["head_height"], r["best_known_height"]
        if r["syncing"]:
            behind = f", {best - head} behind" if best > head else ""
            rows.append(("height", f"{head} of {best} seen at peers (syncing{behind})"))
        else:
            rows.append(("height", f"{head} (caught up)"))
    rows.append(("peers", str(r["peers"])))
    epoch = str(r["epoch"])
    if "epoch_ends_in_s" in r:
        left = r["epoch_ends_in_s"]
        epoch += f", ends in {_duration(left)}" if left > 0 else ", end due (waits for the committee's votes)"
    rows.append(("epoch", epoch))
    rows.append(("committee", "yes" if r["committee"] else "no"))
    if r.get("registered"):
        rows.append(("stake", f"{format_flk(int(r['stake']))} FLK (participation: {r['participation']})"))
        reputation = r.get("reputation")
        rows.append(("reputation", "not measured yet" if reputation is None else f"{reputation}/100"))
        if "rewards" in r:
            rows.append(("rewards", f"{format_flk(int(r['rewards']))} FLK"))
    else:
        rows.append(("stake", "not registered (see `lightning keys registration`)"))
    if "served_bytes" in r:
        rows.append(("served", f"{_bytes(r['served_bytes'])} to clients since start"))
    width = max(len(label) for label, _ in rows) + 2
    return [f"{label + ':':<{width}}{value}" for label, value in rows]
