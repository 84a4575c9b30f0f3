"""The broadcast component: the sans-IO core (``core.py``) driven over the pool's broadcast scope.

Tasks (one nursery, owned by :meth:`Broadcast.run`): a timer (the core's next deadline, in a cancel scope moved
earlier whenever an input brings a nearer one), the persister (writes newly seen digests to LMDB on the writer
thread, then hands their messages to subscribers, so a message is never delivered before its digest is stored),
one sender per peer (a bounded queue; adverts and wants queued together are merged into one frame), the pinger
(round trips for the topology; keeps connections to the peer set open) and a follower of topology changes.
Frames arrive through the pool's handler, one at a time per scope.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from prometheus_client import CollectorRegistry

from lightning.broadcast.config import BroadcastConfig
from lightning.broadcast.core import (
    MAX_BATCH,
    BroadcastCore,
    CoreStatistics,
    Deliver,
    Dropped,
    Event,
    Penalize,
    Persist,
    Received,
    Rtt,
    SendFrame,
)
from lightning.broadcast.message import BroadcastError, Topic, sign_message
from lightning.broadcast.metrics import BroadcastMetrics
from lightning.broadcast.seen_store import SeenStore
from lightning.clock import WallClock
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.logs import peer_log
from lightning.net.errors import NetError
from lightning.net.pool import Pool
from lightning.net.topology import KnownNodes, Topology
from lightning.net.wire import Scope
from lightning.writer import WriterThread

__all__ = ["Broadcast", "BroadcastStatistics", "Subscription"]

logger = logging.getLogger(__name__)

MAX_SENDERS = 4096
SENDER_DRAIN = 64
PERSIST_QUEUE = 256
HOUSEKEEPING_S = 30.0
BATCH_WINDOW_S = 0.005


@dataclass(frozen=True)
class BroadcastStatistics:
    received: dict[str, int]
    published: dict[str, int]
    payloads_sent: dict[str, int]
    duplicate_adverts: int
    duplicate_payloads: int
    want_timeouts: int
    invalid: dict[str, int]
    dropped: dict[str, int]
    strikes: int
    seen: int
    wants: int
    waiting_for_subscriber: int
    retained: int
    peers: int


class Subscription:
    """Messages of one topic, through a bounded buffer. Judge each: :meth:`propagate` (valid: relay it) or
    :meth:`reject` (invalid: dropped, its sender penalised); unjudged messages are dropped unrelayed after
    ``validation_timeout_s``. Direct messages need no judgement (they are never relayed)."""

    def __init__(self, owner: Broadcast, topic: Topic, recv: trio.MemoryReceiveChannel[Received]) -> None:
        self._owner = owner
        self.topic = topic
        self._recv = recv

    async def recv(self) -> Received:
        return await self._recv.receive()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Received:
        try:
            return await self._recv.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def propagate(self, received: Received) -> None:
        self._owner._judge(received, valid=True)

    def reject(self, received: Received) -> None:
        self._owner._judge(received, valid=False)

    def close(self) -> None:
        self._owner._unsubscribe(self.topic)


class Broadcast:
    """Node component. ``send`` raises BroadcastError (not running, payload too large, sending to ourselves)."""

    def __init__(
        self,
        config: BroadcastConfig,
        pool: Pool,
        key: SigningKey,
        *,
        chain_id: int,
        known: KnownNodes,
        topology: Topology,
        wall_clock: WallClock,
        path: Path,
        epoch: Callable[[], int] = lambda: 0,
        probes_per_round: int = 2,
        inline: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> None:
        assert NodeId.of(key) == pool.node_id, "the broadcast signs with the pool's node key"
        self.config = config
        self.pool = pool
        self.key = key
        self.node_id = NodeId.of(key)
        self.chain_id = chain_id
        self.topology = topology
        self.wall_clock = wall_clock
        self.path = path
        self.probes_per_round = probes_per_round
        self._epoch = epoch
        self.core = BroadcastCore(config, node_id=NodeId.of(key), chain_id=chain_id, known=known)
        self._writer = WriterThread(f"broadcast-writer:{path}", inline=inline)
        self._subs: dict[Topic, trio.MemorySendChannel[Received]] = {}
        self._outboxes: dict[NodeId, trio.MemorySendChannel[dict[str, Any]]] = {}
        self._spawn_send, self._spawn_recv = trio.open_memory_channel[
            tuple[NodeId, trio.MemoryReceiveChannel[dict[str, Any]]]
        ](math.inf)
        self._persist_send, self._persist_recv = trio.open_memory_channel[list[Persist | Deliver]](PERSIST_QUEUE)
        self._timer_scope: trio.CancelScope | None = None
        self._running = False
        self._local: dict[str, int] = {}
        self.metrics = BroadcastMetrics(registry, self._metric_stats)

    # -- the API ------------------------------------------------------------------------------------------------------
    def subscribe(self, topic: Topic) -> Subscription:
        """The topic's messages from now on. Raises BroadcastError if the topic already has a subscriber."""
        if topic in self._subs:
            raise BroadcastError(f"topic {topic.value} already has a subscriber")
        send, recv = trio.open_memory_channel[Received](self.config.subscriber_buffer)
        self._subs[topic] = send
        self.core.subscribe(topic)
        return Subscription(self, topic, recv)

    async def send(self, topic: Topic, payload: bytes, *, to: NodeId | None = None, push: bool = False) -> bytes:
        """Sign ``payload`` and broadcast it (to every node, or to ``to`` only); returns its digest. Our own
        subscribers do not receive it. ``push``: send it whole to our peers instead of advertising it, a round trip
        sooner (for small messages every node needs at once: committed blocks; see lightning/broadcast/core.py)."""
        if not self._running:
            raise BroadcastError("the broadcast component is not running")
        if len(payload) > self.config.max_payload_bytes:
            raise BroadcastError(
                f"a {len(payload)}-byte payload exceeds [broadcast] max_payload_bytes ({self.config.max_payload_bytes})"
            )
        if to == self.node_id:
            raise BroadcastError("cannot send a direct message to ourselves")
        message = sign_message(
            self.key,
            self.chain_id,
            topic,
            epoch=self._epoch(),
            timestamp_ms=self.wall_clock.now_ms(),
            payload=payload,
            to=to,
        )
        self.core.publish(message, trio.current_time(), push=push)
        await self._dispatch()
        return message.digest

    def statistics(self) -> BroadcastStatistics:
        s = self.core.statistics()
        wants, held, retained = self.core.holding()
        return BroadcastStatistics(
            received=dict(s.received),
            published=dict(s.published),
            payloads_sent=dict(s.payloads_sent),
            duplicate_adverts=s.duplicate_adverts,
            duplicate_payloads=s.duplicate_payloads,
            want_timeouts=s.want_timeouts,
            invalid=dict(s.invalid),
            dropped=dict(self._local),
            strikes=s.strikes,
            seen=len(self.core.seen),
            wants=wants,
            waiting_for_subscriber=held,
            retained=retained,
            peers=len(self.core.active_peers(trio.current_time())) if self._running else 0,
        )

    def _metric_stats(self) -> tuple[CoreStatistics, dict[str, int], int]:
        return self.core.statistics(), dict(self._local), len(self.core.seen)

    # -- lifecycle ----------------------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        store = SeenStore(self.path, map_size=self.config.map_size_bytes)
        self._writer.start()
        try:
            since = self.wall_clock.now_ms() - round(self.config.max_age_s * 1000)
            entries, floor = await self._writer.call(store.load, since, self.config.seen_cache_entries)
            self.core.load_seen(entries, floor)
            logger.info("broadcast: %d recent digests remembered from %s", len(entries), self.path)
            self.core.set_topology(self.topology.peers())
            self.pool.on_message(Scope.BROADCAST, self._on_frame)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timer_loop)
                nursery.start_soon(self._persist_loop, store)
                nursery.start_soon(self._spawn_senders, nursery)
                nursery.start_soon(self._follow_topology)
                nursery.start_soon(self._ping_loop)
                self._running = True
                task_status.started()
        finally:
            self._running = False
            self._writer.stop()
            store.close()

    # -- inputs -------------------------------------------------------------------------------------------------------
    async def _on_frame(self, peer: NodeId, frame: Any) -> None:
        if not self._running:
            return
        self.core.receive(peer, frame, now=trio.current_time(), epoch=self._epoch(), wall_ms=self.wall_clock.now_ms())
        await self._dispatch()

    def _judge(self, received: Received, *, valid: bool) -> None:
        now = trio.current_time()
        if valid:
            self.core.propagate(received.digest, now)
        else:
            self.core.reject(received.digest, now)
        if self._running:
            self._dispatch_nowait()

    def _unsubscribe(self, topic: Topic) -> None:
        send = self._subs.pop(topic, None)
        if send is not None:
            send.close()
        self.core.subscribe(topic, False)

    # -- events -------------------------------------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        batch = self._handle(self.core.events())
        if batch:
            await self._persist_send.send(batch)

    def _dispatch_nowait(self) -> None:
        batch = self._handle(self.core.events())
        assert not batch, "only received and published messages are persisted"

    def _handle(self, events: list[Event]) -> list[Persist | Deliver]:
        batch: list[Persist | Deliver] = []
        for ev in events:
            if isinstance(ev, SendFrame):
                self._queue(ev.peer, ev.frame)
            elif isinstance(ev, Persist | Deliver):
                batch.append(ev)
                if isinstance(ev, Deliver):
                    self._observe(ev.received)
            elif isinstance(ev, Dropped):
                if ev.peer is not None and logger.isEnabledFor(logging.DEBUG):  # a drop per bad frame: keep it cheap
                    peer_log(logger, ev.peer).debug("broadcast: dropped (%s)", ev.reason)
            elif isinstance(ev, Penalize):
                if ev.cut_off_s:
                    peer_log(logger, ev.peer).warning(
                        "broadcast: cut off for %.0f s (last offence: %s)",
                        ev.cut_off_s,
                        ev.reason,
                    )
                self.pool.penalize(ev.peer, f"broadcast {ev.reason}")
            elif isinstance(ev, Rtt):
                self.topology.latency.observe(ev.peer, ev.rtt_s, trio.current_time())
        if self._timer_scope is not None:
            self._timer_scope.deadline = min(self._timer_scope.deadline, self.core.next_deadline())
        return batch

    def _observe(self, received: Received) -> None:
        self.metrics.delay.labels(topic=received.message.topic.value).observe(max(received.delay_ms, 0) / 1000)
        self.metrics.hops.observe(received.hops)

    def _count(self, what: str) -> None:
        self._local[what] = self._local.get(what, 0) + 1

    # -- tasks --------------------------------------------------------------------------------------------------------
    async def _timer_loop(self) -> None:
        while True:
            deadline = min(self.core.next_deadline(), trio.current_time() + HOUSEKEEPING_S)
            with trio.CancelScope(deadline=deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            self.core.tick(trio.current_time(), self.wall_clock.now_ms())
            self._dispatch_nowait()

    async def _persist_loop(self, store: SeenStore) -> None:
        max_age_ms = round(self.config.max_age_s * 1000)
        async for first in self._persist_recv:
            items = list(first)
            while True:
                try:
                    items += self._persist_recv.receive_nowait()
                except trio.WouldBlock:
                    break
            entries = [(ev.digest, ev.timestamp_ms) for ev in items if isinstance(ev, Persist)]
            if entries:
                prune = self.wall_clock.now_ms() - max_age_ms
                await self._writer.call(store.add, entries, prune, self.core.seen.floor_ms)
            for ev in items:
                if isinstance(ev, Deliver):
                    self._deliver(ev.received)

    def _deliver(self, received: Received) -> None:
        send = self._subs.get(received.message.topic)
        if send is None:
            self.core.abandon(received.digest)
            return
        try:
            send.send_nowait(received)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.core.abandon(received.digest)
            self._count("subscriber_full")

    def _queue(self, peer: NodeId, frame: dict[str, Any]) -> None:
        box = self._outboxes.get(peer)
        if box is None:
            if len(self._outboxes) >= MAX_SENDERS:
                self.core.not_sent(peer, frame)
                self._count("send_queue_full")
                return
            box, recv = trio.open_memory_channel[dict[str, Any]](self.config.send_queue_len)
            self._outboxes[peer] = box
            self._spawn_send.send_nowait((peer, recv))
        try:
            box.send_nowait(frame)
        except trio.WouldBlock:
            self.core.not_sent(peer, frame)
            self._count("send_queue_full")

    async def _spawn_senders(self, nursery: trio.Nursery) -> None:
        async for peer, recv in self._spawn_recv:
            nursery.start_soon(self._sender, peer, recv)

    async def _sender(self, peer: NodeId, recv: trio.MemoryReceiveChannel[dict[str, Any]]) -> None:
        last_sent = -math.inf
        async for first in recv:
            # A busy link (we sent to this peer moments ago) waits a few milliseconds so that the adverts and wants
            # of the messages in flight share frames; a quiet one sends at once.
            now = trio.current_time()
            if first.get("t") in ("adv", "want") and now - last_sent < BATCH_WINDOW_S:
                await trio.sleep_until(last_sent + BATCH_WINDOW_S)
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
            last_sent = trio.current_time()
            frames = [first]
            while len(frames) < SENDER_DRAIN:
                try:
                    frames.append(recv.receive_nowait())
                except trio.WouldBlock:
                    break
            for frame in _coalesce(frames):
                try:
                    await self.pool.send(peer, Scope.BROADCAST, frame)
                except NetError as exc:
                    peer_log(logger, peer).debug("broadcast: %s frame not sent: %s", frame.get("t"), exc)
                    self.core.not_sent(peer, frame)
                    self._count("send_failed")

    async def _follow_topology(self) -> None:
        version = -1
        while True:
            version = await self.topology.wait_changed(version)
            before = set(self.core.active_peers(trio.current_time()))
            self.core.set_topology(self.topology.peers())
            now = trio.current_time()
            for peer in self.topology.peers() - before:
                self.core.ping(peer, now)  # connect to new peers now, not at the next round
            self._dispatch_nowait()

    async def _ping_loop(self) -> None:
        while True:
            now = trio.current_time()
            targets = dict.fromkeys([*self.core.active_peers(now), *self.topology.probe_targets(self.probes_per_round)])
            for peer in targets:
                self.core.ping(peer, now)
            self._dispatch_nowait()
            await trio.sleep(self.config.ping_interval_s)


def _coalesce(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge queued adverts (and wants) into as few frames as possible; other frames keep their order, first."""
    out: list[dict[str, Any]] = []
    merged: dict[str, list[bytes]] = {"want": [], "adv": []}
    for frame in frames:
        kind = frame.get("t")
        if kind in merged:
            merged[kind].extend(frame["d"])
        else:
            out.append(frame)
    for kind, digests in merged.items():
        unique = list(dict.fromkeys(digests))
        for i in range(0, len(unique), MAX_BATCH):
            out.append({"t": kind, "d": unique[i : i + MAX_BATCH]})
    return out
