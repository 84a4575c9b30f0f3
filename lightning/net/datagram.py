"""Datagrams: unreliable, unordered messages of at most :data:`MAX_DATAGRAM_BYTES`, for the pinger (port 4350/udp).

Two implementations of :class:`DatagramSocket`: :class:`UdpSocket` over a real trio UDP socket
(:func:`open_udp_socket`) and ``SimDatagramSocket`` on the simulated network (``SimNetwork.datagram_socket``).
Unlike the pool's streams, a datagram may be lost for good, reordered, or (on a real network) duplicated; nothing
retransmits it. Use::

    sock = await open_udp_socket("127.0.1.1", 0)      # port 0 = any free port
    try:
        await sock.send_to(b"ping", ("127.0.1.2", 4350))
        data, sender = await sock.receive_from()
    finally:
        sock.close()

Limits: a send larger than :data:`MAX_DATAGRAM_BYTES` raises :class:`DatagramTooLarge` (1,200 bytes fits every
path QUIC accepts, so it is never fragmented); a datagram arriving larger than that is dropped and counted. A send
the network refuses as unreachable (no route, host down, ICMP refused) counts as lost, like a datagram dropped on
the way; any other failure raises :class:`DatagramError`. Using a closed socket, or closing it while a task waits
in :meth:`~DatagramSocket.receive_from`, raises ``trio.ClosedResourceError``.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import trio

from lightning.errors import LocalProtocolError
from lightning.hostport import bind_error_message, join_host_port
from lightning.net.errors import NetError

__all__ = [
    "MAX_DATAGRAM_BYTES",
    "DatagramBindError",
    "DatagramError",
    "DatagramSocket",
    "DatagramStatistics",
    "DatagramTooLarge",
    "UdpSocket",
    "check_size",
    "open_udp_socket",
]

logger = logging.getLogger(__name__)

MAX_DATAGRAM_BYTES: Final = 1200
"""The largest datagram sent or accepted: QUIC's minimum path size, so no path fragments it."""

_LOST_ON_SEND: Final = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.EHOSTDOWN, errno.ENETDOWN, errno.ENOBUFS}
)
"""Errors a send reports when the datagram cannot get through: to the caller, that is a lost datagram."""

_IGNORED_ON_RECEIVE: Final = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH})
"""ICMP errors some kernels report on the next receive: they concern an earlier send, not a datagram to read."""


class DatagramError(NetError):
    """A datagram socket failed (bad destination address, unexpected socket error)."""


class DatagramBindError(DatagramError):
    """The socket could not be bound: the message names the address and what to do."""


class DatagramTooLarge(LocalProtocolError, DatagramError):
    """We tried to send more than :data:`MAX_DATAGRAM_BYTES` in one datagram."""


@dataclass(frozen=True)
class DatagramStatistics:
    """Counters of one datagram socket since it was opened."""

    sent: int
    """Datagrams handed to the network (lost or not)."""
    received: int
    """Datagrams returned by ``receive_from``."""
    queued: int
    """Datagrams waiting to be received now (simulation only; a real socket's queue is the kernel's)."""
    dropped_queue_full: int
    """Datagrams that arrived while the receive queue was full (simulation only; the kernel drops silently)."""
    dropped_oversize: int
    """Datagrams that arrived larger than :data:`MAX_DATAGRAM_BYTES` and were discarded."""
    send_failed: int
    """Sends the network refused as unreachable (counted as lost, not raised)."""


class DatagramSocket(Protocol):
    """One bound datagram endpoint. Addresses are ``(host, port)``."""

    @property
    def local_address(self) -> tuple[str, int]:
        """Where this socket is bound (the real port when bound with port 0)."""

    async def send_to(self, data: bytes, address: tuple[str, int]) -> None:
        """Send one datagram to ``address``; it may be lost or reordered. A checkpoint.
        Raises DatagramTooLarge, DatagramError, trio.ClosedResourceError."""

    async def receive_from(self) -> tuple[bytes, tuple[str, int]]:
        """Wait for the next datagram; returns it and its sender's address. Raises trio.ClosedResourceError."""

    def close(self) -> None:
        """Unbind (idempotent); a task waiting in ``receive_from`` gets trio.ClosedResourceError."""

    def statistics(self) -> DatagramStatistics: ...


def check_size(data: bytes) -> None:
    """Raise :class:`DatagramTooLarge` if ``data`` does not fit one datagram."""
    if len(data) > MAX_DATAGRAM_BYTES:
        raise DatagramTooLarge(
            f"a datagram carries at most {MAX_DATAGRAM_BYTES} bytes, got {len(data)}; "
            "split the message or send it over the pool"
        )


def _bind_error(name: str, host: str, port: int, exc: OSError) -> DatagramBindError:
    return DatagramBindError(bind_error_message(name, host, port, exc, udp=True))


async def open_udp_socket(host: str, port: int, *, name: str = "pinger") -> UdpSocket:
    """A UDP socket bound to ``host:port`` (port 0 = any free port); IPv6 if ``host`` contains a colon. ``name``
    says whose socket it is in a bind error (``pinger: cannot bind …``).

    Raises:
        DatagramBindError: the port is taken, the address is not local, permission denied, or the host does not
            resolve; the message says which and what to do.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_DGRAM)
    try:
        await sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _bind_error(name, host, port, exc) from exc
    except BaseException:
        sock.close()
        raise
    return UdpSocket(sock)


class UdpSocket:
    """Implements :class:`DatagramSocket` over a bound trio UDP socket (made by :func:`open_udp_socket`)."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock
        name = sock.getsockname()
        self._local_address = (str(name[0]), int(name[1]))
        self._closed = False
        self._sent = 0
        self._received = 0
        self._dropped_oversize = 0
        self._send_failed = 0

    @property
    def local_address(self) -> tuple[str, int]:
        return self._local_address

    async def send_to(self, data: bytes, address: tuple[str, int]) -> None:
        check_size(data)
        if self._closed:
            raise trio.ClosedResourceError("the datagram socket is closed")
        try:
            await self._sock.sendto(data, address)
        except OSError as exc:
            if isinstance(exc, socket.gaierror) or exc.errno not in _LOST_ON_SEND:
                raise DatagramError(f"cannot send a datagram to {join_host_port(*address)}: {exc}") from exc
            self._send_failed += 1
            logger.debug("datagram to %s lost: %s", join_host_port(*address), exc)
        self._sent += 1

    async def receive_from(self) -> tuple[bytes, tuple[str, int]]:
        while True:
            if self._closed:
                raise trio.ClosedResourceError("the datagram socket is closed")
            try:
                data, sender = await self._sock.recvfrom(MAX_DATAGRAM_BYTES + 1)
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:  # Windows reports a truncated datagram (Linux truncates quietly)
                    self._dropped_oversize += 1
                    continue
                if exc.errno not in _IGNORED_ON_RECEIVE:
                    raise DatagramError(f"datagram socket {join_host_port(*self._local_address)}: {exc}") from exc
                continue
            if len(data) > MAX_DATAGRAM_BYTES:
                self._dropped_oversize += 1
                continue
            self._received += 1
            return data, (str(sender[0]), int(sender[1]))

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def statistics(self) -> DatagramStatistics:
        return DatagramStatistics(
            sent=self._sent,
            received=self._received,
            queued=0,
            dropped_queue_full=0,
            dropped_oversize=self._dropped_oversize,
            send_failed=self._send_failed,
        )

    def __enter__(self) -> UdpSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


if TYPE_CHECKING:
    _check: type[DatagramSocket] = UdpSocket
