"""The QUIC endpoint: one UDP socket per node, connection-id routing, incoming connections, dialing.

One receive task reads the non-blocking socket, routes each datagram by its destination connection id (every
connection id a connection issued maps to it) and flushes that connection right away. An Initial packet with an
unknown id opens a server-side connection, unless ``max_handshakes`` are already pending. Sending is synchronous
(``transmit``); only when the kernel's buffer is full do datagrams queue for the endpoint's writer task, which waits
``wait_writable``. Version negotiation and Retry are not implemented: a client of another QUIC version gets no
answer, and address validation relies on QUIC's anti-amplification limit.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import deque
from typing import Final

import trio
from aioquic.buffer import Buffer  # type: ignore[attr-defined]  # re-exported without __all__
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicPacketType, pull_quic_header

from lightning.crypto import SigningKey
from lightning.hostport import bind_error_message
from lightning.ids import NodeId
from lightning.net.config import NetConfig
from lightning.net.driver import QuicConn
from lightning.net.errors import NetError
from lightning.net.identity import ALPN, TlsIdentity
from lightning.net.transport import ConnectionAdmitter
from lightning.net.wire import CloseCode

__all__ = ["CID_BYTES", "QuicEndpoint", "quic_configuration"]

logger = logging.getLogger(__name__)
logging.getLogger("quic").setLevel(logging.WARNING)  # aioquic logs every connection close at INFO

CID_BYTES: Final = 8
MIN_INITIAL_BYTES: Final = 1200
RECV_BYTES: Final = 65536
YIELD_EVERY: Final = 32  # datagrams handled before the receive task lets other tasks run
FLUSH_EVERY: Final = 4  # datagrams a connection receives between flushes while more are waiting


def quic_configuration(config: NetConfig, *, is_client: bool, identity: TlsIdentity | None) -> QuicConfiguration:
    """aioquic settings shared by our endpoint and the benchmark's asyncio anchor."""
    cfg = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=[ALPN],
        max_datagram_size=config.datagram_bytes,
        idle_timeout=2 * config.idle_timeout_s,
        congestion_control_algorithm=config.congestion_control,
        max_data=4 * config.stream_window_bytes,
        max_stream_data=config.stream_window_bytes,
        connection_id_length=CID_BYTES,
    )
    if is_client:
        cfg.verify_mode = ssl.CERT_NONE  # we check the node-key binding ourselves (identity.py)
    if identity is not None:
        cfg.certificate = identity.certificate
        cfg.private_key = identity.private_key
    return cfg


