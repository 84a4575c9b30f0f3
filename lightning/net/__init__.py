"""The peer-to-peer layer: one QUIC connection pool per node, scoped messaging, and its simulated twin.

Components use the :class:`Pool` interface (``send``, ``request``, ``open_stream``, handlers per :class:`Scope`).
:class:`QuicPool` is the production pool over QUIC (``endpoint.py``, ``driver.py``); ``lightning.net.sim`` provides
:class:`~lightning.net.sim.SimPool` on a seeded in-process network. The wire format, authentication, admission and
limits are described in docs/net.md.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.net.admission import AddressBook, Admission, OpenAdmission, StaticAdmission, parse_peer_address
    from lightning.net.errors import (
        BadRequest,
        ConnectionLost,
        HandshakeFailed,
        InternalError,
        NetError,
        NotFound,
        PeerProtocolError,
        PeerUnavailable,
        Rejected,
        RequestTimeout,
        StreamReset,
        TooManyRequests,
        Unauthorized,
        WrongPeerKey,
    )
    from lightning.net.pool import PeerPool, Pool, PoolStatistics
    from lightning.net.quic import QuicPool
    from lightning.net.replies import ReplyStream, ReplyWriter
    from lightning.net.wire import Scope

__all__ = [
    "AddressBook",
    "Admission",
    "BadRequest",
    "ConnectionLost",
    "HandshakeFailed",
    "InternalError",
    "NetError",
    "NotFound",
    "OpenAdmission",
    "PeerPool",
    "PeerProtocolError",
    "PeerUnavailable",
    "Pool",
    "PoolStatistics",
    "QuicPool",
    "Rejected",
    "ReplyStream",
    "ReplyWriter",
    "RequestTimeout",
    "Scope",
    "StaticAdmission",
    "StreamReset",
    "TooManyRequests",
    "Unauthorized",
    "WrongPeerKey",
    "parse_peer_address",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AddressBook": "admission",
        "Admission": "admission",
        "OpenAdmission": "admission",
        "StaticAdmission": "admission",
        "parse_peer_address": "admission",
        "BadRequest": "errors",
        "ConnectionLost": "errors",
        "HandshakeFailed": "errors",
        "InternalError": "errors",
        "NetError": "errors",
        "NotFound": "errors",
        "PeerProtocolError": "errors",
        "PeerUnavailable": "errors",
        "Rejected": "errors",
        "RequestTimeout": "errors",
        "StreamReset": "errors",
        "TooManyRequests": "errors",
        "Unauthorized": "errors",
        "WrongPeerKey": "errors",
        "PeerPool": "pool",
        "Pool": "pool",
        "PoolStatistics": "pool",
        "QuicPool": "quic",
        "ReplyStream": "replies",
        "ReplyWriter": "replies",
        "Scope": "wire",
    },
)
