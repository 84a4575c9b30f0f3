"""Logging set-up: text or JSON lines on stderr, level from -v/-q or config."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from lightning.ids import NodeId

__all__ = ["PeerAdapter", "peer_log", "setup_logging"]

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _RESERVED and not k.startswith("_"):
                out[k] = v if isinstance(v, int | float | str | bool | type(None)) else str(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


def setup_logging(level: int | str = logging.INFO, fmt: str = "text", *, prefix: str = "") -> None:
    """Configure the root logger once (idempotent: replaces our handler on a second call)."""
    import time

    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter(f"%(asctime)s {prefix}%(levelname)-7s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_lightning", False):
            root.removeHandler(h)
    handler._lightning = True  # type: ignore[attr-defined]  # marks our own handler for replacement
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())


class PeerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every message with the peer or connection it concerns (``[peer] message``); JSON logs also carry it
    as a ``peer`` field."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        peer = self.extra["peer"] if self.extra else "?"
        kwargs["extra"] = {**kwargs.get("extra", {}), "peer": peer}
        return f"[{peer}] {msg}", kwargs


def peer_log(logger: logging.Logger, peer: NodeId) -> PeerAdapter:
    """``logger`` with every message prefixed by ``peer``'s short id."""
    return PeerAdapter(logger, {"peer": peer.short()})
