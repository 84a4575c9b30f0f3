"""What the pool needs from a transport: authenticated connections to peers, each carrying QUIC-like streams.

Two transports implement these protocols: QUIC (``lightning.net.quic``; production) and the simulated network
(``lightning.net.sim``). The pool (``lightning.net.pool``) is written against these protocols only, so scopes,
limits, admission and dialing behave the same in simulation as on the wire.

Semantics both keep (ARCHITECTURE.md): a stream is reliable and in order; bytes on different streams or
connections may reorder; bytes in flight are lost only when the connection closes (reset, partition, peer gone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import trio

from lightning.ids import NodeId

__all__ = ["Connection", "ConnectionAdmitter", "Stream", "Transport"]

ConnectionAdmitter = Callable[[NodeId], str | None]
"""Called with an authenticated peer's key; returns None to accept it or a reason to refuse the connection."""


class Stream(Protocol):
    """One stream of a connection. Bidirectional, or one half of a unidirectional stream."""

    @property
    def stream_id(self) -> int: ...

    def send_nowait(self, data: bytes, *, end: bool = False) -> None:
        """Queue ``data`` (and the end of our half) without waiting for buffer space. For small control frames;
        bulk data goes through :meth:`send`. Raises ConnectionLost / StreamReset."""

    async def send(self, data: bytes, *, end: bool = False) -> None:
        """Queue ``data`` and wait until the stream's send buffer is below its limit (send-side backpressure).
        Raises ConnectionLost / StreamReset."""

    async def receive(self) -> bytes:
        """The next bytes received, ``b""`` once the peer ended its half. Raises ConnectionLost / StreamReset."""

    def reset(self, code: int) -> None:
        """Abort both halves (RESET_STREAM and STOP_SENDING). Never raises."""


class Connection(Protocol):
    @property
    def peer(self) -> NodeId:
        """The peer's node key (proven once :meth:`run` has started)."""

    @property
    def initiator(self) -> NodeId:
        """The node that dialed this connection (for resolving two simultaneous dials)."""

    @property
    def is_closed(self) -> bool: ...

    @property
    def close_reason(self) -> str: ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the connection: handshake and authentication, then ``task_status.started()``; return when it
        closes. Cancelling it closes the connection. Raises HandshakeFailed / Unauthorized / PeerUnavailable
        before ``started``."""

    def open_stream(self, *, unidirectional: bool = False) -> Stream:
        """A new locally-initiated stream (it reaches the peer with its first bytes). Raises ConnectionLost."""

    async def accept_stream(self) -> Stream:
        """The next peer-initiated stream. Raises ConnectionLost once the connection is closed."""

    def close(self, code: int = 0, reason: str = "") -> None:
        """Close the connection (idempotent); every stream fails with ConnectionLost."""


class Transport(Protocol):
    admit: ConnectionAdmitter
    """Asked for every authenticated incoming connection (the pool sets it)."""

    @property
    def node_id(self) -> NodeId: ...

    @property
    def local_address(self) -> tuple[str, int] | None:
        """Where peers reach us (None for the simulated network)."""

    async def run(self, *, task_status: trio.TaskStatus[tuple[str, int] | None] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind and serve until cancelled; ``started`` with :attr:`local_address`."""

    def connect(self, peer: NodeId, address: tuple[str, int] | None) -> Connection:
        """A connection to ``peer`` to be driven with ``run`` (which dials). ``address`` is ignored by the
        simulation."""

    async def accept(self) -> Connection:
        """The next incoming connection, to be driven with ``run`` (which authenticates it)."""
