"""The broadcast protocol's bookkeeping, sans-IO: frames and ``now`` in, events out (docs/broadcast.md).

Theory of operation
-------------------
A node that has a message it may relay *advertises* its digest to its peers; a peer that lacks it *wants* it from
one advertiser at a time; the advertiser sends the *message*. A node never wants a digest twice from one peer, and a
node only advertises what it already holds, so the payload crosses each link at most once. Frames (maps on the
pool's broadcast scope, one per pool message):

========  =======================================  ==================================================================
``t``     fields                                   on receipt
========  =======================================  ==================================================================
``adv``   ``d``: 1..256 digests                    unseen digests: want each from its first advertiser not yet asked
``want``  ``d``: 1..256 digests                    send each held, relayable message once to that peer
``msg``   ``m``: message, ``h``: hops so far       only if we wanted it from that peer: check, record, deliver
``push``  ``m``: message                           only from its origin (hops 1): check, record, deliver
``ping``  ``n``: nonce                             answer ``pong`` (at most twice a second per peer)
``pong``  ``n``: nonce                             a round-trip sample for the topology
========  =======================================  ==================================================================

Unknown ``t`` values are ignored (newer versions may add frames); a malformed known frame is an offence.

An origin may *push* its own new message whole instead of advertising it (``publish(push=True)``; committed blocks):
nobody else holds it yet, so each peer would want it from the origin anyway, and the push saves that round trip. Only
the origin may push a message (anyone else's push is ``unsolicited``), so a peer can make us check no more than the
messages it could make us want; the payload still crosses each link at most once. A push that could not be sent is
advertised later, like an unsent advert. Older versions ignore ``push`` frames and get the message from relays.

The life of a digest here::

    advert ──▶ WANTED ──msg ok──▶ HELD (subscriber judges) ──propagate──▶ RETAINED (advertised; answers wants)
                 │  ▲ timeout / bad signature: ask the next advertiser       │ reject: sender penalised
                 └──┘ (no advertiser left: wait for another until want TTL)  └ timeout: dropped unrelayed

A topic nobody here subscribes to is relayed once the envelope checks pass (nobody can judge its payload here). A
direct message (``to`` = us) is delivered and never relayed. Our own messages start RETAINED.

The envelope checks (origin known, topic, epoch, clock window, dedup floor, ``to``) read only fields inside the
signed body, which the digest covers: every advertiser would send the same failing body, so the digest is dropped
at once. Only a bad signature (outside the body) makes us ask another advertiser.

Offences weigh in per peer (``OFFENCES``); the score decays with a half-life of ``SCORE_HALF_LIFE_S``; each whole
point is a *strike*, reported as a ``Penalize`` event (the pool bans after three). After ``STRIKES_TO_CUT_OFF``
strikes the peer is cut off here too: its frames are ignored and nothing is sent to it, for ``CUT_OFF_S``
(doubling with each further strike). Checks that depend on our own view (epoch, clock, registry) weigh little, as
an honest peer whose view differs slightly may fail them.

Adverts that could not be sent (queue full, peer unreachable) are remembered per peer and sent again when the peer
is heard from, while the message is still retained: a healed partition catches up on the last ``retain_s``.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lightning.broadcast.config import BroadcastConfig
from lightning.broadcast.message import DIGEST_BYTES, InvalidMessage, Message, Topic, message_from_wire
from lightning.broadcast.seen import SeenCache
from lightning.ids import NodeId
from lightning.net.known import KnownNodes

__all__ = [
    "MAX_BATCH",
    "OFFENCES",
    "BroadcastCore",
    "CoreStatistics",
    "Deliver",
    "Dropped",
    "Event",
    "Penalize",
    "Persist",
    "Received",
    "Rtt",
    "SendFrame",
]

MAX_BATCH = 256
MAX_ADVERTISERS = 8
MAX_PEERS = 10_000
MAX_HOPS = 255
MAX_UNSENT_PER_PEER = 4096
WANT_TTL_S = 60.0
REJECTED_MEMORY = 4096
SCORE_HALF_LIFE_S = 600.0
STRIKES_TO_CUT_OFF = 3
CUT_OFF_S = 60.0
CUT_OFF_MAX_S = 3600.0
PING_MIN_INTERVAL_S = 0.5

# reason -> weight; 1.0 is a strike. Zero: dropped and counted, not held against the sender.
OFFENCES: dict[str, float] = {
    "malformed": 1.0,
    "oversize": 1.0,
    "bad_signature": 1.0,
    "rejected_by_subscriber": 1.0,
    "unknown_topic": 0.5,
    "unsolicited": 0.5,
    "not_for_us": 0.5,
    "unknown_origin": 0.25,
    "past_epoch": 0.1,
    "too_old": 0.1,
    "too_new": 0.1,
    "repeated_want": 0.1,
    "future_epoch": 0.0,
    "before_floor": 0.0,
}


# -- events -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SendFrame:
    peer: NodeId
    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Received:
    """A message for a subscriber: ``sender`` is the peer it came from, ``hops`` its distance from the origin."""

    message: Message
    sender: NodeId
    hops: int
    delay_ms: int

    @property
    def digest(self) -> bytes:
        return self.message.digest


@dataclass(frozen=True, slots=True)
class Persist:
    """Record ``digest`` as seen before any Deliver that follows it is handed to a subscriber."""

    digest: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Deliver:
    received: Received


@dataclass(frozen=True, slots=True)
class Penalize:
    peer: NodeId
    reason: str
    cut_off_s: float  # > 0: the peer is cut off for this long from now


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: str
    peer: NodeId | None


@dataclass(frozen=True, slots=True)
class Rtt:
    peer: NodeId
    rtt_s: float


Event = SendFrame | Persist | Deliver | Penalize | Dropped | Rtt


@dataclass(frozen=True)
class CoreStatistics:
    """A snapshot of the core's counters (:meth:`BroadcastCore.statistics`)."""

    received: dict[str, int] = field(default_factory=dict)  # topic -> valid new messages from peers
    published: dict[str, int] = field(default_factory=dict)  # topic -> our own
    payloads_sent: dict[str, int] = field(default_factory=dict)  # topic -> message frames sent
    duplicate_adverts: int = 0
    duplicate_payloads: int = 0
    invalid: dict[str, int] = field(default_factory=dict)  # reason -> messages or frames dropped
    want_timeouts: int = 0
    wants_expired: int = 0
    want_queue_full: int = 0
    validation_timeouts: int = 0
    unknown_wants: int = 0
    ignored_cut_off: int = 0
    strikes: int = 0


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


