"""The simulated network: many pools in one process, QUIC's semantics, one seeded RNG, trio's (mock) clock.

Use::

    async with open_sim(seed=7, nodes=3) as (net, pools):     # every pool running, on one SimNetwork
        a, b, c = pools
        b.on_request(Scope.SYNC, handler)
        await a.request(b.node_id, Scope.SYNC, {"want": 1})
        net.partition({a}, {b, c})                            # cuts a off (its connections reset)
        net.heal()
        net.set_link(a, b, latency_s=0.05, jitter_s=0.01, loss=0.1)

or build it by hand: ``net = SimNetwork(seed)``, ``nursery.start_soon(net.run)``, ``pool = net.pool()``,
``await nursery.start(pool.run)``. Run tests under ``trio.testing.MockClock(autojump_threshold=0)``; storage
inline (``Blockstore(..., inline=True)``). The pools are the production :class:`~lightning.net.pool.PeerPool`
over :class:`SimTransport`, so scopes, limits, admission, dialing and backoff are the real code.

Semantics (ARCHITECTURE.md). Each send on a stream is delivered after the link's latency plus jitter, never before
an earlier send on the same stream (streams are reliable and in order); with probability ``loss`` it is "lost"
and arrives a retransmission later (loss shows up as delay). Different streams and connections reorder freely.
Bytes in flight are lost only when their connection closes: :meth:`SimNetwork.reset`, a :meth:`partition` (which
resets every connection it cuts; dials across it go unanswered until the dialer's handshake timeout) or a pool
stopping. A dial takes two round trips (QUIC handshake, then the node-key proof). Randomness comes from one
``random.Random(seed)``; trio's scheduler is not deterministic, so tests assert invariants and print the seed.

Datagrams (:meth:`SimNetwork.datagram_socket`, the ``DatagramSocket`` protocol of ``lightning.net.datagram``) are
not streams: each one crosses the link on its own, after the link's latency plus a fresh jitter draw (so they
reorder), and with probability ``loss`` it is lost for good. A node's host name is its node id in hex
(:meth:`SimNetwork.host`); a datagram goes to the socket bound at ``(host, port)`` when it arrives, or vanishes if
none is. A datagram vanishes if a partition separates the two nodes when it is sent or when it would arrive, if
its sender has crashed (even in flight), or if the receiver's queue is full; :meth:`SimNetwork.crash` unbinds the
node's sockets, so a restarted node binds its ports again.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry

from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net.admission import Admission, OpenAdmission
from lightning.net.config import NetConfig
from lightning.net.datagram import (
    DatagramBindError,
    DatagramSocket,
    DatagramStatistics,
    check_size,
)
from lightning.net.errors import ConnectionLost, NetError, StreamReset, Unauthorized
from lightning.net.metrics import NetMetrics
from lightning.net.pool import PeerPool
from lightning.net.transport import ConnectionAdmitter
from lightning.net.wire import CloseCode

__all__ = [
    "Link",
    "SimDatagramSocket",
    "SimDatagramStatistics",
    "SimNetwork",
    "SimPool",
    "SimTransport",
    "open_sim",
]

Node = NodeId | PeerPool


@dataclass(frozen=True)
class Link:
    latency_s: float = 0.005
    jitter_s: float = 0.001
    loss: float = 0.0


@dataclass(frozen=True)
class SimDatagramStatistics:
    """What became of the datagrams sent on a :class:`SimNetwork`; every one sent ends in exactly one counter
    once it is no longer in flight."""

    sent: int
    delivered: int
    """Queued at the receiving socket."""
    lost: int
    """Dropped by the link's ``loss``."""
    blocked: int
    """Cut by a partition (at send or on arrival), or sent by a crashed node."""
    unbound: int
    """Arrived where no socket was bound (nothing there, the receiver crashed or closed it)."""
    queue_full: int
    """Arrived at a socket whose receive queue was full."""