class QuicEndpoint:
    """Implements ``transport.Transport`` over QUIC."""

    def __init__(
        self,
        config: NetConfig,
        node_key: SigningKey,
        *,
        host: str,
        admit: ConnectionAdmitter | None = None,
        identity: TlsIdentity | None = None,
    ) -> None:
        self.config = config
        self.node_key = node_key
        self.host = host
        self.admit: ConnectionAdmitter = admit or (lambda peer: "not serving yet")
        self.identity = identity or TlsIdentity.generate(node_key)
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._server_config = quic_configuration(config, is_client=False, identity=self.identity)
        self._client_config = quic_configuration(config, is_client=True, identity=None)
        self._routes: dict[bytes, QuicConn] = {}
        self._handshaking: set[QuicConn] = set()
        self._incoming_send, self._incoming_recv = trio.open_memory_channel[QuicConn](config.max_handshakes)
        self._sock: socket.socket | None = None
        self._backlog: deque[tuple[bytes, tuple[str, int]]] = deque()
        self._backlog_lot = trio.lowlevel.ParkingLot()
        self.local_address: tuple[str, int] | None = None
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.dropped_in = 0

    @property
    def node_id(self) -> NodeId:
        return NodeId.of(self.node_key)

    # -- transport.Transport ------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[tuple[str, int] | None] = trio.TASK_STATUS_IGNORED) -> None:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                sock.setsockopt(socket.SOL_SOCKET, opt, self.config.socket_buffer_bytes)
            try:
                sock.bind((self.host, self.config.port))
            except OSError as exc:
                raise NetError(bind_error_message("quic", self.host, self.config.port, exc, udp=True)) from None
            sock.setblocking(False)
            self._sock = sock
            addr = sock.getsockname()
            self.local_address = (str(addr[0]), int(addr[1]))
            logger.info(
                "quic listening on %s:%d/udp (datagrams %d bytes, socket buffers %d/%d bytes)",
                *self.local_address,
                self.config.datagram_bytes,
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._backlog_writer, sock)
                task_status.started(self.local_address)
                await self._receive_loop(sock)
        finally:
            for conn in list(self._routes.values()):
                conn.close(CloseCode.SHUTDOWN, "shutting down")
            self._routes.clear()
            self._sock = None
            sock.close()

    def connect(self, peer: NodeId, address: tuple[str, int] | None) -> QuicConn:
        assert address is not None, "QUIC needs an address to dial"
        quic = QuicConnection(configuration=self._client_config)
        return QuicConn(self, quic, expected_peer=peer, address=address, route_cids=(quic.host_cid,))

    async def accept(self) -> QuicConn:
        conn = await self._incoming_recv.receive()
        return conn

    def handshake_finished(self, conn: QuicConn) -> None:
        self._handshaking.discard(conn)

    # -- routing ------------------------------------------------------------------------------------------------
    def route(self, cid: bytes, conn: QuicConn) -> None:
        self._routes[cid] = conn

    def unroute(self, cid: bytes, conn: QuicConn) -> None:
        if self._routes.get(cid) is conn:
            del self._routes[cid]
        self._handshaking.discard(conn)

    def _lookup(self, data: bytes) -> QuicConn | None:
        first = data[0]
        if first & 0x80:
            if len(data) < 7:
                return None
            n = data[5]
            return self._routes.get(data[6 : 6 + n])
        return self._routes.get(data[1 : 1 + CID_BYTES])

    def _accept_initial(self, data: bytes, addr: tuple[str, int]) -> QuicConn | None:
        if len(data) < MIN_INITIAL_BYTES or not data[0] & 0x80:
            return None
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=CID_BYTES)
        except ValueError:  # BufferReadError is one
            return None
        if header.packet_type != QuicPacketType.INITIAL or header.version not in self._server_config.supported_versions:
            return None
        if len(self._handshaking) >= self.config.max_handshakes:
            self.dropped_in += 1
            return None
        quic = QuicConnection(
            configuration=self._server_config, original_destination_connection_id=header.destination_cid
        )
        conn = QuicConn(
            self, quic, expected_peer=None, address=addr, route_cids=(header.destination_cid, quic.host_cid)
        )
        try:
            self._incoming_send.send_nowait(conn)
        except trio.WouldBlock:
            for cid in (header.destination_cid, quic.host_cid):
                self.unroute(cid, conn)
            self.dropped_in += 1
            return None
        self._handshaking.add(conn)
        return conn

    # -- I/O ----------------------------------------------------------------------------------------------------
    async def _receive_loop(self, sock: socket.socket) -> None:
        recvfrom = sock.recvfrom
        now = trio.current_time
        unflushed: set[QuicConn] = set()  # connections that received datagrams since their last flush
        handled = 0
        while True:
            try:
                data, addr = recvfrom(RECV_BYTES)
            except BlockingIOError:
                for waiting in unflushed:
                    waiting.flush()
                unflushed.clear()
                handled = 0
                await trio.lowlevel.wait_readable(sock)
                continue
            except OSError as exc:  # e.g. an ICMP error reported on the socket; the datagram is gone anyway
                logger.debug("quic socket error ignored: %s", exc)
                continue
            self.datagrams_in += 1
            if not data:
                continue
            conn = self._lookup(data)
            if conn is None:
                conn = self._accept_initial(data, addr)
                if conn is None:
                    continue
            if conn.is_closed:
                continue
            conn.datagram_received(data, addr, now())
            # Flush every few datagrams: ACKs and newly allowed data go out promptly (waiting for the socket to
            # drain delays ACKs and halves throughput), without building packets after every datagram.
            conn.received_since_flush += 1
            if conn.received_since_flush >= FLUSH_EVERY:
                conn.flush()
                unflushed.discard(conn)
            else:
                unflushed.add(conn)
            handled += 1
            if handled >= YIELD_EVERY:
                for waiting in unflushed:
                    waiting.flush()
                unflushed.clear()
                handled = 0
                await trio.lowlevel.checkpoint()

    def transmit(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
        """Send now, on the non-blocking socket; queue for the writer task only what the kernel refuses."""
        sock = self._sock
        if sock is None:
            return
        if self._backlog:
            self._backlog.extend(datagrams)
            return
        sendto = sock.sendto
        for i, (data, addr) in enumerate(datagrams):
            try:
                sendto(data, addr)
            except BlockingIOError:
                self._backlog.extend(datagrams[i:])
                self._backlog_lot.unpark_all()
                return
            except OSError as exc:  # unreachable network etc.: the datagram is lost; QUIC recovers or times out
                logger.debug("quic send to %s failed: %s", addr, exc)
        self.datagrams_out += len(datagrams)

    async def _backlog_writer(self, sock: socket.socket) -> None:
        backlog = self._backlog
        while True:
            while not backlog:
                await self._backlog_lot.park()
            await trio.lowlevel.wait_writable(sock)
            while backlog:
                data, addr = backlog[0]
                try:
                    sock.sendto(data, addr)
                except BlockingIOError:
                    break
                except OSError as exc:
                    logger.debug("quic send to %s failed: %s", addr, exc)
                backlog.popleft()
                self.datagrams_out += 1
