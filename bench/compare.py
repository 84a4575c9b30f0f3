"""Old against new: the same benchmarks run from two checkouts side by side, rounds alternating (see
../shared/BENCHMARKS.md).

For a refactor the question is not "does the figure meet its goal" but "is the new code no slower than the old". Each
selected bench (startup, state, serve) is run as `python <checkout>/bench/<name>.py [--quick] --json FILE` (`--quick`
when given here, and always for serve) from the old checkout, then from the new one, then old again, … for N rounds,
on the same machine in the same minutes. Per figure, the median `value` of each side is quoted with new/old and the
figure's direction (from its `goal`: `>=` higher is better, `<=` lower is better); OK means new is no more than 10 %
worse, else WORSE. Each side's anchor values and ratios are printed too: the anchors run the same code on both sides,
so their spread between sides is machine noise.

Each run gets `PYTHONPATH=<checkout>` and the checkout as working directory (`python -m lightning`, which the benches
use to spawn nodes, puts the working directory first on sys.path), so nodes a bench starts run that checkout's code;
where `lightning` resolves is checked and printed for each side before any bench runs. Byte-code goes to a private
cache (PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE unset) shared by all rounds, so neither checkout is written to
and both sides start from cached .pyc after their bench's warm-up, as an installed node would.

The new side is the checkout holding this file (working tree as it is, uncommitted changes included). `--old` is a
directory (an existing checkout) or a git ref (checked out into a temporary `git worktree`, removed afterwards).
serve needs nginx, wrk and ipfs-car (see bench/serve.py). Exit status 0 whatever the verdicts (this is a report);
1 if a bench crashed.

Usage: python bench/compare.py --old REF_OR_DIR [--rounds 3] [--quick] [--json PATH] [--only startup,state,serve]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NEW_ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("startup", "state", "serve")
TOLERANCE = 0.10  # new may be at most 10 % worse
RUN_TIMEOUT = 1200.0  # seconds for one bench run


@dataclass
class Side:
    label: str  # "old" or "new"
    root: Path
    env: dict[str, str]
    runs: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)  # bench -> rounds -> figures


class BenchCrashed(RuntimeError):
    pass


@contextlib.contextmanager
def old_checkout(spec: str, scratch: Path) -> Iterator[Path]:
    """`spec` as a directory, else a git ref checked out into a temporary worktree (removed on exit)."""
    if Path(spec).is_dir():
        yield Path(spec).resolve()
        return
    path = scratch / "old-worktree"
    add = ["git", "-C", str(NEW_ROOT), "worktree", "add", "--detach", str(path), spec]
    made = subprocess.run(add, capture_output=True, text=True)
    if made.returncode != 0:
        sys.exit(f"--old {spec}: neither a directory nor a git ref of {NEW_ROOT}: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(NEW_ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)
        subprocess.run(["git", "-C", str(NEW_ROOT), "worktree", "prune"], capture_output=True)


def tree_state(root: Path) -> str:
    """HEAD, plus a fingerprint of uncommitted changes (tracked diff and untracked files), to notice edits mid-run."""

    def git(*cmd: str) -> bytes:
        return subprocess.run(["git", "-C", str(root), *cmd], capture_output=True).stdout

    head = git("rev-parse", "--short", "HEAD").decode().strip() or "not a git checkout"
    diff = git("diff", "HEAD", "--binary")
    untracked = sorted(n for n in git("ls-files", "--others", "--exclude-standard", "-z").split(b"\0") if n)
    digest = hashlib.sha256(diff)
    for name in untracked:
        if (root / name.decode()).is_file():
            digest.update(name + (root / name.decode()).read_bytes())
    return f"{head} + uncommitted {digest.hexdigest()[:10]}" if diff or untracked else head


def side_env(root: Path, pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONHOME")}
    env["PYTHONPATH"] = str(root)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def resolved_lightning(side: Side) -> dict[str, str]:
    """Where `import lightning` and `python -m lightning` (as the benches spawn it) resolve for this side."""
    found = {}
    out = subprocess.run(
        [sys.executable, "-c", "import lightning; print(lightning.__file__)"],
        cwd=side.root,
        env=side.env,
        capture_output=True,
        text=True,
        check=True,
    )
    found["import lightning"] = out.stdout.strip()
    commands = {"python -m lightning": [sys.executable, "-m", "lightning", "--help"]}
    script = shutil.which("lightning", path=str(Path(sys.executable).parent))
    if script:
        commands["lightning (console script)"] = [script, "--help"]
    for name, cmd in commands.items():
        env = {**side.env, "PYTHONVERBOSE": "1"}
        verbose = subprocess.run(cmd, cwd=side.root, env=env, capture_output=True, text=True)
        m = re.search(r"(/\S*/lightning/__init__\.py)\b", verbose.stderr)
        found[name] = m.group(1) if m else f"not found (exit {verbose.returncode})"
    return found


def run_bench(side: Side, bench: str, quick: bool, scratch: Path) -> tuple[list[dict[str, Any]], float]:
    out_json = scratch / f"{bench}-{side.label}.json"
    out_json.unlink(missing_ok=True)
    cmd = [sys.executable, str(side.root / "bench" / f"{bench}.py"), "--json", str(out_json)]
    if quick:
        cmd.insert(2, "--quick")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=side.root, env=side.env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise BenchCrashed(f"{bench} ({side.label}) timed out after {RUN_TIMEOUT:.0f} s") from e
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or not out_json.exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise BenchCrashed(f"{bench} ({side.label}) exited {proc.returncode}:\n{tail}")
    figures: list[dict[str, Any]] = json.loads(out_json.read_text())
    return figures, elapsed


def direction(goal: str) -> str:
    if ">=" in goal:
        return "higher"
    if "<=" in goal:
        return "lower"
    raise ValueError(f"goal {goal!r} states no direction")


def median_of(runs: list[list[dict[str, Any]]], name: str, key: str) -> float | None:
    values = [f[key] for figures in runs for f in figures if f["name"] == name and f.get(key) is not None]
    return statistics.median(values) if values else None


def values_of(runs: list[list[dict[str, Any]]], name: str) -> list[float]:
    return [f["value"] for figures in runs for f in figures if f["name"] == name]


def compare(bench: str, old: Side, new: Side) -> list[dict[str, Any]]:
    old_runs, new_runs = old.runs.get(bench, []), new.runs.get(bench, [])
    names: list[str] = []
    meta: dict[str, dict[str, Any]] = {}
    for figures in new_runs + old_runs:
        for f in figures:
            if f["name"] not in meta:
                names.append(f["name"])
                meta[f["name"]] = f
    rows = []
    for name in names:
        f = meta[name]
        new_v, old_v = median_of(new_runs, name, "value"), median_of(old_runs, name, "value")
        row: dict[str, Any] = {
            "bench": bench,
            "name": name,
            "unit": f.get("unit"),
            "goal": f.get("goal"),
            "direction": direction(str(f.get("goal"))),
            "new": new_v,
            "old": old_v,
            "new_over_old": None,
            "verdict": "MISSING",
            "new_values": values_of(new_runs, name),
            "old_values": values_of(old_runs, name),
            "anchor": f.get("anchor"),
            "new_anchor_value": median_of(new_runs, name, "anchor_value"),
            "old_anchor_value": median_of(old_runs, name, "anchor_value"),
            "new_ratio": median_of(new_runs, name, "ratio"),
            "old_ratio": median_of(old_runs, name, "ratio"),
        }
        if new_v is not None and old_v is not None:
            rel = new_v / old_v if old_v else (1.0 if new_v == old_v else float("inf"))
            row["new_over_old"] = round(rel, 3)
            worse = rel < 1 - TOLERANCE if row["direction"] == "higher" else rel > 1 + TOLERANCE
            row["verdict"] = "WORSE" if worse else "OK"
        rows.append(row)
    return rows


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.0f}"


def print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        unit = r["unit"] or ""
        rel = "-" if r["new_over_old"] is None else f"{r['new_over_old']:.3f}"
        print(
            f"{r['name']}  new {fmt(r['new'])} {unit}  old {fmt(r['old'])} {unit}  new/old {rel}  "
            f"({r['direction']} is better)  {r['verdict']}" + ("" if r["complete"] else "  (incomplete: bench crashed)")
        )
        new_runs, old_runs = (", ".join(fmt(v) for v in r[k]) for k in ("new_values", "old_values"))
        spread = f"runs new [{new_runs}]  old [{old_runs}]"
        if r["anchor"]:
            na, oa = r["new_anchor_value"], r["old_anchor_value"]
            drift = f"{na / oa:.3f}" if na is not None and oa else "-"
            print(
                f"    anchor {r['anchor']}: new side {fmt(na)} {unit}  old side {fmt(oa)} {unit}  "
                f"(anchor new/old {drift});  ratio new {fmt(r['new_ratio'])}  old {fmt(r['old_ratio'])};  {spread}"
            )
        else:
            print(f"    no anchor;  {spread}")


def main() -> None:
    ap = argparse.ArgumentParser(description="Run benchmarks from an old and the new checkout side by side.")
    ap.add_argument("--old", required=True, help="old checkout: a directory or a git ref")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="run every bench with --quick (serve always is)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ",".join(BENCHES))
    args = ap.parse_args()
    benches = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(benches) - set(BENCHES))
    if unknown or not benches or args.rounds < 1:
        ap.error(f"--only takes {','.join(BENCHES)}; --rounds >= 1 (got {args.only!r}, {args.rounds})")

    t_start = time.perf_counter()
    crashed: dict[str, str] = {}  # bench -> why
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lightning-compare-") as tmp:
        scratch = Path(tmp)
        with old_checkout(args.old, scratch) as old_root:
            pycache = scratch / "pycache"
            old = Side("old", old_root, side_env(old_root, pycache))
            new = Side("new", NEW_ROOT, side_env(NEW_ROOT, pycache))
            if old.root == new.root:
                sys.exit(f"--old {args.old} is the new checkout itself")
            print(f"# python {sys.executable} ({sys.version.split()[0]}), {os.cpu_count()} cores, "
                  f"load {os.getloadavg()[0]:.2f}; {args.rounds} rounds old/new alternating; "
                  f"{'all benches' if args.quick else 'serve only'} with --quick")  # fmt: skip
            trees = {side.label: tree_state(side.root) for side in (old, new)}
            for side in (old, new):
                where = resolved_lightning(side)
                expected = str(side.root / "lightning" / "__init__.py")
                found = "  ".join(f"[{k}] {v}" for k, v in where.items())
                print(f"# {side.label}: {side.root} at {trees[side.label]}  {found}")
                if any(v != expected for v in where.values()):
                    sys.exit(f"{side.label}: lightning does not resolve to {expected}: {where}")
            for bench in benches:
                missing = [s.label for s in (old, new) if not (s.root / "bench" / f"{bench}.py").exists()]
                if missing:
                    crashed[bench] = f"no bench/{bench}.py on the {' and '.join(missing)} side"
                    continue
                try:
                    for i in range(args.rounds):
                        for side in (old, new):
                            figures, elapsed = run_bench(side, bench, args.quick or bench == "serve", scratch)
                            side.runs.setdefault(bench, []).append(figures)
                            summary = "  ".join(f"{f['name']} {f['value']}" for f in figures)
                            print(f"# {bench} round {i + 1}/{args.rounds} {side.label} ({elapsed:.1f} s): {summary}",
                                  file=sys.stderr, flush=True)  # fmt: skip
                except BenchCrashed as e:
                    print(f"# CRASHED {e}", file=sys.stderr)
                    lines = str(e).splitlines()
                    crashed[bench] = lines[0] + (f" … {lines[-1]}" if len(lines) > 1 else "")
                bench_rows = compare(bench, old, new)
                for row in bench_rows:
                    row["complete"] = bench not in crashed
                rows.extend(bench_rows)
            changed = [s.label for s in (old, new) if tree_state(s.root) != trees[s.label]]

    print()
    print_rows(rows)
    for label in changed:
        print(f"# WARNING: the {label} checkout changed during the run (was {trees[label]}): its rounds mix versions")
    for bench, why in crashed.items():
        print(f"# CRASHED {bench}: {why}")
    worse = [r["name"] for r in rows if r["verdict"] == "WORSE"]
    print(
        f"# {len(rows)} figures, {len(worse)} worse than old by more than {TOLERANCE:.0%}"
        + (f" ({', '.join(worse)})" if worse else "")
        + (f"; crashed: {', '.join(crashed)}" if crashed else "")
        + f"; load {os.getloadavg()[0]:.2f}; wall {time.perf_counter() - t_start:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    sys.exit(1 if crashed else 0)


if __name__ == "__main__":
    main()
