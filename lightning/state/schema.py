"""Argument schemas of transaction methods: small checks that raise :class:`TxMalformed` naming the bad field.

A schema is called as ``schema(value, where)``. Maps and lists are objects (:class:`MapOf`, :class:`ListOf`) that can
also describe themselves for docs/state.md's method table (``describe()``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lightning.amounts import MAX_AMOUNT
from lightning.state.errors import StateError

__all__ = [
    "AMOUNT",
    "EPOCH",
    "KEY",
    "PORT",
    "U64",
    "Check",
    "ListOf",
    "MapOf",
    "TxMalformed",
    "boolean",
    "byte_string",
    "integer",
    "text",
]


class TxMalformed(StateError):
    """Bytes that are not a well-formed signed transaction (bad encoding, fields, arguments or signature)."""


Check = Callable[[Any, str], None]


def _fail(where: str, what: str) -> None:
    raise TxMalformed(f"{where}: {what}")


def integer(lo: int, hi: int) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            _fail(where, f"expected an integer in [{lo}, {hi}]")

    return check


def byte_string(n: int | None = None, max_len: int | None = None) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, bytes):
            _fail(where, "expected bytes")
        elif n is not None and len(v) != n:
            _fail(where, f"expected {n} bytes, got {len(v)}")
        elif max_len is not None and len(v) > max_len:
            _fail(where, f"longer than {max_len} bytes")

    return check


def text(max_len: int) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, str) or not 0 < len(v) <= max_len:
            _fail(where, f"expected a string of 1..{max_len} characters")

    return check


def boolean(v: Any, where: str) -> None:
    if not isinstance(v, bool):
        _fail(where, "expected true or false")


KEY = byte_string(32)
AMOUNT = integer(1, MAX_AMOUNT)
EPOCH = integer(0, 2**63 - 1)
PORT = integer(0, 65535)
U64 = integer(0, 2**64 - 1)


class MapOf:
    """A map with these required and optional fields, and no others."""

    def __init__(self, required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> None:
        self.required = dict(required)
        self.optional = dict(optional or {})

    def __call__(self, v: Any, where: str) -> None:
        if not isinstance(v, dict):
            _fail(where, "expected a map")
        for k in v:
            if k not in self.required and k not in self.optional:
                _fail(where, f"unknown field {k!r}")
        for k, c in self.required.items():
            if k not in v:
                _fail(where, f"missing field {k!r}")
            c(v[k], f"{where}.{k}")
        for k, c in self.optional.items():
            if k in v:
                c(v[k], f"{where}.{k}")

    def fields(self) -> list[str]:
        return [*self.required, *self.optional]

    def describe(self) -> str:
        """``a``, ``b: {x, y}``, [``c``]: the fields, nested maps and lists described, optional ones bracketed."""
        parts = [f"`{k}`{_nested(c)}" for k, c in self.required.items()]
        optional = [f"`{k}`{_nested(c)}" for k, c in self.optional.items()]
        if optional:
            parts.append("[" + ", ".join(optional) + "]")
        return ", ".join(parts)


class ListOf:
    """A list of 1..``max_len`` items, optionally sorted by one field of each (map) item, without repeats."""

    def __init__(self, item: Check, max_len: int, *, unique_by: str | None = None) -> None:
        self.item = item
        self.max_len = max_len
        self.unique_by = unique_by

    def __call__(self, v: Any, where: str) -> None:
        if not isinstance(v, list) or not 0 < len(v) <= self.max_len:
            _fail(where, f"expected a list of 1..{self.max_len} items")
        for i, x in enumerate(v):
            self.item(x, f"{where}[{i}]")
        if self.unique_by is not None:
            keys = [x[self.unique_by] for x in v]
            if keys != sorted(set(keys)):
                _fail(where, f"items must be sorted by {self.unique_by!r}, without repeats")

    def describe(self) -> str:
        order = f", sorted by {self.unique_by}, unique" if self.unique_by else ""
        item = f": {{{_fields(self.item)}}}" if isinstance(self.item, MapOf) else ""
        return f" (≤ {self.max_len}{order}){item}"


def _fields(schema: MapOf) -> str:
    return ", ".join([*schema.required, *(f"[{k}]" for k in schema.optional)])


def _nested(check: Check) -> str:
    if isinstance(check, MapOf):
        return f": {{{_fields(check)}}}"
    if isinstance(check, ListOf):
        return check.describe()
    return ""
