"""Config of the HTTP server and of the client endpoint (``[http]``); the RPC endpoint's ``[rpc]`` table
(:mod:`lightning.rpc.config`) carries the same limits. Stdlib only (no trio or h11): see :mod:`lightning.config_fields`.

:class:`HttpLimits` is what :func:`lightning.http.server.serve_http` enforces. An endpoint's config *is* an
``HttpLimits`` plus where it listens, so every limit is a key of its table and the endpoint hands its config to the
server as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning.config_fields import check_port, doc, non_negative, positive

__all__ = ["HttpConfig", "HttpLimits", "ListenPort"]


@dataclass(frozen=True)
class HttpLimits:
    """Bounds on what a client may make the server hold, and for how long (both endpoints' defaults)."""

    max_connections: int = field(
        default=1024,
        metadata=doc("connections served at once; more wait in the kernel's listen backlog (no 503)", positive),
    )
    max_body_bytes: int = field(
        default=1024 * 1024,
        metadata=doc(
            "largest request body accepted; larger gets 413 (before reading it, given Content-Length)", positive
        ),
    )
    header_timeout_s: float = field(
        default=10.0, metadata=doc("a request head must arrive within this (slow clients get 408)", positive)
    )
    idle_timeout_s: float = field(
        default=60.0, metadata=doc("keep-alive idle timeout: a connection with no new request is closed", positive)
    )
    max_head_bytes: int = field(
        default=16 * 1024, metadata=doc("request line and headers at most; larger gets 431", positive)
    )
    max_headers: int = field(default=100, metadata=doc("header fields in a request at most; more gets 431", positive))
    body_timeout_s: float = field(
        default=30.0, metadata=doc("the whole request body must arrive within this after the head (else 408)", positive)
    )
    send_timeout_s: float = field(
        default=60.0,
        metadata=doc("a client slower than this to accept one write (at most 1 MiB) is dropped", positive),
    )
    notsent_lowat_bytes: int = field(
        default=256 * 1024,
        metadata=doc(
            "TCP_NOTSENT_LOWAT of accepted sockets (trio's 16 KiB costs throughput); 0 keeps trio's", non_negative
        ),
    )

    def __post_init__(self) -> None:
        for name in ("max_head_bytes", "max_headers", "max_connections"):
            if getattr(self, name) <= 0:
                raise ValueError(f"HttpLimits.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("header_timeout_s", "body_timeout_s", "idle_timeout_s", "send_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HttpLimits.{name} must be positive, got {getattr(self, name)!r}")
        if self.max_body_bytes < 0 or self.notsent_lowat_bytes < 0:
            raise ValueError("HttpLimits.max_body_bytes and notsent_lowat_bytes must not be negative")


@dataclass(frozen=True)
class ListenPort:
    """An endpoint's TCP port. Endpoint configs derive from ``(HttpLimits, ListenPort)`` and redefine ``port`` with
    their default: a dataclass lists its bases' fields first, the last base's first, so ``port`` opens the table."""

    port: int = field(default=0, metadata=doc("TCP port (0 = any free port)", check_port))


@dataclass(frozen=True)
class HttpConfig(HttpLimits, ListenPort):
    """``[http]``: the client endpoint (``/services/<id>/…``, the web UI, ``/health``); binds ``node.listen_host``."""

    port: int = field(default=4220, metadata=doc("client endpoint TCP port (0 = any free port)", check_port))