EPHEMERAL_PORTS = range(49152, 65536)


def _key(node: Node) -> NodeId:
    return node.node_id if isinstance(node, PeerPool) else node


class SimNetwork:
    def __init__(self, seed: int, *, link: Link = Link(), config: NetConfig | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.default_link = link
        self.config = config or NetConfig()
        self._links: dict[frozenset[NodeId], Link] = {}
        self._cuts: list[tuple[frozenset[NodeId], frozenset[NodeId]]] = []
        self._transports: dict[NodeId, SimTransport] = {}
        self._conns: set[SimConn] = set()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake: trio.CancelScope | None = None
        self._datagram_sockets: dict[tuple[str, int], SimDatagramSocket] = {}
        self._hosts: dict[str, NodeId] = {}
        self._dg_sent = self._dg_delivered = self._dg_lost = self._dg_blocked = 0
        self._dg_unbound = self._dg_queue_full = 0

    # -- building ------------------------------------------------------------------------------------------------
    def pool(
        self,
        key: SigningKey | None = None,
        *,
        config: NetConfig | None = None,
        admission: Admission | None = None,
        registry: CollectorRegistry | None = None,
    ) -> SimPool:
        """A pool on this network (start it with ``nursery.start(pool.run)``). Keys come from the seeded RNG."""
        key = key or SigningKey(self.rng.randbytes(32))
        return SimPool(self, key, config=config or self.config, admission=admission, registry=registry)

    def host(self, node: Node) -> str:
        """The node's host name for datagram addresses: its node id in hex."""
        key = _key(node)
        host = str(key)
        self._hosts[host] = key
        return host

    def datagram_socket(self, node: Node, port: int, *, receive_queue_len: int = 256) -> SimDatagramSocket:
        """A datagram socket bound to ``(host(node), port)``; port 0 picks the lowest free port from 49152.
        ``receive_queue_len`` datagrams wait for :meth:`SimDatagramSocket.receive_from` at most; more are dropped.
        Deliveries need :meth:`run` running.

        Raises:
            DatagramBindError: the port is taken on that node, or out of range.
        """
        assert receive_queue_len > 0
        key = _key(node)
        host = self.host(key)
        if not 0 <= port < 65536:
            raise DatagramBindError(f"cannot bind {key.short()}…:{port}/udp: a port is 1..65535 (0 = any free port)")
        if port == 0:
            free = (p for p in EPHEMERAL_PORTS if (host, p) not in self._datagram_sockets)
            port = next(free, 0)
            if port == 0:
                raise DatagramBindError(f"cannot bind {key.short()}…:0/udp: every ephemeral port is taken")
        elif (host, port) in self._datagram_sockets:
            raise DatagramBindError(
                f"cannot bind {key.short()}…:{port}/udp on the simulated network: the port is already in use; "
                "close the socket bound there first or pick another port (0 = any)"
            )
        sock = SimDatagramSocket(self, key, (host, port), receive_queue_len)
        self._datagram_sockets[(host, port)] = sock
        return sock

    def datagram_statistics(self) -> SimDatagramStatistics:
        return SimDatagramStatistics(
            sent=self._dg_sent,
            delivered=self._dg_delivered,
            lost=self._dg_lost,
            blocked=self._dg_blocked,
            unbound=self._dg_unbound,
            queue_full=self._dg_queue_full,
        )

    # -- faults --------------------------------------------------------------------------------------------------
    def crash(self, node: Node) -> None:
        """The node vanishes without a word (SIGKILL): when its pool stops next, its connections end on its side
        only; peers keep theirs until a timeout or until the node, restarted, dials them again. Its datagram
        sockets are unbound at once: what they sent and what is in flight to them vanishes, their sends vanish,
        their receivers wait forever, and a restarted node may bind the same ports again."""
        key = _key(node)
        for conn in list(self._conns):
            if conn.local == key:
                conn.remote = None
        for sock in list(self._datagram_sockets.values()):
            if sock.node == key:
                sock._crash()

    def set_link(self, a: Node, b: Node, *, latency_s: float, jitter_s: float = 0.0, loss: float = 0.0) -> None:
        assert 0 <= loss < 1 and latency_s >= 0 and jitter_s >= 0
        self._links[frozenset((_key(a), _key(b)))] = Link(latency_s, jitter_s, loss)

    def partition(self, side_a: Iterable[Node], side_b: Iterable[Node]) -> None:
        """Nothing passes between the two sides until :meth:`heal`; connections across are reset now."""
        a, b = frozenset(map(_key, side_a)), frozenset(map(_key, side_b))
        self._cuts.append((a, b))
        for conn in list(self._conns):
            if not self.reachable(conn.local, conn.peer):
                conn._reset("partition")

    def heal(self) -> None:
        self._cuts.clear()

    def reset(self, a: Node, b: Node) -> None:
        """Reset every connection between ``a`` and ``b`` (what was in flight is lost)."""
        pair = {_key(a), _key(b)}
        for conn in list(self._conns):
            if {conn.local, conn.peer} == pair:
                conn._reset("connection reset")

    def reachable(self, a: NodeId, b: NodeId) -> bool:
        return not any((a in x and b in y) or (a in y and b in x) for x, y in self._cuts)

    # -- the wire ------------------------------------------------------------------------------------------------
    def delay(self, a: NodeId, b: NodeId) -> float:
        link = self._links.get(frozenset((a, b)), self.default_link)
        d = link.latency_s + self.rng.uniform(0, link.jitter_s)
        retransmit = max(3 * (2 * link.latency_s + link.jitter_s), 0.001)
        while link.loss and self.rng.random() < link.loss:
            d += retransmit
        return d

    def _send_datagram(self, sock: SimDatagramSocket, data: bytes, address: tuple[str, int]) -> None:
        self._dg_sent += 1
        dst = self._hosts.get(address[0])
        if sock.crashed:
            self._dg_blocked += 1
            return
        if dst is None:  # no node has that host name: nothing will ever be bound there
            self._dg_unbound += 1
            return
        if not self.reachable(sock.node, dst):
            self._dg_blocked += 1
            return
        link = self._links.get(frozenset((sock.node, dst)), self.default_link)
        if link.loss and self.rng.random() < link.loss:
            self._dg_lost += 1
            return
        at = trio.current_time() + link.latency_s + self.rng.uniform(0, link.jitter_s)
        self.schedule(at, lambda: self._arrive(sock, dst, data, address))

    def _arrive(self, src: SimDatagramSocket, dst: NodeId, data: bytes, address: tuple[str, int]) -> None:
        if src.crashed or not self.reachable(src.node, dst):
            self._dg_blocked += 1
            return
        target = self._datagram_sockets.get(address)
        if target is None:
            self._dg_unbound += 1
        elif target._enqueue(data, src.local_address):
            self._dg_delivered += 1
        else:
            self._dg_queue_full += 1

    def schedule(self, at: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), fn))
        if self._wake is not None and at < self._wake.deadline:
            self._wake.deadline = at

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver what is in flight, in time order, until cancelled."""
        task_status.started()
        heap = self._heap
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                heapq.heappop(heap)[2]()
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._wake = scope
                await trio.sleep_forever()
            self._wake = None


class SimPool(PeerPool):
    """A :class:`PeerPool` on a :class:`SimNetwork`; ``key`` is its node key."""

    def __init__(
        self,
        net: SimNetwork,
        key: SigningKey,
        *,
        config: NetConfig,
        admission: Admission | None,
        registry: CollectorRegistry | None,
    ) -> None:
        self.net = net
        self.key = key
        super().__init__(
            config,
            SimTransport(net, NodeId.of(key), config),
            admission=admission or OpenAdmission(),
            metrics=NetMetrics(registry),
            rng=random.Random(net.rng.random()),
            needs_address=False,
        )


class SimTransport:
    """Implements ``transport.Transport`` on a :class:`SimNetwork`."""

    def __init__(self, net: SimNetwork, key: NodeId, config: NetConfig) -> None:
        self.net = net
        self._key = key
        self.config = config
        self.admit: ConnectionAdmitter = lambda peer: "not serving yet"
        self._incoming_send, self._incoming_recv = trio.open_memory_channel[SimConn](config.max_handshakes)
        self.local_address: tuple[str, int] | None = None

    @property
    def node_id(self) -> NodeId:
        return self._key

    async def run(self, *, task_status: trio.TaskStatus[tuple[str, int] | None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self._key not in self.net._transports, "two pools with one key"
        self.net._transports[self._key] = self
        try:
            task_status.started(None)
            await trio.sleep_forever()
        finally:
            del self.net._transports[self._key]
            for conn in list(self.net._conns):
                if conn.local == self._key:
                    conn.close(CloseCode.SHUTDOWN, "peer shut down")

    def connect(self, peer: NodeId, address: tuple[str, int] | None) -> SimConn:
        return SimConn(self, peer, initiator=self._key)

    async def accept(self) -> SimConn:
        return await self._incoming_recv.receive()


class SimStream:
    """One stream end (implements ``transport.Stream``)."""

    def __init__(self, conn: SimConn, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self._recv: deque[bytes] = deque()
        self._eof = False
        self._error: NetError | None = None
        self._recv_lot = trio.lowlevel.ParkingLot()
        self._send_lot = trio.lowlevel.ParkingLot()
        self._in_flight = 0
        self._last_at = 0.0
        self._sent_end = False

    def send_nowait(self, data: bytes, *, end: bool = False) -> None:
        if self._error is not None:
            raise self._error
        assert not self._sent_end, "send after the end of our half"
        self._sent_end = end
        conn = self.conn
        at = max(trio.current_time() + conn.net.delay(conn.local, conn.peer), self._last_at)
        self._last_at = at
        conn.last_at = max(conn.last_at, at)
        self._in_flight += len(data)
        epoch = conn.epoch
        conn.net.schedule(at, lambda: conn._deliver(self, data, end, epoch))

    async def send(self, data: bytes, *, end: bool = False) -> None:
        self.send_nowait(data, end=end)
        limit = self.conn.config.send_buffer_bytes
        if self._in_flight <= limit:
            await trio.lowlevel.checkpoint()
            return
        while self._in_flight > limit // 2:
            if self._error is not None:
                raise self._error
            await self._send_lot.park()

    async def receive(self) -> bytes:
        while not self._recv:
            if self._error is not None:
                raise self._error
            if self._eof:
                await trio.lowlevel.checkpoint()
                return b""
            await self._recv_lot.park()
        await trio.lowlevel.checkpoint()
        data = b"".join(self._recv)
        self._recv.clear()
        return data

    def reset(self, code: int) -> None:
        if self._error is None:
            self._fail(StreamReset(f"stream {self.stream_id} reset by us", code))
        conn = self.conn
        conn._streams.pop(self.stream_id, None)
        if conn.is_closed:
            return
        epoch = conn.epoch
        at = trio.current_time() + conn.net.delay(conn.local, conn.peer)
        conn.net.schedule(at, lambda: conn._deliver_reset(self.stream_id, code, epoch))

    def _fail(self, error: NetError) -> None:
        if self._error is None:
            self._error = error
        self._recv_lot.unpark_all()
        self._send_lot.unpark_all()

    def _delivered(self, n: int) -> None:
        self._in_flight -= n
        if self._in_flight <= self.conn.config.send_buffer_bytes // 2:
            self._send_lot.unpark_all()


class SimConn:
    """One end of a simulated connection (implements ``transport.Connection``)."""

    def __init__(self, transport: SimTransport, peer: NodeId, *, initiator: NodeId) -> None:
        self.transport = transport
        self.net = transport.net
        self.config = transport.config
        self.local = transport.node_id
        self._peer = peer
        self._initiator = initiator
        self.remote: SimConn | None = None
        self.epoch = 0
        self.last_at = 0.0
        self._streams: dict[int, SimStream] = {}
        self._seen: set[int] = set()
        self._accept: deque[SimStream] = deque()
        self._accept_lot = trio.lowlevel.ParkingLot()
        self._next_id = {False: 0, True: 0}
        self._closed = trio.Event()
        self.close_reason = ""

    @property
    def peer(self) -> NodeId:
        return self._peer

    @property
    def initiator(self) -> NodeId:
        return self._initiator

    @property
    def is_client(self) -> bool:
        return self._initiator == self.local

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            if self.is_client:
                await self._handshake()
            task_status.started()
            await self._closed.wait()
        finally:
            if not self.is_closed:
                self.close(CloseCode.SHUTDOWN, "shutting down")

    async def _handshake(self) -> None:
        net = self.net
        await trio.sleep(2 * (net.delay(self.local, self._peer) + net.delay(self._peer, self.local)))
        target = net._transports.get(self._peer)
        if target is None or not net.reachable(self.local, self._peer):
            await trio.sleep_forever()  # an unanswered Initial: the dialer's handshake timeout ends it
        assert target is not None
        refusal = target.admit(self.local)
        if refusal is not None:
            raise Unauthorized(f"{self._peer.short()}… refused us: {refusal}")
        server = SimConn(target, self.local, initiator=self.local)
        try:
            target._incoming_send.send_nowait(server)
        except trio.WouldBlock:
            await trio.sleep_forever()  # the server is saturated with handshakes: dropped like an Initial
        self.remote, server.remote = server, self
        net._conns.update((self, server))

    def open_stream(self, *, unidirectional: bool = False) -> SimStream:
        if self.is_closed:
            raise ConnectionLost(f"connection to {self._peer.short()}… closed: {self.close_reason}")
        index = self._next_id[unidirectional]
        self._next_id[unidirectional] = index + 1
        sid = index * 4 + (2 if unidirectional else 0) + (0 if self.is_client else 1)
        stream = self._streams[sid] = SimStream(self, sid)
        return stream

    async def accept_stream(self) -> SimStream:
        while not self._accept:
            if self.is_closed:
                raise ConnectionLost(f"connection to {self._peer.short()}… closed: {self.close_reason}")
            await self._accept_lot.park()
        await trio.lowlevel.checkpoint()
        return self._accept.popleft()

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        if self.is_closed:
            return
        self._on_closed(reason or "closed by us")
        remote, epoch = self.remote, self.epoch
        if remote is not None:
            at = max(trio.current_time() + self.net.delay(self.local, self._peer), self.last_at)
            self.net.schedule(at, lambda: remote._on_closed(reason or f"closed by the peer (code {code:#x})", epoch))

    # -- driven by the network -----------------------------------------------------------------------------------
    def _reset(self, reason: str) -> None:
        for conn in (self, self.remote):
            if conn is not None:
                conn.epoch += 1
                conn._on_closed(reason)

    def _on_closed(self, reason: str, epoch: int | None = None) -> None:
        if self.is_closed or (epoch is not None and epoch != self.epoch):
            return
        self.close_reason = reason
        self.net._conns.discard(self)
        error = ConnectionLost(f"connection to {self._peer.short()}… closed: {reason}")
        for stream in self._streams.values():
            stream._fail(error)
        self._streams.clear()
        self._closed.set()
        self._accept_lot.unpark_all()

    def _deliver(self, stream: SimStream, data: bytes, end: bool, epoch: int) -> None:
        remote = self.remote
        if self.is_closed or epoch != self.epoch or remote is None or remote.is_closed:
            return
        stream._delivered(len(data))
        sid = stream.stream_id
        target = remote._streams.get(sid)
        if target is None:
            if sid in remote._seen or (sid % 2 == 0) == remote.is_client:
                return  # the receiver reset it, or it is one of the receiver's own, already finished
            target = remote._streams[sid] = SimStream(remote, sid)
            remote._seen.add(sid)
            remote._accept.append(target)
            remote._accept_lot.unpark_all()
        if data:
            target._recv.append(data)
        if end:
            target._eof = True
        target._recv_lot.unpark_all()

    def _deliver_reset(self, sid: int, code: int, epoch: int) -> None:
        remote = self.remote
        if self.is_closed or epoch != self.epoch or remote is None:
            return
        remote._seen.add(sid)
        target = remote._streams.pop(sid, None)
        if target is not None:
            target._fail(StreamReset(f"stream {sid} reset by the peer", code))


class SimDatagramSocket:
    """A datagram socket on a :class:`SimNetwork` (implements ``lightning.net.datagram.DatagramSocket``); made by
    :meth:`SimNetwork.datagram_socket`."""

    def __init__(self, net: SimNetwork, node: NodeId, address: tuple[str, int], receive_queue_len: int) -> None:
        self.net = net
        self.node = node
        self._address = address
        self._queue: deque[tuple[bytes, tuple[str, int]]] = deque()
        self._queue_len = receive_queue_len
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self.crashed = False
        self._sent = self._received = self._dropped = 0

    @property
    def local_address(self) -> tuple[str, int]:
        return self._address

    async def send_to(self, data: bytes, address: tuple[str, int]) -> None:
        """Send one datagram (see the module docstring for its fate). Raises DatagramTooLarge,
        trio.ClosedResourceError."""
        await trio.lowlevel.checkpoint_if_cancelled()
        check_size(data)
        if self._closed:
            raise trio.ClosedResourceError("the datagram socket is closed")
        self._sent += 1
        self.net._send_datagram(self, bytes(data), address)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def receive_from(self) -> tuple[bytes, tuple[str, int]]:
        """The next datagram and its sender's address. Raises trio.ClosedResourceError."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._closed:
                raise trio.ClosedResourceError("the datagram socket is closed")
            if self._queue:
                break
            await self._lot.park()
        self._received += 1
        item = self._queue.popleft()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._unbind()
        self._lot.unpark_all()

    def statistics(self) -> DatagramStatistics:
        return DatagramStatistics(
            sent=self._sent,
            received=self._received,
            queued=len(self._queue),
            dropped_queue_full=self._dropped,
            dropped_oversize=0,
            send_failed=0,
        )

    def __enter__(self) -> SimDatagramSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- driven by the network -----------------------------------------------------------------------------------
    def _enqueue(self, data: bytes, sender: tuple[str, int]) -> bool:
        if len(self._queue) >= self._queue_len:
            self._dropped += 1
            return False
        self._queue.append((data, sender))
        self._lot.unpark()
        return True

    def _crash(self) -> None:
        self.crashed = True
        self._queue.clear()
        self._unbind()

    def _unbind(self) -> None:
        if self.net._datagram_sockets.get(self._address) is self:
            del self.net._datagram_sockets[self._address]


if TYPE_CHECKING:
    _check: type[DatagramSocket] = SimDatagramSocket


@asynccontextmanager
async def open_sim(
    seed: int, nodes: int = 2, *, link: Link = Link(), config: NetConfig | None = None
) -> AsyncIterator[tuple[SimNetwork, list[SimPool]]]:
    """A running network with ``nodes`` running pools; everything stops when the block exits."""
    net = SimNetwork(seed, link=link, config=config)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        pools = [net.pool() for _ in range(nodes)]
        for pool in pools:
            await nursery.start(pool.run)
        yield net, pools
        nursery.cancel_scope.cancel()
