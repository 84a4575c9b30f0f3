"""Text forms of network addresses."""

from __future__ import annotations

__all__ = ["join_host_port"]


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets (``[::1]:4300``), as URLs and ``NODE_ID@HOST:PORT`` want it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
