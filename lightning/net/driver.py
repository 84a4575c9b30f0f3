"""One QUIC connection: aioquic's sans-IO ``QuicConnection`` driven from trio.

Theory of operation
-------------------
aioquic's ``QuicConnection`` is a state machine: bytes and ``now`` in (``receive_datagram``, ``handle_timer``,
``send_stream_data``), datagrams (``datagrams_to_send``), events (``next_event``) and the next deadline
(``get_timer``) out. :class:`QuicConn` feeds it from three places, all on the trio thread, never polling:

* **Received datagrams.** The endpoint's single receive task (``endpoint.py``) routes each datagram by its
  connection id and calls :meth:`QuicConn.datagram_received`, then :meth:`QuicConn.flush` — after every datagram,
  because draining the whole socket before one flush delays ACKs and halves throughput.
* **The timer.** One task per connection sleeps in a cancel scope whose deadline is ``get_timer()``. Every flush
  moves that deadline (no task switch, no ``trio.Event``); when it expires the task calls ``handle_timer``.
* **Writers.** ``send`` calls ``send_stream_data`` and then the synchronous :meth:`flush`, which hands datagrams to
  the endpoint's non-blocking socket; only a full socket (``BlockingIOError``) makes anything wait.

Send-side backpressure. aioquic buffers whatever ``send_stream_data`` is given, without limit, and has no public
way to ask how much is buffered. A writer therefore waits (parked, woken when ACKs drain the buffer) while its
stream's sender holds more than ``send_buffer_bytes`` unacknowledged bytes. Receive side: aioquic grants flow
control credit as data arrives, not as it is consumed, so receive buffers are bounded one level up (one frame per
request, credit for large replies: ``wire.py``, ``pool.py``).

aioquic internals used (hence the exact pin ``aioquic==1.7.2``): ``QuicConnection._streams[id].sender``
(``_buffer_start``/``_buffer_stop``: the unacknowledged bytes) for backpressure; ``QuicConnection._close_event``
(a close received from the peer is reported at once, not after the draining period);
``QuicConnection.tls._peer_certificate`` (the certificate the peer proved in the handshake);
``_local_initial_source_connection_id``/``_remote_initial_source_connection_id`` (transcript of the client proof,
both authenticated by the handshake's transport parameters).

Authentication (``identity.py``) happens in :meth:`QuicConn.run` before ``task_status.started()``: the client checks
the server certificate's node key, then proves its own key on stream 0; the server accepts no other stream until
that proof verified and the admission callback said yes.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Final

import trio
from aioquic.quic import events
from aioquic.quic.connection import QuicConnection, stream_is_client_initiated, stream_is_unidirectional
from cryptography.hazmat.primitives import serialization

from lightning.codec import CodecError, decode, encode, frame
from lightning.ids import NodeId
from lightning.logs import PeerAdapter
from lightning.net.errors import (
    ConnectionLost,
    HandshakeFailed,
    NetError,
    PeerProtocolError,
    StreamReset,
    Unauthorized,
    WrongPeerKey,
    unwrap_group,
)
from lightning.net.identity import (
    ALPN,
    MAX_PROOF_BYTES,
    auth_transcript,
    make_client_proof,
    node_key_from_certificate,
    verify_client_proof,
)
from lightning.net.wire import CloseCode, FrameReader, ResetCode

if TYPE_CHECKING:
    from lightning.net.endpoint import QuicEndpoint

__all__ = ["QuicConn", "QuicStreamIO"]

logger = logging.getLogger(__name__)

AUTH_STREAM: Final = 0
MAX_PENDING_STREAMS: Final = 256  # peer-opened streams not yet accepted by the pool


class QuicStreamIO:
    """One stream of a :class:`QuicConn` (implements ``transport.Stream``)."""

    __slots__ = (
        "_can_recv",
        "_can_send",
        "_conn",
        "_eof",
        "_eof_seen",
        "_error",
        "_recv",
        "_recv_bytes",
        "_recv_lot",
        "_send_lot",
        "_sent_end",
        "stream_id",
    )

    def __init__(self, conn: QuicConn, stream_id: int) -> None:
        self._conn = conn
        self.stream_id = stream_id
        local = stream_is_client_initiated(stream_id) == conn.is_client
        uni = stream_is_unidirectional(stream_id)
        self._can_send = local or not uni
        self._can_recv = not local or not uni
        self._recv: deque[bytes] = deque()
        self._recv_bytes = 0  # buffered, not yet read
        self._eof = False  # the peer ended its half
        self._eof_seen = False  # ... and our reader saw it
        self._sent_end = False
        self._error: NetError | None = None
        self._recv_lot = trio.lowlevel.ParkingLot()
        self._send_lot = trio.lowlevel.ParkingLot()

    # -- sending ------------------------------------------------------------------------------------------------
    def send_nowait(self, data: bytes, *, end: bool = False) -> None:
        if self._error is not None:
            raise self._error
        assert self._can_send and not self._sent_end, "send after the end of our half"
        self._sent_end = end
        self._conn.quic.send_stream_data(self.stream_id, data, end)
        self._conn.flush()
        if end:
            self._maybe_forget()

    async def send(self, data: bytes, *, end: bool = False) -> None:
        self.send_nowait(data, end=end)
        conn = self._conn
        if self.buffered() <= conn.send_buffer_bytes:
            await trio.lowlevel.checkpoint()
            return
        conn._blocked_writers.add(self)
        try:
            while self.buffered() > conn.send_buffer_bytes // 2:
                if self._error is not None:
                    raise self._error
                await self._send_lot.park()
        finally:
            conn._blocked_writers.discard(self)

    def buffered(self) -> int:
        """Bytes written to this stream that the peer has not acknowledged yet (aioquic internals)."""
        stream = self._conn.quic._streams.get(self.stream_id)
        if stream is None:
            return 0
        sender = stream.sender
        return sender._buffer_stop - sender._buffer_start

    # -- receiving ----------------------------------------------------------------------------------------------
    async def receive(self) -> bytes:
        while not self._recv:
            if self._error is not None:
                raise self._error
            if self._eof:
                self._eof_seen = True
                self._maybe_forget()
                await trio.lowlevel.checkpoint()
                return b""
            await self._recv_lot.park()
        await trio.lowlevel.checkpoint()
        self._recv_bytes = 0
        if len(self._recv) == 1:
            return self._recv.popleft()
        data = b"".join(self._recv)
        self._recv.clear()
        return data

    def reset(self, code: int) -> None:
        if self._error is None:
            self._fail(StreamReset(f"stream {self.stream_id} reset by us", code))
        conn = self._conn
        conn._streams.pop(self.stream_id, None)
        if conn.is_closed:
            return
        try:
            if self._can_send:
                conn.quic.reset_stream(self.stream_id, code)
            if self._can_recv and not self._eof:
                conn.quic.stop_stream(self.stream_id, code)
        except ValueError:  # the stream already finished and aioquic discarded it
            pass
        conn.flush()

    # -- driven by the connection -------------------------------------------------------------------------------
    def _on_data(self, data: bytes, end: bool) -> None:
        if data:
            self._recv.append(data)
            self._recv_bytes += len(data)
            if self._recv_bytes > self._conn.recv_limit_bytes:
                self._conn.log.warning("stream %d: peer sent %d unread bytes; reset", self.stream_id, self._recv_bytes)
                self.reset(ResetCode.PROTOCOL)
                self._error = PeerProtocolError(f"stream {self.stream_id}: peer overran its receive limit")
                return
        if end:
            self._eof = True
        self._recv_lot.unpark_all()

    def _fail(self, error: NetError) -> None:
        if self._error is None:
            self._error = error
        self._recv_lot.unpark_all()
        self._send_lot.unpark_all()

    def _maybe_forget(self) -> None:
        if (self._sent_end or not self._can_send) and (self._eof_seen or not self._can_recv):
            self._conn._streams.pop(self.stream_id, None)


class QuicConn:
    """A QUIC connection to one peer (implements ``transport.Connection``)."""

    def __init__(
        self,
        endpoint: QuicEndpoint,
        quic: QuicConnection,
        *,
        expected_peer: NodeId | None,
        address: tuple[str, int] | None,
        route_cids: tuple[bytes, ...] = (),
    ) -> None:
        self.endpoint = endpoint
        self.quic = quic
        self.is_client = quic.configuration.is_client
        self.expected_peer = expected_peer
        self.address = address
        self.send_buffer_bytes = endpoint.config.send_buffer_bytes
        self.recv_limit_bytes = endpoint.config.max_frame_bytes + endpoint.config.stream_window_bytes + 65536
        self._peer: NodeId | None = expected_peer if self.is_client else None
        self._streams: dict[int, QuicStreamIO] = {}
        self._accept: deque[QuicStreamIO] = deque()
        self._accept_lot = trio.lowlevel.ParkingLot()
        # Peer stream indices already seen, per direction (uni?): all below the watermark, plus a set above it.
        # (aioquic reports a stream when its first bytes arrive in order, so streams can show up out of id order.)
        self._peer_seen_low = {False: 0, True: 0}
        self._peer_seen_above: dict[bool, set[int]] = {False: set(), True: set()}
        self._blocked_writers: set[QuicStreamIO] = set()
        self._timer_scope: trio.CancelScope | None = None
        self._timer_deadline = math.inf
        self.received_since_flush = 0
        self._sending = not self.is_client  # a client has nothing to send (no path) before connect()
        self._handshake_done = trio.Event()
        self._closed = trio.Event()
        self._authenticated = False
        self._close_code: int | None = None
        self.close_reason = ""
        self._cids: set[bytes] = set(route_cids)
        for cid in route_cids:
            endpoint.route(cid, self)
        self.log = PeerAdapter(logger, {"peer": self._describe()})

    def _describe(self) -> str:
        who = self._peer.short() if self._peer is not None else "?"
        return f"{who}@{self.address[0]}:{self.address[1]}" if self.address else who

    # -- transport.Connection -----------------------------------------------------------------------------------
    @property
    def peer(self) -> NodeId:
        assert self._peer is not None, "peer is known once the connection is authenticated"
        return self._peer

    @property
    def initiator(self) -> NodeId:
        return self.endpoint.node_id if self.is_client else self.peer

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    def open_stream(self, *, unidirectional: bool = False) -> QuicStreamIO:
        if self.is_closed:
            raise ConnectionLost(f"{self._describe()}: {self.close_reason}")
        sid = self.quic.get_next_available_stream_id(is_unidirectional=unidirectional)
        self.quic.send_stream_data(sid, b"")  # creates the stream, so the next call gets a new id
        stream = self._streams[sid] = QuicStreamIO(self, sid)
        return stream

    async def accept_stream(self) -> QuicStreamIO:
        while not self._accept:
            if self.is_closed:
                raise ConnectionLost(f"{self._describe()}: {self.close_reason}")
            await self._accept_lot.park()
        await trio.lowlevel.checkpoint()
        return self._accept.popleft()

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self.is_closed:
            return
        if self._sending:
            self.quic.close(error_code=code, reason_phrase=reason)
            self.flush()
        self._on_closed(code, reason or "closed by us", by_peer=False)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            if self.is_client:
                await self._dial()  # before the timer task: aioquic has no timer until connect()
            with unwrap_group():
                await self._drive(task_status)
        finally:
            if not self.is_closed:
                self.close(CloseCode.SHUTDOWN, "shutting down")
            for cid in self._cids:
                self.endpoint.unroute(cid, self)
            self._cids.clear()

    async def _drive(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timer_loop)
            await self._handshake_done.wait()
            if self.is_closed:
                if self._close_code in (CloseCode.UNAUTHORIZED, CloseCode.BANNED):
                    raise Unauthorized(f"{self._describe()} refused us: {self.close_reason}")
                raise HandshakeFailed(f"{self._describe()}: {self.close_reason}")
            if self.is_client:
                await self._authenticate_to_server()
            else:
                await self._authenticate_client()
            self._authenticated = True
            self.endpoint.handshake_finished(self)
            self.log = PeerAdapter(logger, {"peer": self._describe()})
            task_status.started()
            await self._closed.wait()
            nursery.cancel_scope.cancel()

    # -- handshake and authentication ---------------------------------------------------------------------------
    async def _dial(self) -> None:
        assert self.address is not None
        host, port = self.address
        try:
            infos = await trio.socket.getaddrinfo(host, port, self.endpoint.family, trio.socket.SOCK_DGRAM)
        except OSError as exc:  # gaierror: unknown host, no DNS
            raise HandshakeFailed(f"cannot resolve {host}: {exc}") from None
        if not infos:
            raise HandshakeFailed(f"{host}: no address")
        addr = infos[0][4]
        self.address = (str(addr[0]), int(addr[1]))
        self.quic.connect(self.address, now=trio.current_time())
        self._sending = True
        self.flush()

    def _fail_handshake(self, error: NetError) -> NetError:
        code = CloseCode.UNAUTHORIZED if isinstance(error, Unauthorized) else CloseCode.PROTOCOL
        self.close(code, str(error)[:200])
        return error

    def _transcript(self) -> bytes:
        local = self.quic._local_initial_source_connection_id
        remote = self.quic._remote_initial_source_connection_id
        assert remote is not None
        client_cid, server_cid = (local, remote) if self.is_client else (remote, local)
        if self.is_client:
            cert = self.quic.tls._peer_certificate
            assert cert is not None
            cert_hash = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
        else:
            cert_hash = self.endpoint.identity.certificate_hash
        return auth_transcript(client_cid, server_cid, cert_hash)

    async def _authenticate_to_server(self) -> None:
        cert = self.quic.tls._peer_certificate
        if cert is None:
            raise self._fail_handshake(HandshakeFailed("the server presented no certificate"))
        try:
            key = node_key_from_certificate(cert)
        except HandshakeFailed as exc:
            raise self._fail_handshake(exc) from None
        if key != self.expected_peer:
            assert self.expected_peer is not None
            raise self._fail_handshake(
                WrongPeerKey(
                    f"{self._describe()} proved node key {key.short()}…, not {self.expected_peer.short()}… "
                    "(wrong address, or the node changed its key)"
                )
            )
        stream = self.open_stream()
        assert stream.stream_id == AUTH_STREAM
        stream.send_nowait(frame(make_client_proof(self.endpoint.node_key, self._transcript())), end=True)
        reader = FrameReader(stream, max_frame_bytes=MAX_PROOF_BYTES)
        try:
            payload = await reader.read_frame()
            ok = payload is not None and decode(payload) == {"ok": True}
        except (PeerProtocolError, CodecError):
            ok = False
        except ConnectionLost:
            if self._close_code in (CloseCode.UNAUTHORIZED, CloseCode.BANNED):
                raise Unauthorized(f"{self._describe()} refused us: {self.close_reason}") from None
            raise HandshakeFailed(f"{self._describe()}: {self.close_reason}") from None
        if not ok:
            raise self._fail_handshake(HandshakeFailed("the server answered our proof with garbage"))
        self._streams.pop(AUTH_STREAM, None)

    async def _authenticate_client(self) -> None:
        stream = await self.accept_stream()
        reader = FrameReader(stream, max_frame_bytes=MAX_PROOF_BYTES)
        try:
            proof = await reader.read_frame()
            if proof is None:
                raise HandshakeFailed("the client ended its proof stream empty")
            key = verify_client_proof(proof, self._transcript())
        except PeerProtocolError as exc:
            raise self._fail_handshake(HandshakeFailed(f"bad client proof: {exc}")) from None
        except HandshakeFailed as exc:
            raise self._fail_handshake(exc) from None
        except ConnectionLost:
            raise HandshakeFailed(f"{self._describe()}: {self.close_reason}") from None
        self._peer = key
        refusal = self.endpoint.admit(key)
        if refusal is not None:
            self.log.info("refused connection from %s: %s", key.short(), refusal)
            raise self._fail_handshake(Unauthorized(refusal))
        stream.send_nowait(frame(encode({"ok": True})), end=True)
        self._streams.pop(AUTH_STREAM, None)

    # -- driving aioquic ----------------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        """Called by the endpoint's receive task; the endpoint flushes afterwards."""
        self.quic.receive_datagram(data, addr, now)
        self._process_events()
        if self._blocked_writers:
            low = self.send_buffer_bytes // 2
            for stream in list(self._blocked_writers):
                if stream.buffered() <= low:
                    stream._send_lot.unpark_all()

    def flush(self) -> None:
        """Send what aioquic has to send (synchronously) and move the timer to its next deadline."""
        self.received_since_flush = 0
        if not self._sending:
            return
        quic = self.quic
        datagrams = quic.datagrams_to_send(now=trio.current_time())
        if datagrams:
            self.endpoint.transmit(datagrams)
        scope = self._timer_scope
        if scope is not None:
            timer = quic.get_timer()
            deadline = math.inf if timer is None else timer
            if deadline != self._timer_deadline:  # moving a deadline is not free; it rarely changes
                self._timer_deadline = scope.deadline = deadline

    async def _timer_loop(self) -> None:
        while not self.is_closed:
            timer = self.quic.get_timer()
            self._timer_deadline = math.inf if timer is None else timer
            with trio.CancelScope(deadline=self._timer_deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            timer = self.quic.get_timer()
            now = trio.current_time()
            if timer is not None and now >= timer and not self.is_closed:
                self.quic.handle_timer(now=now)
                self._process_events()
                self.flush()

    def _process_events(self) -> None:
        quic = self.quic
        while (event := quic.next_event()) is not None:
            kind = type(event)
            if kind is events.StreamDataReceived:
                assert isinstance(event, events.StreamDataReceived)
                stream = self._streams.get(event.stream_id)
                if stream is None:
                    stream = self._new_peer_stream(event.stream_id)
                if stream is not None:
                    stream._on_data(event.data, event.end_stream)
            elif kind is events.ConnectionIdIssued:
                assert isinstance(event, events.ConnectionIdIssued)
                self._cids.add(event.connection_id)
                self.endpoint.route(event.connection_id, self)
            elif kind is events.ConnectionIdRetired:
                assert isinstance(event, events.ConnectionIdRetired)
                self._cids.discard(event.connection_id)
                self.endpoint.unroute(event.connection_id, self)
            elif kind is events.HandshakeCompleted:
                assert isinstance(event, events.HandshakeCompleted)
                if event.alpn_protocol != ALPN:
                    self.close(CloseCode.PROTOCOL, f"ALPN {event.alpn_protocol!r} is not {ALPN}")
                self._handshake_done.set()
            elif kind is events.StreamReset or kind is events.StopSendingReceived:
                assert isinstance(event, events.StreamReset | events.StopSendingReceived)
                stream = self._streams.pop(event.stream_id, None)
                if stream is not None:
                    stream._fail(StreamReset(f"stream {event.stream_id} reset by the peer", event.error_code))
            elif kind is events.ConnectionTerminated:
                assert isinstance(event, events.ConnectionTerminated)
                self._on_closed(event.error_code, event.reason_phrase, by_peer=True)
        close = quic._close_event
        if close is not None and not self.is_closed:
            self._on_closed(close.error_code, close.reason_phrase, by_peer=True)

    def _new_peer_stream(self, sid: int) -> QuicStreamIO | None:
        if stream_is_client_initiated(sid) == self.is_client:
            return None  # one of ours that we already finished or reset: late data
        uni = stream_is_unidirectional(sid)
        index = sid // 4
        above = self._peer_seen_above[uni]
        if index < self._peer_seen_low[uni] or index in above:
            return None  # a peer stream we already finished or reset
        above.add(index)
        while self._peer_seen_low[uni] in above:
            above.remove(self._peer_seen_low[uni])
            self._peer_seen_low[uni] += 1
        stream = QuicStreamIO(self, sid)
        if not self.is_client and not self._authenticated and sid != AUTH_STREAM:
            self.close(CloseCode.PROTOCOL, "a stream before authentication")
            return None
        if len(self._accept) >= MAX_PENDING_STREAMS:
            self._streams[sid] = stream
            stream.reset(ResetCode.REFUSED)
            return None
        self._streams[sid] = stream
        self._accept.append(stream)
        self._accept_lot.unpark_all()
        return stream

    def _on_closed(self, code: int, reason: str, *, by_peer: bool) -> None:
        if self.is_closed:
            return
        self._close_code = code
        self.close_reason = reason or f"closed (code {code:#x})"
        if by_peer:
            self.log.debug("closed by peer: %s (code %#x)", reason, code)
        error = ConnectionLost(f"connection to {self._describe()} closed: {self.close_reason}")
        for stream in self._streams.values():
            stream._fail(error)
        self._streams.clear()
        self._closed.set()
        self._handshake_done.set()
        self._accept_lot.unpark_all()
        if self._timer_scope is not None:
            self._timer_scope.cancel()