# -- state ----------------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Want:
    created: float
    first: NodeId
    advertisers: list[NodeId] = field(default_factory=list)
    asked: set[NodeId] = field(default_factory=set)
    current: NodeId | None = None
    attempt: int = 0


@dataclass(eq=False)
class _Held:
    message: Message
    wire: dict[str, Any]
    hops: int
    sender: NodeId | None
    known_by: set[NodeId]
    size: int
    sent_to: set[NodeId] = field(default_factory=set)
    deadline: float = math.inf


@dataclass(eq=False)
class _Peer:
    score: float = 0.0
    score_at: float = 0.0
    strikes: int = 0
    cut_until: float = -math.inf
    last_gossip: float = -math.inf  # its last advert or want: it counts us among its peers
    tracked: int = 0  # wants this peer was the first to advertise
    unsent: set[bytes] = field(default_factory=set)
    ping_nonce: int = 0
    ping_sent_at: float | None = None
    last_ping_in: float = -math.inf


class BroadcastCore:
    """See the module docstring. Inputs: :meth:`receive`, :meth:`publish`, :meth:`propagate`, :meth:`reject`,
    :meth:`abandon`, :meth:`not_sent`, :meth:`ping`, :meth:`tick`, :meth:`set_topology`, :meth:`subscribe`. Output:
    :meth:`events` (in order), :meth:`next_deadline`."""

    def __init__(self, config: BroadcastConfig, *, node_id: NodeId, chain_id: int, known: KnownNodes) -> None:
        self.config = config
        self.node_id = node_id
        self.chain_id = chain_id
        self.known = known
        self.seen = SeenCache(config.seen_cache_entries)
        # Counted in a plain dict on the hot path; CoreStatistics(**…) in statistics() rejects any misspelled name.
        self._counts: dict[str, Any] = dataclasses.asdict(CoreStatistics())
        self._max_age_ms = round(config.max_age_s * 1000)
        self._max_skew_ms = round(config.max_skew_s * 1000)
        self._wants: dict[bytes, _Want] = {}
        self._held: OrderedDict[bytes, _Held] = OrderedDict()  # waiting for the subscriber
        self._retained: OrderedDict[bytes, _Held] = OrderedDict()  # relayed; answers wants
        self._retained_expiry: dict[bytes, float] = {}
        self._retained_bytes = 0
        self._rejected: OrderedDict[bytes, None] = OrderedDict()  # digests whose body failed the envelope checks
        self._peers: dict[NodeId, _Peer] = {}
        self._topology: frozenset[NodeId] = frozenset()
        self._subscribed: set[Topic] = set()
        self._events: list[Event] = []
        self._adv_out: dict[NodeId, list[bytes]] = {}
        self._want_out: dict[NodeId, list[bytes]] = {}
        self._timers: list[tuple[float, int, str, bytes, int]] = []
        self._seq = itertools.count()

    def statistics(self) -> CoreStatistics:
        snapshot: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in self._counts.items()}
        return CoreStatistics(**snapshot)

    def _bump(self, name: str) -> None:
        self._counts[name] += 1

    def set_topology(self, peers: Iterable[NodeId]) -> None:
        self._topology = frozenset(p for p in peers if p != self.node_id)

    def subscribe(self, topic: Topic, subscribed: bool = True) -> None:
        if subscribed:
            self._subscribed.add(topic)
        else:
            self._subscribed.discard(topic)

    def load_seen(self, entries: Iterable[tuple[bytes, int]], floor_ms: int) -> None:
        self.seen.load(entries, floor_ms)

    # -- outputs ----------------------------------------------------------------------------------------------------
    def events(self) -> list[Event]:
        """Everything the inputs so far asked for, in order (adverts and wants batched per peer, last)."""
        for out, kind in ((self._want_out, "want"), (self._adv_out, "adv")):
            for peer, digests in out.items():
                for i in range(0, len(digests), MAX_BATCH):
                    self._events.append(SendFrame(peer, {"t": kind, "d": digests[i : i + MAX_BATCH]}))
            out.clear()
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float:
        return self._timers[0][0] if self._timers else math.inf

    def active_peers(self, now: float) -> list[NodeId]:
        """Whom we advertise to: our topology, plus peers that advertised to us or wanted from us lately (their
        topology includes us), the most recent first, at most ``max_inbound_peers`` of them. Never a cut-off peer."""
        recent = now - 3 * self.config.ping_interval_s
        inbound = sorted(
            (
                (st.last_gossip, p, p)
                for p, st in self._peers.items()
                if p not in self._topology and st.last_gossip >= recent and st.cut_until <= now
            ),
            reverse=True,
        )[: self.config.max_inbound_peers]
        out = [p for p in sorted(self._topology, key=lambda k: k) if not self._is_cut(p, now)]
        return out + [p for _, _, p in inbound]

    def is_cut_off(self, peer: NodeId, now: float) -> bool:
        return self._is_cut(peer, now)

    def holding(self) -> tuple[int, int, int]:
        """(wants in flight, messages waiting for a subscriber, messages retained)."""
        return len(self._wants), len(self._held), len(self._retained)

    # -- inputs -----------------------------------------------------------------------------------------------------
    def publish(self, message: Message, now: float, *, push: bool = False) -> None:
        """Our own message (signed by us): advertise it (to ``message.to`` only, for a direct message); with
        ``push``, send it whole to those peers instead (see the module docstring)."""
        assert message.origin == self.node_id and message.digest
        d = message.digest
        if d in self.seen:
            return  # the same body twice (same timestamp): already out
        self.seen.add(d, message.timestamp_ms)
        self._events.append(Persist(d, message.timestamp_ms))
        topic = message.topic.value
        _count(self._counts["published"], topic)
        wire = message.to_wire()
        held = _Held(message, wire, 0, None, set(), len(message.payload) + 200)
        if message.to is not None:
            self._retain(d, held, now)
            self._offer(message.to, d, held, push=push)
        else:
            self._relay(d, held, now, push=push)

    def propagate(self, digest: bytes, now: float) -> bool:
        """The subscriber found the message valid: relay it. False if it is no longer waiting (timed out)."""
        held = self._held.pop(digest, None)
        if held is None:
            return False
        self._relay(digest, held, now)
        return True

    def reject(self, digest: bytes, now: float) -> bool:
        """The subscriber found the message invalid: drop it and hold it against the peer that sent it."""
        held = self._held.pop(digest, None)
        if held is None:
            return False
        if held.sender is not None:
            self._offence(held.sender, "rejected_by_subscriber", now)
        return True

    def abandon(self, digest: bytes) -> None:
        """The message could not be handed to its subscriber (buffer full): forget it unrelayed."""
        self._held.pop(digest, None)

    def not_sent(self, peer: NodeId, frame: dict[str, Any]) -> None:
        """A frame to ``peer`` was dropped (queue full, peer unreachable). Adverts are sent again once the peer is
        heard from; wants and messages recover through the want timeout (a message may then be wanted again)."""
        kind = frame.get("t")
        st = self._peer(peer)
        if kind in ("msg", "push"):
            d = message_from_wire(frame["m"], chain_id=self.chain_id, max_payload_bytes=2**63).digest  # ours
            held = self._retained.get(d)
            if held is not None:
                held.sent_to.discard(peer)
                if kind == "push" and st is not None and len(st.unsent) < MAX_UNSENT_PER_PEER:
                    st.unsent.add(d)  # never reached it: advertise it when the peer is heard from
            return
        if kind != "adv" or st is None:
            return
        for d in frame["d"]:
            if d in self._retained and len(st.unsent) < MAX_UNSENT_PER_PEER:
                st.unsent.add(d)

    def ping(self, peer: NodeId, now: float) -> None:
        st = self._peer(peer)
        if st is None or peer == self.node_id or self._is_cut(peer, now):
            return
        st.ping_nonce = (st.ping_nonce + 1) % 2**32
        st.ping_sent_at = now
        self._events.append(SendFrame(peer, {"t": "ping", "n": st.ping_nonce}))

    def tick(self, now: float, wall_ms: int) -> None:
        """Run the timers due at ``now``; expire seen digests older than the clock window."""
        self.seen.expire(wall_ms - self._max_age_ms)
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, d, token = heapq.heappop(timers)
            if kind == "want":
                w = self._wants.get(d)
                if w is not None and w.attempt == token and w.current is not None:
                    self._bump("want_timeouts")
                    w.current = None
                    self._ask(d, w, now)
            elif kind == "want_ttl":
                w = self._wants.get(d)
                if w is not None and now >= w.created + WANT_TTL_S:
                    self._bump("wants_expired")
                    self._remove_want(d)
            elif kind == "validate":
                held = self._held.get(d)
                if held is not None and now >= held.deadline:
                    del self._held[d]
                    self._bump("validation_timeouts")
                    self._events.append(Dropped("validation_timeout", held.sender))
            elif kind == "retain":
                expiry = self._retained_expiry.get(d)
                if expiry is not None and now >= expiry:
                    self._unretain(d)

    def receive(self, peer: NodeId, frame: Any, *, now: float, epoch: int, wall_ms: int) -> None:
        """A frame from ``peer`` (decoded by the pool)."""
        if peer == self.node_id:
            return
        st = self._peer(peer)
        if st is None:
            self._events.append(Dropped("too_many_peers", peer))
            return
        if self._is_cut(peer, now):
            self._bump("ignored_cut_off")
            return
        if st.unsent:
            for d in sorted(st.unsent):
                if d in self._retained:
                    self._advertise(peer, d)
            st.unsent.clear()
        try:
            if not isinstance(frame, dict) or not isinstance(frame.get("t"), str):
                raise InvalidMessage("malformed", "a frame is a map with a string t")
            kind = frame["t"]
            if kind in ("adv", "want"):
                st.last_gossip = now  # pings alone (latency probes) do not make a peer a gossip peer
            if kind == "adv":
                self._on_adverts(peer, st, _digests(frame), now)
            elif kind == "want":
                self._on_wants(peer, _digests(frame), now)
            elif kind == "msg":
                self._on_message(peer, frame, now, epoch, wall_ms)
            elif kind == "push":
                self._on_push(peer, frame, now, epoch, wall_ms)
            elif kind == "ping":
                if isinstance(frame.get("n"), int) and now - st.last_ping_in >= PING_MIN_INTERVAL_S:
                    st.last_ping_in = now
                    self._events.append(SendFrame(peer, {"t": "pong", "n": frame["n"]}))
            elif kind == "pong":
                if frame.get("n") == st.ping_nonce and st.ping_sent_at is not None:
                    self._events.append(Rtt(peer, now - st.ping_sent_at))
                    st.ping_sent_at = None
            # other kinds: a newer protocol version; ignored
        except InvalidMessage as exc:
            self._offence(peer, exc.reason, now)

    # -- frames -----------------------------------------------------------------------------------------------------
    def _on_adverts(self, peer: NodeId, st: _Peer, digests: list[bytes], now: float) -> None:
        for d in digests:
            if d in self.seen:
                self._bump("duplicate_adverts")
                held = self._retained.get(d) or self._held.get(d)
                if held is not None:
                    held.known_by.add(peer)
                continue
            if d in self._rejected:
                continue
            w = self._wants.get(d)
            if w is None:
                if len(self._wants) >= self.config.want_queue_len:
                    self._bump("want_queue_full")
                    self._events.append(Dropped("want_queue_full", peer))
                    continue
                if st.tracked >= self.config.want_queue_len // 4:
                    continue  # one peer may not fill the queue with digests nobody else has
                w = self._wants[d] = _Want(created=now, first=peer)
                st.tracked += 1
                self._timer(now + WANT_TTL_S, "want_ttl", d)
            if peer not in w.advertisers:
                if len(w.advertisers) < MAX_ADVERTISERS:
                    w.advertisers.append(peer)
            elif w.current is None:
                w.asked.discard(peer)  # advertised again (e.g. after a partition): it may answer now
            if w.current is None:
                self._ask(d, w, now)

    def _on_wants(self, peer: NodeId, digests: list[bytes], now: float) -> None:
        for d in digests:
            held = self._retained.get(d)
            if held is None:
                self._bump("unknown_wants")  # never advertised to it, or no longer retained
                continue
            if peer in held.sent_to:
                self._offence(peer, "repeated_want", now)
                continue
            held.sent_to.add(peer)
            held.known_by.add(peer)
            self._events.append(SendFrame(peer, {"t": "msg", "m": held.wire, "h": min(held.hops + 1, MAX_HOPS)}))
            topic = held.message.topic.value
            _count(self._counts["payloads_sent"], topic)

    def _on_message(self, peer: NodeId, frame: dict[str, Any], now: float, epoch: int, wall_ms: int) -> None:
        hops = frame.get("h", 0)
        if not isinstance(hops, int) or isinstance(hops, bool) or not 0 <= hops <= MAX_HOPS:
            raise InvalidMessage("malformed", "hops is not an integer 0..255")
        msg = message_from_wire(frame.get("m"), chain_id=self.chain_id, max_payload_bytes=self.config.max_payload_bytes)
        d = msg.digest
        w = self._wants.get(d)
        if w is None or peer not in w.asked:
            if d in self.seen or d in self._rejected:
                self._bump("duplicate_payloads")  # an answer to a want that timed out, after another arrived
                return
            raise InvalidMessage("unsolicited", "a message we did not want from this peer")
        self._check_or_forget(msg, epoch, wall_ms)
        try:
            msg.verify()
        except InvalidMessage:
            if w.current == peer:
                w.current = None
                self._ask(d, w, now)  # the body is fine; another advertiser may hold a good signature
            raise
        known_by = set(w.advertisers)
        known_by.add(peer)
        self._remove_want(d)
        self._accept(peer, msg, frame["m"], hops, known_by, now, wall_ms)

    def _on_push(self, peer: NodeId, frame: dict[str, Any], now: float, epoch: int, wall_ms: int) -> None:
        msg = message_from_wire(frame.get("m"), chain_id=self.chain_id, max_payload_bytes=self.config.max_payload_bytes)
        if msg.origin != peer:
            raise InvalidMessage("unsolicited", "a pushed message from a peer that is not its origin")
        d = msg.digest
        if d in self.seen or d in self._rejected:
            self._bump("duplicate_payloads")
            return
        self._check_or_forget(msg, epoch, wall_ms)
        msg.verify()
        w = self._wants.get(d)  # advertised by a relay before the push arrived
        known_by = {peer, *(w.advertisers if w is not None else ())}
        self._remove_want(d)
        self._accept(peer, msg, frame["m"], 1, known_by, now, wall_ms)

    def _check_or_forget(self, msg: Message, epoch: int, wall_ms: int) -> None:
        """The envelope checks; a body that fails them is remembered as rejected and never fetched again."""
        try:
            self._check_envelope(msg, epoch, wall_ms)
        except InvalidMessage:
            d = msg.digest
            self._remove_want(d)
            self._rejected[d] = None
            while len(self._rejected) > REJECTED_MEMORY:
                self._rejected.popitem(last=False)
            raise

    def _accept(
        self,
        peer: NodeId,
        msg: Message,
        wire: dict[str, Any],
        hops: int,
        known_by: set[NodeId],
        now: float,
        wall_ms: int,
    ) -> None:
        """A checked message new here: record it, then deliver it (held until judged) or relay it."""
        d = msg.digest
        self.seen.add(d, msg.timestamp_ms)
        self._events.append(Persist(d, msg.timestamp_ms))
        topic = msg.topic.value
        _count(self._counts["received"], topic)
        received = Received(msg, peer, hops, wall_ms - msg.timestamp_ms)
        if msg.origin == self.node_id:
            return  # our own, from before a restart: seen now, nothing else to do
        if msg.to is not None:
            self._events.append(Deliver(received))  # direct: delivered, never relayed
            return
        held = _Held(msg, wire, hops, peer, known_by, len(msg.payload) + 200)
        if msg.topic in self._subscribed:
            held.deadline = now + self.config.validation_timeout_s
            self._held[d] = held
            self._timer(held.deadline, "validate", d)
            while len(self._held) > self.config.subscriber_buffer * 4:
                _, old = self._held.popitem(last=False)
                self._bump("validation_timeouts")
                self._events.append(Dropped("validation_overflow", old.sender))
            self._events.append(Deliver(received))
        else:
            self._relay(d, held, now)

    def _check_envelope(self, msg: Message, epoch: int, wall_ms: int) -> None:
        if msg.origin not in self.known and msg.origin != self.node_id:
            raise InvalidMessage("unknown_origin", f"origin {msg.origin.short()}… is not a known node")
        if msg.to is not None and msg.to != self.node_id:
            raise InvalidMessage("not_for_us", f"a direct message for {msg.to.short()}…")
        if msg.epoch < epoch:
            raise InvalidMessage("past_epoch", f"epoch {msg.epoch}, ours is {epoch}")
        if msg.epoch > epoch + self.config.future_epochs:
            raise InvalidMessage("future_epoch", f"epoch {msg.epoch}, ours is {epoch}")
        if msg.timestamp_ms < wall_ms - self._max_age_ms:
            raise InvalidMessage("too_old", f"timestamped {(wall_ms - msg.timestamp_ms) / 1000:.1f} s ago")
        if msg.timestamp_ms > wall_ms + self._max_skew_ms:
            raise InvalidMessage("too_new", f"timestamped {(msg.timestamp_ms - wall_ms) / 1000:.1f} s ahead")
        if msg.timestamp_ms <= self.seen.floor_ms:
            raise InvalidMessage("before_floor", "older than what the full dedup cache remembers")

    # -- helpers ----------------------------------------------------------------------------------------------------
    def _peer(self, peer: NodeId) -> _Peer | None:
        st = self._peers.get(peer)
        if st is None:
            if len(self._peers) >= MAX_PEERS:
                return None
            st = self._peers[peer] = _Peer()
        return st

    def _is_cut(self, peer: NodeId, now: float) -> bool:
        st = self._peers.get(peer)
        return st is not None and st.cut_until > now

    def _timer(self, at: float, kind: str, d: bytes, token: int = 0) -> None:
        heapq.heappush(self._timers, (at, next(self._seq), kind, d, token))

    def _advertise(self, peer: NodeId, d: bytes) -> None:
        self._adv_out.setdefault(peer, []).append(d)

    def _ask(self, d: bytes, w: _Want, now: float) -> None:
        for peer in w.advertisers:
            if peer not in w.asked and not self._is_cut(peer, now):
                w.asked.add(peer)
                w.current = peer
                w.attempt += 1
                self._want_out.setdefault(peer, []).append(d)
                self._timer(now + self.config.want_timeout_s, "want", d, w.attempt)
                return
        w.current = None  # wait for another advert, until the want's TTL

    def _remove_want(self, d: bytes) -> None:
        w = self._wants.pop(d, None)
        if w is not None:
            st = self._peers.get(w.first)
            if st is not None:
                st.tracked -= 1

    def _relay(self, d: bytes, held: _Held, now: float, *, push: bool = False) -> None:
        self._retain(d, held, now)
        origin = held.message.origin
        for peer in self.active_peers(now):
            if peer not in held.known_by and peer != origin:
                self._offer(peer, d, held, push=push)

    def _offer(self, peer: NodeId, d: bytes, held: _Held, *, push: bool) -> None:
        """Advertise ``d`` to ``peer``, or (``push``, our own message) send it whole."""
        if not push:
            self._advertise(peer, d)
            return
        held.sent_to.add(peer)
        held.known_by.add(peer)
        self._events.append(SendFrame(peer, {"t": "push", "m": held.wire}))
        _count(self._counts["payloads_sent"], held.message.topic.value)

    def _retain(self, d: bytes, held: _Held, now: float) -> None:
        self._retained[d] = held
        self._retained_bytes += held.size
        expiry = now + self.config.retain_s
        self._retained_expiry[d] = expiry
        self._timer(expiry, "retain", d)
        while self._retained_bytes > self.config.retain_bytes and len(self._retained) > 1:
            self._unretain(next(iter(self._retained)))

    def _unretain(self, d: bytes) -> None:
        held = self._retained.pop(d, None)
        self._retained_expiry.pop(d, None)
        if held is not None:
            self._retained_bytes -= held.size

    def _offence(self, peer: NodeId, reason: str, now: float) -> None:
        _count(self._counts["invalid"], reason)
        self._events.append(Dropped(reason, peer))
        weight = OFFENCES.get(reason, 1.0)
        st = self._peer(peer)
        if weight == 0 or st is None:
            return
        st.score = st.score * 0.5 ** ((now - st.score_at) / SCORE_HALF_LIFE_S) + weight
        st.score_at = now
        if st.score < 1.0:
            return
        st.score -= 1.0
        st.strikes += 1
        self._bump("strikes")
        cut_s = 0.0
        if st.strikes >= STRIKES_TO_CUT_OFF:
            cut_s = min(CUT_OFF_S * 2 ** (st.strikes - STRIKES_TO_CUT_OFF), CUT_OFF_MAX_S)
            st.cut_until = now + cut_s
            st.unsent.clear()
        self._events.append(Penalize(peer, reason, cut_s))


def _digests(frame: dict[str, Any]) -> list[bytes]:
    digests = frame.get("d")
    if (
        not isinstance(digests, list)
        or not 0 < len(digests) <= MAX_BATCH
        or not all(isinstance(d, bytes) and len(d) == DIGEST_BYTES for d in digests)
    ):
        raise InvalidMessage("malformed", f"d must list 1..{MAX_BATCH} digests of {DIGEST_BYTES} bytes")
    return digests
