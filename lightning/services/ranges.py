"""HTTP ``Range: bytes=…`` parsing (RFC 9110 §14): one range is served; several are answered with the whole body."""

from __future__ import annotations

__all__ = ["Unsatisfiable", "parse_range"]


class Unsatisfiable(Exception):
    """A syntactically valid range that selects no byte of the representation (→ 416)."""


def parse_range(header: str | None, length: int) -> tuple[int, int] | None:
    """Return ``(start, end_exclusive)`` for a single satisfiable range, None to serve the whole body.

    Raises :class:`Unsatisfiable` when the range cannot be satisfied. Malformed headers are ignored (whole body), as
    the RFC asks."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or not spec or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not first.isdigit() and first != "":
        return None
    if not last.isdigit() and last != "":
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or length == 0:
            raise Unsatisfiable
        return max(0, length - suffix), length
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= length:
        raise Unsatisfiable
    end = length - 1 if last == "" else min(int(last), length - 1)
    return start, end + 1
