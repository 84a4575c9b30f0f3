"""The one table of transaction kinds: every :class:`~lightning.state.method.Method`, by its wire name.

The decoder (``tx.py``) checks arguments against ``METHODS[name].schema``, the executor runs ``.handler``, the
mempool asks ``.spent(args)`` at acceptance, both read ``.fee``/``.role`` (``fees.py``), and docs/state.md's method
table is :func:`markdown_table` (a test keeps them in step). Adding a transaction kind: one ``@method`` handler in
``methods.py`` (or ``epoch.py``) listed in its module's ``METHODS``, plus its tests — and a regenerated fixture chain
(tests/fixtures/chain/).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lightning.state import epoch, methods
from lightning.state.method import Method

__all__ = ["METHODS", "markdown_table"]


def _collect(*groups: tuple[Method, ...]) -> Mapping[str, Method]:
    table: dict[str, Method] = {}
    for group in groups:
        for m in group:
            assert isinstance(m, Method), m
            assert m.name not in table, f"transaction method {m.name!r} is defined twice"
            table[m.name] = m
    return MappingProxyType(table)


METHODS: Mapping[str, Method] = _collect(methods.METHODS, epoch.METHODS)


_FEES = {None: "paid", "committee": "free: committee", "node": "free: staked node"}


def markdown_table() -> str:
    """docs/state.md's method table."""
    rows = ["| method | args | sender | fee | rule (revert reason when broken) |", "|---|---|---|---|---|"]
    rows += [
        f"| `{m.name}` | {m.schema.describe()} | {m.sender} | {_FEES[m.role]} | {m.rule} |" for m in METHODS.values()
    ]
    return "\n".join(rows) + "\n"
