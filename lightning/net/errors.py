"""Errors of the peer-to-peer layer.

A request to a peer ends in one of three ways besides success: the peer answered with a typed rejection
(:class:`Rejected` and its subclasses, whose ``code`` travels on the wire), the peer could not be reached or the
connection broke (:class:`PeerUnavailable`, :class:`ConnectionLost`), or time ran out (:class:`RequestTimeout`).
A peer that breaks the protocol raises :class:`PeerProtocolError` locally and loses its stream or connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from lightning.errors import LightningError, RemoteProtocolError, leaf_exceptions

__all__ = [
    "BadRequest",
    "ConnectionLost",
    "HandshakeFailed",
    "InternalError",
    "NetError",
    "NotHere",
    "PeerProtocolError",
    "PeerUnavailable",
    "Rejected",
    "RequestTimeout",
    "StreamReset",
    "TooManyRequests",
    "Unauthorized",
    "WrongPeerKey",
    "rejection_from_code",
    "unwrap_group",
]


class NetError(LightningError):
    """Root of the pool's errors."""


class Rejected(NetError):
    """The peer answered with a typed refusal. ``code`` is the wire name of the reason."""

    code: ClassVar[str] = "rejected"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code.replace("_", " "))


class TooManyRequests(Rejected):
    """The peer is at its limit of concurrent requests (from us, or in total); retry later or elsewhere."""

    code = "too_many_requests"


class NotHere(Rejected):
    """The peer does not have what was asked for."""

    code = "not_found"


class Unauthorized(Rejected):
    """The peer does not admit us (to this scope, or at all)."""

    code = "unauthorized"


class BadRequest(Rejected):
    """The peer could not make sense of the request."""

    code = "bad_request"


class InternalError(Rejected):
    """The peer's handler failed unexpectedly."""

    code = "internal"


_REJECTIONS: dict[str, type[Rejected]] = {
    cls.code: cls for cls in (TooManyRequests, NotHere, Unauthorized, BadRequest, InternalError)
}


def rejection_from_code(code: str, message: str) -> Rejected:
    """The exception for a rejection received from a peer (an unknown code becomes a plain :class:`Rejected`)."""
    cls = _REJECTIONS.get(code)
    if cls is None:
        return Rejected(f"{code}: {message}")
    return cls(message)


class PeerUnavailable(NetError):
    """No connection to the peer could be made: unknown address, unreachable, backing off, banned or pool full."""


class HandshakeFailed(PeerUnavailable):
    """The QUIC/TLS handshake or the node-key authentication failed."""


class WrongPeerKey(HandshakeFailed):
    """The peer at that address proved a different node key than the one we dialed."""


class ConnectionLost(NetError):
    """The connection closed (reset, partition, idle, peer shutdown) while we were using it."""


class StreamReset(ConnectionLost):
    """The peer (or we) aborted this one stream; the connection may still be up."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.reset_code = code


class RequestTimeout(NetError):
    """The peer did not answer in time."""


class PeerProtocolError(RemoteProtocolError, NetError):
    """A peer sent something the protocol forbids (bad framing, oversize frame, unexpected stream)."""


@contextmanager
def unwrap_group() -> Iterator[None]:
    """Re-raise the single exception a nursery wrapped in an ExceptionGroup (trio's strict groups), so callers
    can catch the typed errors of this module. Groups of several real errors pass through unchanged."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = leaf_exceptions(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
