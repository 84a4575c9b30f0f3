"""The connection pool: one connection per peer, shared by every component, with a per-scope API.

Theory of operation
-------------------
Components talk to peers only through :class:`Pool`: ``send`` (a message, in order per peer and scope),
``request`` (one reply), ``open_stream`` (a large reply under the receiver's credit) and a handler per scope for
each of the three. :class:`PeerPool` implements it over any ``transport.Transport``: QUIC in production
(:func:`lightning.net.quic_pool`), the simulated network in tests (``lightning.net.sim``), so both behave alike.

Connections. A peer has at most one *primary* connection; ``send``/``request`` dial on demand (one dial per peer
at a time, shared by every caller). A failed dial sets a backoff (``backoff_min_s`` doubling to ``backoff_max_s``,
with jitter) during which calls fail at once with PeerUnavailable. If both nodes dial each other at once, both
keep the connection dialed by the node with the smaller id as primary; the other serves what arrives on it and
closes when idle. A connection without open requests, streams or messages for ``idle_timeout_s`` is closed; at
``max_connections`` the least recently used idle connection makes room (or the new one is refused).

Tasks. ``run`` owns one nursery: the transport, the acceptor of incoming connections, the spawner of dials (a
channel, so no method keeps a nursery), one dispatcher per scope for messages, and one task per connection, which
owns a nursery for that connection's driver (``Connection.run``), its stream acceptor, idle timer and one task per
incoming stream. Closing a connection cancels exactly its own tasks.

Streams and limits (wire.py, docs/net.md). Each message scope uses one long-lived unidirectional stream per
direction, so messages of a scope arrive in order; a received message goes to its scope's bounded queue (full:
dropped and counted, the sender is not slowed). Each request or large reply uses its own bidirectional stream;
a peer gets at most ``max_requests_per_peer`` handled at once (beyond: TooManyRequests), and we keep at most as
many outstanding to it (beyond: callers wait). Frames are at most ``max_frame_bytes``. A peer that breaks the
framing loses the stream (logged with its id, counted).

Peer admission (admission.py). Each connection's peer has an :class:`Access` level, asked of the admission on the
connection and on every incoming stream and message (a dictionary lookup). A ``LIMITED`` peer (authenticated, not
staked) may use only the transaction and sync scopes; at most ``max_limited_peers`` are connected at once, and each
has a token bucket (``limited_rate_per_s``, ``limited_burst``) charged for every message and stream it sends: beyond
it a message is dropped, a request or stream is reset with ``REFUSED`` (the requester sees TooManyRequests), counted
per scope, and logged at most once per ``rate_log_interval_s``. :meth:`PeerPool.recheck` (at each epoch change)
closes the connections of peers whose level dropped below the one they were admitted at.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from lightning.codec import CodecError, decode, encode, frame
from lightning.errors import LightningError, leaf_exceptions
from lightning.ids import NodeId
from lightning.logs import peer_log
from lightning.net.admission import Access, AddressBook, Admission, TokenBucket
from lightning.net.config import NetConfig
from lightning.net.errors import (
    ConnectionLost,
    HandshakeFailed,
    InternalError,
    NetError,
    NotHere,
    PeerProtocolError,
    PeerUnavailable,
    Rejected,
    RequestTimeout,
    StreamReset,
    TooManyRequests,
    Unauthorized,
)
from lightning.net.metrics import NetMetrics
from lightning.net.replies import ReplyStream, ReplyWriter
from lightning.net.transport import Connection, Stream, Transport
from lightning.net.wire import (
    PREAMBLE_BYTES,
    CloseCode,
    FrameReader,
    ResetCode,
    Scope,
    StreamKind,
    decode_reply,
    encode_error,
    encode_ok,
    parse_preamble,
    preamble,
)

__all__ = ["MessageHandler", "PeerPool", "Pool", "PoolStatistics", "RequestHandler", "StreamHandler"]

logger = logging.getLogger(__name__)

MessageHandler = Callable[[NodeId, Any], Awaitable[None]]
RequestHandler = Callable[[NodeId, Any], Awaitable[Any]]
StreamHandler = Callable[[NodeId, Any, ReplyWriter], Awaitable[None]]

BAN_AFTER_PENALTIES = 3
BAN_BASE_S = 60.0
BAN_MAX_S = 3600.0
# The CONNECTION_CLOSE reason for a connection replaced by a newer one from the same node key. Received on a
# connection we still use, it means another process holds our node key (lightning/net/duplicate.py).
SUPERSEDED = "superseded by a newer connection from the same peer"


@dataclass(frozen=True)
class PoolStatistics:
    connections: int
    peers: int
    dialing: int
    banned: int


class Pool(Protocol):
    """What components use (both :class:`PeerPool` over QUIC and over the simulated network provide it)."""

    @property
    def node_id(self) -> NodeId: ...

    def on_message(self, scope: Scope, handler: MessageHandler) -> None: ...

    def on_request(self, scope: Scope, handler: RequestHandler) -> None: ...

    def on_stream(self, scope: Scope, handler: StreamHandler) -> None: ...

    async def send(self, peer: NodeId, scope: Scope, msg: Any) -> None: ...

    async def request(self, peer: NodeId, scope: Scope, msg: Any, *, timeout_s: float | None = None) -> Any: ...

    def open_stream(
        self, peer: NodeId, scope: Scope, msg: Any, *, timeout_s: float | None = None
    ) -> AbstractAsyncContextManager[ReplyStream]: ...

    def peers(self) -> list[NodeId]: ...

    def add_address(self, peer: NodeId, address: tuple[str, int]) -> None: ...

    def penalize(self, peer: NodeId, reason: str) -> None: ...

    def statistics(self) -> PoolStatistics: ...

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None: ...


@dataclass(eq=False)
class _Conn:
    conn: Connection
    peer: NodeId
    last_used: float
    active: int = 0
    created: float = field(default_factory=trio.current_time)
    out_streams: dict[Scope, Stream] = field(default_factory=dict)
    in_message_scopes: set[Scope] = field(default_factory=set)
    access: Access = Access.NONE  # the peer's level when admitted (or at the last recheck)
    replaced: bool = False  # we closed it for a newer connection from the peer (SUPERSEDED from us, not to us)

    def touch(self) -> None:
        self.last_used = trio.current_time()


@dataclass(eq=False)
class _Dial:
    done: trio.Event = field(default_factory=trio.Event)
    conn: _Conn | None = None
    error: NetError | None = None


class _Peer:
    def __init__(self, max_requests: int) -> None:
        self.conns: list[_Conn] = []  # primary first
        self.dial: _Dial | None = None
        self.failures = 0
        self.retry_at = -math.inf
        self.last_error = ""
        self.penalties = 0
        self.banned_until = -math.inf
        self.inbound = 0
        self.outbound = trio.Semaphore(max_requests)
        self.bucket: TokenBucket | None = None  # a limited peer's rate
        self.rate_refused = 0  # since the last log line
        self.rate_log_at = -math.inf


class PeerPool:
    """The pool over one transport (see the module docstring)."""

    def __init__(
        self,
        config: NetConfig,
        transport: Transport,
        *,
        admission: Admission,
        addresses: AddressBook | None = None,
        metrics: NetMetrics | None = None,
        rng: random.Random | None = None,
        needs_address: bool = True,
    ) -> None:
        self.config = config
        self.transport = transport
        self.admission = admission
        self.addresses = addresses if addresses is not None else AddressBook()
        self.metrics = metrics if metrics is not None else NetMetrics()
        self._rng = rng if rng is not None else random.Random()
        self._needs_address = needs_address
        self._peers: dict[NodeId, _Peer] = {}
        self._conns: set[_Conn] = set()
        self._message_handlers: dict[Scope, MessageHandler] = {}
        self._request_handlers: dict[Scope, RequestHandler] = {}
        self._stream_handlers: dict[Scope, StreamHandler] = {}
        self._queues = {s: trio.open_memory_channel[tuple[NodeId, Any]](config.message_queue_len) for s in Scope}
        self._spawn_send, self._spawn_recv = trio.open_memory_channel[tuple[Connection, _Dial]](math.inf)
        self.address: tuple[str, int] | None = None
        self.on_superseded: Callable[[NodeId], None] | None = None  # a peer replaced our connection (see SUPERSEDED)
        transport.admit = self.admit_connection

    @property
    def node_id(self) -> NodeId:
        return self.transport.node_id

    # -- handlers -----------------------------------------------------------------------------------------------
    def on_message(self, scope: Scope, handler: MessageHandler) -> None:
        """``await handler(peer, msg)`` for each message of ``scope``, one at a time, in arrival order."""
        self._message_handlers[scope] = handler

    def on_request(self, scope: Scope, handler: RequestHandler) -> None:
        """``reply = await handler(peer, msg)``; raise a Rejected (NotHere, TooManyRequests …) to refuse."""
        self._request_handlers[scope] = handler

    def on_stream(self, scope: Scope, handler: StreamHandler) -> None:
        """``await handler(peer, msg, writer)``: ``await writer.start(header)``, then ``await writer.send(bytes)``."""
        self._stream_handlers[scope] = handler

    # -- the API ------------------------------------------------------------------------------------------------
    async def send(self, peer: NodeId, scope: Scope, msg: Any) -> None:
        """Send a message. Raises CodecError (not encodable / too large), PeerUnavailable, ConnectionLost (it may
        or may not have arrived)."""
        data = frame(encode(msg), max_bytes=self.config.max_frame_bytes)
        c = await self._connection(peer)
        stream = c.out_streams.get(scope)
        if stream is None:
            stream = c.conn.open_stream(unidirectional=True)
            stream.send_nowait(preamble(StreamKind.MESSAGES, scope))
            c.out_streams[scope] = stream
        c.touch()
        await stream.send(data)
        self.metrics.bytes_out[scope].inc(len(data))

    async def request(self, peer: NodeId, scope: Scope, msg: Any, *, timeout_s: float | None = None) -> Any:
        """One request, one reply. Raises Rejected subclasses, RequestTimeout, PeerUnavailable, ConnectionLost,
        PeerProtocolError, CodecError (our message)."""
        data = preamble(StreamKind.REQUEST, scope) + frame(encode(msg), max_bytes=self.config.max_frame_bytes)
        timeout = self.config.request_timeout_s if timeout_s is None else timeout_s
        with trio.move_on_after(timeout) as deadline:
            p = self._peer(peer)
            async with p.outbound:
                c = await self._connection(peer)
                started = trio.current_time()
                stream = c.conn.open_stream()
                c.active += 1
                done = False
                try:
                    await stream.send(data, end=True)
                    reader = FrameReader(stream, max_frame_bytes=self.config.max_frame_bytes)
                    payload = await reader.read_frame()
                    if payload is None:
                        raise PeerProtocolError("the stream ended without a reply")
                    self.metrics.bytes_in[scope].inc(len(payload))
                    self.metrics.latency[scope].observe(trio.current_time() - started)
                    await reader.expect_end()
                    done = True
                    return decode_reply(payload, max_bytes=self.config.max_frame_bytes)
                except PeerProtocolError as exc:
                    self._protocol_error(c, f"{scope.name.lower()} request: {exc}")
                    raise
                except StreamReset as exc:
                    _raise_refused(exc, peer, scope)
                    raise
                finally:
                    c.active -= 1
                    c.touch()
                    if not done:
                        stream.reset(ResetCode.CANCELLED)
        assert deadline.cancelled_caught
        raise RequestTimeout(f"{scope.name.lower()} request to {peer.short()}… timed out after {timeout:.1f} s")

    @asynccontextmanager
    async def open_stream(
        self, peer: NodeId, scope: Scope, msg: Any, *, timeout_s: float | None = None
    ) -> AsyncIterator[ReplyStream]:
        """``async with pool.open_stream(peer, scope, msg) as reply:`` ``reply.header``, then ``async for chunk in
        reply``. ``timeout_s`` bounds the wait for the header and any stall after. Raises like :meth:`request`."""
        data = preamble(StreamKind.STREAM, scope) + frame(encode(msg), max_bytes=self.config.max_frame_bytes)
        timeout = self.config.request_timeout_s if timeout_s is None else timeout_s
        p = self._peer(peer)
        async with p.outbound:
            with trio.move_on_after(timeout) as deadline:
                c = await self._connection(peer)
            if deadline.cancelled_caught:
                raise RequestTimeout(f"no connection to {peer.short()}… within {timeout:.1f} s")
            stream = c.conn.open_stream()
            c.active += 1
            reply: ReplyStream | None = None
            try:
                await stream.send(data)
                reader = FrameReader(stream, max_frame_bytes=self.config.max_frame_bytes)
                reply = ReplyStream(
                    stream,
                    reader,
                    window=self.config.stream_window_bytes,
                    timeout_s=timeout,
                    on_bytes=self.metrics.bytes_in[scope].inc,
                )
                started = trio.current_time()
                try:
                    await reply._start()
                except StreamReset as exc:
                    _raise_refused(exc, peer, scope)
                    raise
                self.metrics.latency[scope].observe(trio.current_time() - started)
                yield reply
            except PeerProtocolError as exc:
                self._protocol_error(c, f"{scope.name.lower()} stream: {exc}")
                raise
            finally:
                c.active -= 1
                c.touch()
                if reply is None or not reply.finished:
                    stream.reset(ResetCode.CANCELLED)

    def peers(self) -> list[NodeId]:
        """Peers with an open connection."""
        return [peer for peer, p in self._peers.items() if p.conns]

    def add_address(self, peer: NodeId, address: tuple[str, int]) -> None:
        self.addresses.add(peer, address)
        p = self._peers.get(peer)
        if p is not None:  # a new address deserves a dial now
            p.retry_at = -math.inf

    def penalize(self, peer: NodeId, reason: str) -> None:
        """Record misbehaviour. After a few penalties the peer is banned for a while (doubling) and dropped."""
        p = self._peer(peer)
        p.penalties += 1
        self.metrics.penalty(reason)
        peer_log(logger, peer).warning("penalised: %s (%d penalties)", reason, p.penalties)
        if p.penalties >= BAN_AFTER_PENALTIES:
            ban_s = min(BAN_BASE_S * 2 ** (p.penalties - BAN_AFTER_PENALTIES), BAN_MAX_S)
            p.banned_until = trio.current_time() + ban_s
            peer_log(logger, peer).warning("banned for %.0f s", ban_s)
            for c in list(p.conns):
                c.conn.close(CloseCode.BANNED, "banned")

    def recheck(self) -> int:
        """Ask the admission again about every connection (at each epoch change): close those whose peer's level
        dropped below the one it held (it may reconnect and get what it holds now), note raised ones. Returns how
        many connections were closed."""
        closed = 0
        for c in list(self._conns):
            access = self.admission.access(c.peer)
            if access >= c.access:
                c.access = access
                continue
            peer_log(logger, c.peer).info(
                "peer admission: %s → %s; closing its connection", c.access.name.lower(), access.name.lower()
            )
            c.conn.close(CloseCode.UNAUTHORIZED, f"peer admission changed: {access.name.lower()} now")
            self._unregister(c)
            self.metrics.roles_lost.inc()
            closed += 1
        self.metrics.limited_peers.set(self._limited_count())
        return closed

    def statistics(self) -> PoolStatistics:
        now = trio.current_time()
        return PoolStatistics(
            connections=len(self._conns),
            peers=len(self.peers()),
            dialing=sum(1 for p in self._peers.values() if p.dial is not None),
            banned=sum(1 for p in self._peers.values() if p.banned_until > now),
        )

    # -- lifecycle ----------------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``started`` with the transport's local address (None in simulation)."""
        async with trio.open_nursery() as nursery:
            self.address = await nursery.start(self.transport.run)
            for scope, (_, recv) in self._queues.items():
                nursery.start_soon(self._dispatch_messages, scope, recv)
            nursery.start_soon(self._accept_connections, nursery)
            nursery.start_soon(self._spawn_dials, nursery)
            task_status.started(self.address)

    async def _accept_connections(self, nursery: trio.Nursery) -> None:
        while True:
            conn = await self.transport.accept()
            nursery.start_soon(self._connection_main, conn, None)

    async def _spawn_dials(self, nursery: trio.Nursery) -> None:
        async for conn, dial in self._spawn_recv:
            nursery.start_soon(self._connection_main, conn, dial)

    async def _dispatch_messages(self, scope: Scope, recv: trio.MemoryReceiveChannel[tuple[NodeId, Any]]) -> None:
        async for peer, msg in recv:
            handler = self._message_handlers.get(scope)
            if handler is None:
                self.metrics.rejection("no_handler")
                continue
            try:
                await handler(peer, msg)
            except LightningError as exc:  # the handler judged the message bad
                peer_log(logger, peer).warning("%s message rejected: %s", scope.name.lower(), exc)
                self.metrics.rejection("bad_message")
            except Exception:  # a handler bug must not take the node down for one peer's message
                peer_log(logger, peer).exception("%s message handler failed", scope.name.lower())
                self.metrics.rejection(InternalError.code)

    # -- connections --------------------------------------------------------------------------------------------
    def _peer(self, peer: NodeId) -> _Peer:
        p = self._peers.get(peer)
        if p is None:
            p = self._peers[peer] = _Peer(self.config.max_requests_per_peer)
        return p

    def admit_connection(self, peer: NodeId) -> str | None:
        """The transport's admission callback: None, or why ``peer`` may not connect."""
        if peer == self.node_id:
            return "that is our own node key"
        p = self._peers.get(peer)
        if p is not None and p.banned_until > trio.current_time():
            return "banned"
        access = self.admission.access(peer)
        if access is Access.NONE:
            return "not admitted"
        if access is Access.LIMITED and not (p is not None and p.conns):
            if self._limited_count() >= self.config.max_limited_peers:
                self.metrics.rejection("limited_peers_full")
                return f"not staked, and {self.config.max_limited_peers} unstaked peers are connected already"
        return None

    def _limited_count(self) -> int:
        """Connected peers whose level is LIMITED now (at most ``max_connections`` lookups)."""
        access = self.admission.access
        return sum(1 for peer, p in self._peers.items() if p.conns and access(peer) is Access.LIMITED)

    async def _connection(self, peer: NodeId) -> _Conn:
        """The primary connection to ``peer``, dialing if there is none."""
        p = self._peer(peer)
        while p.conns:
            if not p.conns[0].conn.is_closed:
                return p.conns[0]
            self._unregister(p.conns[0])  # its task has not run yet to do it
        if p.dial is None:
            now = trio.current_time()
            if peer == self.node_id:
                raise PeerUnavailable("cannot connect to ourselves")
            if p.banned_until > now:
                raise PeerUnavailable(f"{peer.short()}… is banned for {p.banned_until - now:.0f} s")
            if now < p.retry_at:
                raise PeerUnavailable(
                    f"{peer.short()}… unreachable ({p.last_error}); next dial in {p.retry_at - now:.1f} s"
                )
            address = self.addresses.get(peer)
            if address is None and self._needs_address:
                raise PeerUnavailable(f"no address known for {peer.short()}…")
            if not self._make_room():
                self.metrics.dial("pool_full")
                raise PeerUnavailable(f"the pool is full ({self.config.max_connections} busy connections)")
            p.dial = _Dial()
            self._spawn_send.send_nowait((self.transport.connect(peer, address), p.dial))
        dial = p.dial
        await dial.done.wait()
        if dial.error is not None:
            raise dial.error
        assert dial.conn is not None
        return dial.conn

    def _make_room(self) -> bool:
        if len(self._conns) < self.config.max_connections:
            return True
        idle = [c for c in self._conns if c.active == 0]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last_used)
        victim.conn.close(CloseCode.POOL_FULL, "pool full: least recently used")
        self._unregister(victim)
        return True

    async def _connection_main(self, conn: Connection, dial: _Dial | None) -> None:
        c: _Conn | None = None
        try:
            async with trio.open_nursery() as nursery:
                try:
                    with trio.fail_after(self.config.handshake_timeout_s):
                        await nursery.start(conn.run)
                except trio.TooSlowError:
                    raise HandshakeFailed(
                        f"no authenticated connection within {self.config.handshake_timeout_s} s"
                    ) from None
                c = self._register(conn)
                if c is None:
                    conn.close(CloseCode.POOL_FULL, "pool full")
                    raise PeerUnavailable("the pool is full")
                if dial is not None:
                    self.metrics.dial("ok")
                    dial.conn = c
                    dial.done.set()
                nursery.start_soon(self._accept_streams, c, nursery)
                nursery.start_soon(self._idle_timer, c)
        except BaseExceptionGroup as group:
            errors = [e for e in leaf_exceptions(group) if isinstance(e, NetError)]
            if len(errors) != len(leaf_exceptions(group)):
                raise
            self._connection_failed(conn, dial, errors[0])
        except NetError as exc:
            self._connection_failed(conn, dial, exc)
        finally:
            if c is not None:
                self._unregister(c)
            if dial is not None and not dial.done.is_set():
                dial.error = ConnectionLost("the dial was abandoned")
                dial.done.set()
                if self._peers[conn.peer].dial is dial:
                    self._peers[conn.peer].dial = None

    def _connection_failed(self, conn: Connection, dial: _Dial | None, error: NetError) -> None:
        if dial is None:
            logger.debug("incoming connection failed: %s", error)
            self.metrics.rejection("handshake")
            return
        self.metrics.dial("failed")
        peer_key = conn.peer
        p = self._peer(peer_key)
        if p.dial is dial:
            p.dial = None
        p.failures += 1
        p.last_error = str(error)
        backoff = min(self.config.backoff_min_s * 2 ** (p.failures - 1), self.config.backoff_max_s)
        delay = backoff * (0.5 + self._rng.random() / 2)  # jitter: peers that lost one node do not redial in step
        p.retry_at = trio.current_time() + delay
        peer_log(logger, peer_key).info("dial failed (%s); next dial in %.2f s", error, delay)
        if isinstance(error, PeerUnavailable | Unauthorized):
            dial.error = error
        else:
            dial.error = PeerUnavailable(str(error))
        dial.done.set()

    def _register(self, conn: Connection) -> _Conn | None:
        peer = conn.peer
        p = self._peer(peer)
        if not p.conns and not self._make_room():
            return None
        c = _Conn(conn, peer, trio.current_time(), access=self.admission.access(peer))
        p.failures = 0
        p.retry_at = -math.inf
        p.dial = None
        if conn.initiator == peer:
            # The peer dialed us although a connection exists: it lost that one (it restarted, or closed it idle) —
            # unless both sides dialed at the same moment (then both connections are seconds old at most). Our side
            # of a lost connection would only swallow what we send until its idle timeout.
            settled = trio.current_time() - self.config.handshake_timeout_s
            for old in [x for x in p.conns if x.conn.initiator == peer or x.created < settled]:
                peer_log(logger, peer).info("reconnected; closing its previous connection")
                old.replaced = True
                old.conn.close(CloseCode.NORMAL, SUPERSEDED)
                self._unregister(old)
        # Two connections (simultaneous dials): both sides prefer the one dialed by the smaller node id.
        if p.conns and conn.initiator < p.conns[0].conn.initiator:
            p.conns.insert(0, c)
        else:
            p.conns.append(c)
        self._conns.add(c)
        self.metrics.connections.set(len(self._conns))
        if c.access is Access.LIMITED:
            self.metrics.limited_peers.set(self._limited_count())
        peer_log(logger, peer).debug("connected (%d connections, %s)", len(self._conns), c.access.name.lower())
        return c

    def _unregister(self, c: _Conn) -> None:
        if c not in self._conns:
            return
        if c.conn.close_reason == SUPERSEDED and not c.replaced and self.on_superseded is not None:
            self.on_superseded(c.peer)  # the peer closed it: a newer connection proved our node key to it
        self._conns.discard(c)
        p = self._peers.get(c.peer)
        if p is not None and c in p.conns:
            p.conns.remove(c)
        self.metrics.connections.set(len(self._conns))
        if c.access is Access.LIMITED:
            self.metrics.limited_peers.set(self._limited_count())
            # Any node key may connect at this level: forget what is not worth keeping, so that many keys over time
            # do not grow the peer table (a reconnect costs the peer a full handshake, bounded by max_handshakes).
            if p is not None and not p.conns and p.dial is None and p.penalties == 0 and p.inbound == 0:
                del self._peers[c.peer]

    async def _idle_timer(self, c: _Conn) -> None:
        idle = self.config.idle_timeout_s
        while True:
            now = trio.current_time()
            await trio.sleep_until(now + idle if c.active else c.last_used + idle)
            if c.active == 0 and trio.current_time() >= c.last_used + idle:
                c.conn.close(CloseCode.IDLE, "idle")
                return

    # -- incoming streams ---------------------------------------------------------------------------------------
    async def _accept_streams(self, c: _Conn, nursery: trio.Nursery) -> None:
        try:
            while True:
                stream = await c.conn.accept_stream()
                nursery.start_soon(self._serve_stream, c, stream)
        except ConnectionLost:
            nursery.cancel_scope.cancel()

    def _protocol_error(self, c: _Conn, what: str) -> None:
        peer_log(logger, c.peer).warning("protocol violation: %s", what)
        self.metrics.rejection("protocol")

    async def _serve_stream(self, c: _Conn, stream: Stream) -> None:
        reader = FrameReader(stream, max_frame_bytes=self.config.max_frame_bytes)
        try:
            kind, scope = parse_preamble(await reader.read_exact(PREAMBLE_BYTES))
            if kind is StreamKind.MESSAGES:
                await self._receive_messages(c, scope, stream, reader)
            elif self._within_rate(c.peer, scope):
                await self._serve_request(c, kind, scope, stream, reader)
            else:
                stream.reset(ResetCode.REFUSED)
        except PeerProtocolError as exc:
            self._protocol_error(c, str(exc))
            stream.reset(ResetCode.PROTOCOL)
        except ConnectionLost:
            pass

    async def _receive_messages(self, c: _Conn, scope: Scope, stream: Stream, reader: FrameReader) -> None:
        if scope in c.in_message_scopes:
            raise PeerProtocolError(f"a second {scope.name.lower()} message stream")
        c.in_message_scopes.add(scope)
        queue, _ = self._queues[scope]
        counter = self.metrics.bytes_in[scope]
        while (payload := await reader.read_frame()) is not None:
            c.touch()
            counter.inc(len(payload) + 4)
            if not self._within_rate(c.peer, scope):
                continue
            if not self.admission.access(c.peer).allows(scope):
                self.metrics.rejection("unauthorized")
                continue
            try:
                msg = decode(payload, max_bytes=self.config.max_frame_bytes)
            except CodecError as exc:
                raise PeerProtocolError(f"undecodable {scope.name.lower()} message: {exc}") from None
            try:
                queue.send_nowait((c.peer, msg))
            except trio.WouldBlock:
                self.metrics.rejection("queue_full")

    def _within_rate(self, peer: NodeId, scope: Scope) -> bool:
        """Charge a limited peer's bucket for one message or stream (any scope); False: refuse it."""
        if self.admission.access(peer) is not Access.LIMITED:
            return True
        p = self._peer(peer)
        now = trio.current_time()
        if p.bucket is None:
            p.bucket = TokenBucket(self.config.limited_rate_per_s, self.config.limited_burst, now)
        if p.bucket.take(now):
            return True
        self.metrics.rate_limited[scope].inc()
        p.rate_refused += 1
        if now >= p.rate_log_at:
            peer_log(logger, peer).debug(
                "over its rate (unstaked: %g a second): %d messages and requests refused since the last report",
                self.config.limited_rate_per_s,
                p.rate_refused,
            )
            p.rate_refused = 0
            p.rate_log_at = now + self.config.rate_log_interval_s
        return False

    async def _serve_request(
        self, c: _Conn, kind: StreamKind, scope: Scope, stream: Stream, reader: FrameReader
    ) -> None:
        msg = await reader.read_message()
        if kind is StreamKind.REQUEST:
            await reader.expect_end()
        self.metrics.bytes_in[scope].inc(reader.bytes_read)
        c.touch()
        p = self._peer(c.peer)
        refusal: Rejected | None = None
        if not self.admission.access(c.peer).allows(scope):
            refusal = Unauthorized(f"{scope.name.lower()} is not open to {c.peer.short()}…")
        elif p.inbound >= self.config.max_requests_per_peer:
            refusal = TooManyRequests(f"at most {self.config.max_requests_per_peer} requests at once")
        elif kind is StreamKind.REQUEST and scope not in self._request_handlers:
            refusal = NotHere(f"no {scope.name.lower()} request handler")
        elif kind is StreamKind.STREAM and scope not in self._stream_handlers:
            refusal = NotHere(f"no {scope.name.lower()} stream handler")
        if refusal is not None:
            self.metrics.rejection(refusal.code)
            await stream.send(encode_error(refusal), end=True)
            return
        p.inbound += 1
        c.active += 1
        try:
            if kind is StreamKind.REQUEST:
                await stream.send(await self._call_request_handler(c.peer, scope, msg), end=True)
            else:
                await self._call_stream_handler(c.peer, scope, msg, stream, reader)
        finally:
            p.inbound -= 1
            c.active -= 1
            c.touch()

    async def _call_request_handler(self, peer: NodeId, scope: Scope, msg: Any) -> bytes:
        try:
            value = await self._request_handlers[scope](peer, msg)
            data = encode_ok(value, max_bytes=self.config.max_frame_bytes)
        except Rejected as exc:
            self.metrics.rejection(exc.code)
            return encode_error(exc)
        except Exception:  # a bug in the handler must not take the node down for one peer's request
            peer_log(logger, peer).exception("%s request handler failed", scope.name.lower())
            self.metrics.rejection(InternalError.code)
            return encode_error(InternalError("the handler failed"))
        self.metrics.bytes_out[scope].inc(len(data))
        return data

    async def _call_stream_handler(
        self, peer: NodeId, scope: Scope, msg: Any, stream: Stream, reader: FrameReader
    ) -> None:
        writer = ReplyWriter(
            stream, reader, max_frame_bytes=self.config.max_frame_bytes, on_bytes=self.metrics.bytes_out[scope].inc
        )
        try:
            await self._stream_handlers[scope](peer, msg, writer)
        except Rejected as exc:
            self.metrics.rejection(exc.code)
            if writer.started:
                stream.reset(ResetCode.FAILED)
            else:
                await stream.send(encode_error(exc), end=True)
            return
        except (ConnectionLost, PeerProtocolError):
            raise
        except Exception:
            peer_log(logger, peer).exception("%s stream handler failed", scope.name.lower())
            self.metrics.rejection(InternalError.code)
            if writer.started:
                stream.reset(ResetCode.FAILED)
            else:
                await stream.send(encode_error(InternalError("the handler failed")), end=True)
            return
        await writer.finish()
        # The requester ends its half (after our end) or resets; either way we are done with the stream.
        with trio.move_on_after(self.config.request_timeout_s):
            while await reader.read_some():
                pass


def _raise_refused(exc: StreamReset, peer: NodeId, scope: Scope) -> None:
    """A request or stream the peer reset with ``REFUSED`` (over its rate for us): raise TooManyRequests."""
    if exc.reset_code == ResetCode.REFUSED:
        raise TooManyRequests(f"{peer.short()}… refused the {scope.name.lower()} request (rate limit)") from None
