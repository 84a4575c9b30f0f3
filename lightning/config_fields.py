"""How a config field documents and checks itself, shared by every package's config module.

A field's metadata holds its one-line ``doc`` (written above the key by ``lightning print-config`` and in
docs/config.md) and an optional ``check``: a function of the converted value that returns ``None`` when the value is
fine and otherwise what is wrong with it (``"must be greater than 0"``); :func:`lightning.config.parse_section`
turns that into a one-line error naming the file and the key. Stdlib only, so that the sans-IO cores can import their
package's config.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

__all__ = ["check_host", "check_port", "doc", "non_negative", "positive"]


def doc(text: str, check: Callable[[Any], str | None] | None = None) -> dict[str, Any]:
    """A config field's metadata: ``field(default=…, metadata=doc("what it does", positive))``."""
    return {"doc": text, "check": check}


def positive(v: float) -> str | None:
    return None if v > 0 else "must be greater than 0"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def check_port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a port number 0..65535"


def check_host(v: str) -> str | None:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        if v == "localhost":
            return None
        return "must be an IP address such as 0.0.0.0 or 127.0.0.1"
    return None
