"""The figure line every benchmark prints (../shared/BENCHMARKS.md): name, value, anchor, ratio, goal, OK/MISS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["print_figures"]


def print_figures(figures: Iterable[dict[str, Any]], *, anchor_sep: str = "") -> None:
    """One line per figure dict (name, value, unit, anchor, anchor_value, ratio, goal ``">= x"``/``"<= x"``)."""
    for f in figures:
        op, goal = f["goal"].split()
        ok = f["ratio"] >= float(goal) if op == ">=" else f["ratio"] <= float(goal)
        print(
            f"{f['name']}  {f['value']} {f['unit']}  ({f['anchor']}{anchor_sep} {f['anchor_value']} {f['unit']})  "
            f"ratio {f['ratio']}  goal {f['goal']}  {'OK' if ok else 'MISS'}"
        )
