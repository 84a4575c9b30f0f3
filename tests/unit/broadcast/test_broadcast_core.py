"""The sans-IO broadcast core, driven by hand: a ``Mesh`` carries frames (through the codec, as the pool would)
between cores while the test sets ``now`` and asserts exact outcomes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from lightning.broadcast.config import BroadcastConfig
from lightning.broadcast.core import (
    MAX_BATCH,
    STRIKES_TO_CUT_OFF,
    BroadcastCore,
    Deliver,
    Dropped,
    Penalize,
    Persist,
    Received,
    Rtt,
    SendFrame,
)
from lightning.broadcast.message import Message, Topic, sign_message
from lightning.codec import decode, encode
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net.topology import GenesisNodes

CHAIN = 7
WALL0 = 1_700_000_000_000
KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(8)]
STRANGER = SigningKey(b"\xee" * 32)

Drop = Callable[[NodeId, NodeId, dict[str, Any]], bool]


class Mesh:
    """``n`` cores; frames queued FIFO and delivered by :meth:`pump`; outcomes recorded per node."""

    def __init__(
        self,
        n: int,
        *,
        config: BroadcastConfig | None = None,
        links: dict[int, list[int]] | None = None,
        subscribe: tuple[Topic, ...] = (Topic.CONSENSUS,),
    ) -> None:
        self.keys = KEYS[:n]
        self.ids = [NodeId.of(k) for k in self.keys]
        self.now = 0.0
        self.epoch = 3
        known = GenesisNodes(self.ids)
        self.cores = {
            NodeId.of(k): BroadcastCore(config or BroadcastConfig(), node_id=NodeId.of(k), chain_id=CHAIN, known=known)
            for k in self.keys
        }
        for i, k in enumerate(self.keys):
            peers = links[i] if links is not None else [j for j in range(n) if j != i]
            self.cores[NodeId.of(k)].set_topology(self.ids[j] for j in peers)
            for t in subscribe:
                self.cores[NodeId.of(k)].subscribe(t)
        self.queue: list[tuple[NodeId, NodeId, dict[str, Any]]] = []
        self.frames: list[tuple[NodeId, NodeId, dict[str, Any]]] = []  # everything that crossed a link
        self.delivered: dict[NodeId, list[Received]] = {k: [] for k in self.ids}
        self.persisted: dict[NodeId, list[bytes]] = {k: [] for k in self.ids}
        self.penalties: list[Penalize] = []
        self.dropped: list[tuple[NodeId, Dropped]] = []
        self.rtts: list[Rtt] = []

    @property
    def wall(self) -> int:
        return WALL0 + int(self.now * 1000)

    def msg(self, i: int, payload: bytes = b"hello", **kw: Any) -> Message:
        args: dict[str, Any] = {"epoch": self.epoch, "timestamp_ms": self.wall, "payload": payload, **kw}
        topic = args.pop("topic", Topic.CONSENSUS)
        key = args.pop("key", self.keys[i])
        return sign_message(key, CHAIN, topic, **args)

    def publish(self, i: int, payload: bytes = b"hello", *, push: bool = False, **kw: Any) -> Message:
        m = self.msg(i, payload, **kw)
        self.cores[self.ids[i]].publish(m, self.now, push=push)
        self.collect(self.ids[i])
        return m

    def collect(self, node: NodeId) -> None:
        for ev in self.cores[node].events():
            if isinstance(ev, SendFrame):
                self.queue.append((node, ev.peer, decode(encode(ev.frame))))
            elif isinstance(ev, Deliver):
                assert ev.received.digest in self.persisted[node], "delivered before persisted"
                self.delivered[node].append(ev.received)
            elif isinstance(ev, Persist):
                self.persisted[node].append(ev.digest)
            elif isinstance(ev, Penalize):
                self.penalties.append(ev)
            elif isinstance(ev, Dropped):
                self.dropped.append((node, ev))
            elif isinstance(ev, Rtt):
                self.rtts.append(ev)

    def inject(self, src: NodeId, dst: NodeId, frame: Any) -> None:
        self.cores[dst].receive(src, frame, now=self.now, epoch=self.epoch, wall_ms=self.wall)
        self.collect(dst)

    def pump(self, drop: Drop | None = None, *, judge: bool | None = True) -> None:
        """Deliver queued frames until quiet; subscribers judge each delivery (``None``: leave them waiting)."""
        judged: set[tuple[NodeId, bytes]] = set()
        while True:
            while self.queue:
                src, dst, frame = self.queue.pop(0)
                if drop is not None and drop(src, dst, frame):
                    continue
                self.frames.append((src, dst, frame))
                if dst in self.cores:
                    self.inject(src, dst, frame)
            if judge is None:
                return
            pending = [(n, r) for n, rs in self.delivered.items() for r in rs if (n, r.digest) not in judged]
            if not pending:
                return
            for node, r in pending:
                judged.add((node, r.digest))
                core = self.cores[node]
                (core.propagate if judge else core.reject)(r.digest, self.now)
                self.collect(node)

    def tick(self, dt: float) -> None:
        self.now += dt
        for node, core in self.cores.items():
            core.tick(self.now, self.wall)
            self.collect(node)

    def payloads(self, src: NodeId | None = None, dst: NodeId | None = None) -> int:
        return sum(
            1
            for s, d, f in self.frames
            if f["t"] in ("msg", "push") and (src is None or s == src) and (dst is None or d == dst)
        )

    def reasons(self) -> list[str]:
        return [d.reason for _, d in self.dropped]


def digests(mesh: Mesh, node: int) -> list[bytes]:
    return [r.digest for r in mesh.delivered[mesh.ids[node]]]


# -- the protocol ---------------------------------------------------------------------------------------------------
def test_a_message_reaches_everyone_and_crosses_each_link_at_most_once() -> None:
    mesh = Mesh(6)
    m = mesh.publish(0, b"x" * 1000)
    mesh.pump()
    for i in range(1, 6):
        assert digests(mesh, i) == [m.digest]
        r = mesh.delivered[mesh.ids[i]][0]
        assert r.message.payload == b"x" * 1000 and r.message.origin == mesh.ids[0] and r.hops >= 1
    assert mesh.delivered[mesh.ids[0]] == []  # our own messages are not delivered to us
    links = {frozenset((s, d)) for s, d, f in mesh.frames if f["t"] == "msg"}
    assert mesh.payloads() == len(links) == 5  # each node got the payload once, each over a different link
    assert all(d in mesh.persisted[k] for k in mesh.ids for d in [m.digest])


def test_nothing_is_relayed_before_the_subscriber_says_so() -> None:
    mesh = Mesh(3, links={0: [1], 1: [0, 2], 2: [1]})
    m = mesh.publish(0)
    mesh.pump(judge=None)
    assert digests(mesh, 1) == [m.digest] and digests(mesh, 2) == []
    assert not any(f["t"] == "adv" for s, _, f in mesh.frames if s == mesh.ids[1])
    mesh.cores[mesh.ids[1]].propagate(m.digest, mesh.now)
    mesh.collect(mesh.ids[1])
    mesh.pump()
    assert digests(mesh, 2) == [m.digest]
    assert mesh.delivered[mesh.ids[2]][0].hops == 2


def test_rejected_message_is_not_relayed_and_its_sender_is_penalised() -> None:
    mesh = Mesh(3, links={0: [1], 1: [0, 2], 2: [1]})
    mesh.publish(0, b"bad payload")
    mesh.pump(judge=False)
    assert digests(mesh, 2) == []
    assert [(p.peer, p.reason) for p in mesh.penalties] == [(mesh.ids[0], "rejected_by_subscriber")]
    assert mesh.cores[mesh.ids[1]].statistics().invalid == {"rejected_by_subscriber": 1}


def test_unsubscribed_topics_are_relayed_after_the_envelope_checks() -> None:
    mesh = Mesh(3, links={0: [1], 1: [0, 2], 2: [1]}, subscribe=())
    mesh.cores[mesh.ids[2]].subscribe(Topic.RESOLVER)
    m = mesh.publish(0, topic=Topic.RESOLVER)
    mesh.pump(judge=None)
    assert digests(mesh, 1) == [] and digests(mesh, 2) == [m.digest]


def test_direct_message_reaches_only_its_target_and_is_not_relayed() -> None:
    mesh = Mesh(4, links={0: [1], 1: [0, 2], 2: [1, 3], 3: [2]})
    m = mesh.publish(0, b"for you", to=mesh.ids[3])
    mesh.pump()
    assert digests(mesh, 3) == [m.digest] and digests(mesh, 1) == digests(mesh, 2) == []
    assert {(s, d) for s, d, f in mesh.frames} <= {(mesh.ids[0], mesh.ids[3]), (mesh.ids[3], mesh.ids[0])}
    # A relayer that hands it to the wrong node is held to account.
    mesh.inject(mesh.ids[3], mesh.ids[1], {"t": "adv", "d": [m.digest]})
    want = mesh.queue.pop()
    assert want[2] == {"t": "want", "d": [m.digest]}
    mesh.inject(mesh.ids[3], mesh.ids[1], {"t": "msg", "m": m.to_wire(), "h": 1})
    assert mesh.reasons()[-1] == "not_for_us" and digests(mesh, 1) == []


def test_adverts_from_several_peers_fetch_once_and_count_duplicates() -> None:
    mesh = Mesh(4)
    m = mesh.publish(0)
    mesh.pump()
    assert all(digests(mesh, i) == [m.digest] for i in (1, 2, 3))
    assert sum(c.statistics().duplicate_adverts for c in mesh.cores.values()) > 0
    assert mesh.payloads() == 3


def test_want_timeout_asks_the_next_advertiser() -> None:
    mesh = Mesh(3, links={0: [2], 1: [2], 2: [0, 1]})
    a, b, c = mesh.ids
    m = mesh.msg(0)
    mesh.cores[a].publish(m, mesh.now)  # a's advert to c is queued
    mesh.collect(a)
    mesh.inject(b, c, {"t": "adv", "d": [m.digest]})  # b's arrives first: c wants it from b, which never answers
    mesh.queue = [q for q in mesh.queue if q[0] != c or q[1] != b]
    mesh.pump()  # a's advert arrives while the want to b is outstanding: no second want yet
    assert digests(mesh, 2) == [] and mesh.payloads() == 0
    mesh.tick(BroadcastConfig().want_timeout_s)
    mesh.pump()
    assert digests(mesh, 2) == [m.digest] and mesh.payloads(a, c) == 1
    assert mesh.cores[c].statistics().want_timeouts == 1


def test_a_late_answer_after_a_timeout_is_a_harmless_duplicate() -> None:
    mesh = Mesh(3, links={0: [2], 1: [2], 2: [0, 1]})
    a, b, c = mesh.ids
    m = mesh.msg(0)
    mesh.inject(b, c, {"t": "adv", "d": [m.digest]})
    mesh.inject(a, c, {"t": "adv", "d": [m.digest]})
    mesh.queue.clear()
    mesh.tick(BroadcastConfig().want_timeout_s)
    assert mesh.queue == [(c, a, {"t": "want", "d": [m.digest]})]
    mesh.inject(a, c, {"t": "msg", "m": m.to_wire(), "h": 1})
    mesh.inject(b, c, {"t": "msg", "m": m.to_wire(), "h": 1})  # b's late answer
    assert len(mesh.delivered[c]) == 1 and mesh.cores[c].statistics().duplicate_payloads == 1 and not mesh.penalties


def test_a_pushed_message_skips_the_advert_round_trip_and_still_crosses_each_link_once() -> None:
    mesh = Mesh(4)
    a = mesh.ids[0]
    m = mesh.publish(0, b"block", push=True)
    assert sorted((dst, f["t"]) for _, dst, f in mesh.queue) == sorted((p, "push") for p in mesh.ids[1:])
    mesh.pump()
    for i in (1, 2, 3):
        (r,) = mesh.delivered[mesh.ids[i]]
        assert r.digest == m.digest and r.sender == a and r.hops == 1 and r.message.payload == b"block"
    assert not any(f["t"] == "want" and d == a for _, d, f in mesh.frames)  # nobody had to ask the origin
    assert mesh.payloads() == 3 and mesh.payloads(a) == 3  # relays' adverts found everyone holding it
    assert sum(c.statistics().duplicate_adverts for c in mesh.cores.values()) > 0 and not mesh.reasons()
    assert mesh.cores[a].statistics().payloads_sent == {"consensus": 3}


def test_only_its_origin_may_push_a_message() -> None:
    mesh = Mesh(3)
    a, b, c = mesh.ids
    m = mesh.msg(0)
    mesh.inject(b, c, {"t": "push", "m": m.to_wire()})  # b pushing a's message: nobody asked b for it
    assert digests(mesh, 2) == [] and mesh.reasons() == ["unsolicited"]
    forged = dataclasses.replace(mesh.msg(0, b"other"), signature=b"\x01" * 64)
    mesh.inject(a, c, {"t": "push", "m": forged.to_wire()})
    assert digests(mesh, 2) == [] and mesh.reasons()[-1] == "bad_signature"
    mesh.inject(a, c, {"t": "push", "m": m.to_wire()})
    mesh.inject(a, c, {"t": "push", "m": m.to_wire()})  # again: a duplicate, delivered once
    assert digests(mesh, 2) == [m.digest] and mesh.cores[c].statistics().duplicate_payloads == 1


def test_a_pushed_direct_message_reaches_only_its_target() -> None:
    mesh = Mesh(3)
    m = mesh.publish(0, b"for you", to=mesh.ids[2], push=True)
    assert [(d, f["t"]) for _, d, f in mesh.queue] == [(mesh.ids[2], "push")]
    mesh.pump()
    assert digests(mesh, 2) == [m.digest] and digests(mesh, 1) == [] and mesh.payloads() == 1


def test_a_push_that_was_not_sent_is_advertised_when_the_peer_is_heard_from() -> None:
    mesh = Mesh(2)
    a, b = mesh.ids
    m = mesh.publish(0, push=True)
    (_src, _dst, frame) = mesh.queue.pop()
    assert frame == {"t": "push", "m": m.to_wire()}
    mesh.cores[a].not_sent(b, frame)
    mesh.inject(b, a, {"t": "ping", "n": 1})  # b is back
    assert (a, b, {"t": "adv", "d": [m.digest]}) in mesh.queue
    mesh.pump()
    assert digests(mesh, 1) == [m.digest] and not mesh.reasons()  # b's want is served: not a repeated one


def test_unsolicited_message_is_dropped_and_held_against_the_sender() -> None:
    mesh = Mesh(2)
    m = mesh.msg(0)
    mesh.inject(mesh.ids[0], mesh.ids[1], {"t": "msg", "m": m.to_wire(), "h": 1})
    assert digests(mesh, 1) == [] and mesh.reasons() == ["unsolicited"]


def test_repeated_want_gets_one_payload() -> None:
    mesh = Mesh(2)
    m = mesh.publish(0)
    mesh.pump()
    for _ in range(2):
        mesh.inject(mesh.ids[1], mesh.ids[0], {"t": "want", "d": [m.digest]})
    assert not any(f["t"] == "msg" for _, _, f in mesh.queue)
    assert mesh.reasons() == ["repeated_want", "repeated_want"]


def test_unknown_wants_and_frames_are_ignored() -> None:
    mesh = Mesh(2)
    mesh.inject(mesh.ids[0], mesh.ids[1], {"t": "want", "d": [b"\x01" * 32]})
    mesh.inject(mesh.ids[0], mesh.ids[1], {"t": "future-frame", "x": 1})
    assert mesh.queue == [] and mesh.dropped == [] and mesh.cores[mesh.ids[1]].statistics().unknown_wants == 1


# -- validation -----------------------------------------------------------------------------------------------------
def _fetch(mesh: Mesh, wire: dict[str, Any], *, sender: int = 0, to: int = 1) -> None:
    """``sender`` advertises and serves a message given in wire form to ``to``."""
    from lightning.broadcast.message import message_from_wire

    d = message_from_wire(wire, chain_id=CHAIN, max_payload_bytes=10**9).digest
    mesh.inject(mesh.ids[sender], mesh.ids[to], {"t": "adv", "d": [d]})
    assert mesh.queue.pop() == (mesh.ids[to], mesh.ids[sender], {"t": "want", "d": [d]})
    mesh.inject(mesh.ids[sender], mesh.ids[to], {"t": "msg", "m": wire, "h": 1})


@pytest.mark.parametrize(
    ("change", "reason", "penalised"),
    [
        ({"signature": b"\x00" * 64}, "bad_signature", True),
        ({"key": STRANGER}, "unknown_origin", False),
        ({"epoch": 2}, "past_epoch", False),
        ({"epoch": 5}, "future_epoch", False),
        ({"timestamp_ms": WALL0 - 301_000}, "too_old", False),
        ({"timestamp_ms": WALL0 + 31_000}, "too_new", False),
        ({"payload": b"x" * 2000}, "oversize", True),
    ],
)
def test_invalid_messages_are_dropped_counted_and_weighed(change: dict[str, Any], reason: str, penalised: bool) -> None:
    mesh = Mesh(2, config=BroadcastConfig(max_payload_bytes=1000))
    mesh.now = 1000.0
    mesh.epoch = 3
    kw = {k: v for k, v in change.items() if k != "signature"}
    if "timestamp_ms" in kw:
        kw["timestamp_ms"] += 1_000_000
    m = mesh.msg(0, **kw)
    if "signature" in change:
        m = dataclasses.replace(m, signature=change["signature"])
    _fetch(mesh, m.to_wire())
    assert digests(mesh, 1) == []
    assert mesh.cores[mesh.ids[1]].statistics().invalid == {reason: 1}
    assert [p.reason for p in mesh.penalties] == ([reason] if penalised else [])


def test_unknown_topic_and_malformed_frames() -> None:
    mesh = Mesh(2)
    a, b = mesh.ids
    wire = mesh.msg(0).to_wire()
    mesh.inject(a, b, {"t": "adv", "d": [b"\x09" * 32]})
    mesh.inject(a, b, {"t": "msg", "m": {**wire, "k": "weather"}, "h": 1})
    for frame in ({"t": "adv"}, {"t": "adv", "d": [b"short"]}, {"t": "adv", "d": [b"\x00" * 32] * (MAX_BATCH + 1)}, 7):
        mesh.inject(a, b, frame)
    # 0.5 + 3 x 1.0: the third strike cut the peer off, so its last frame was not even read.
    assert mesh.reasons() == ["unknown_topic", "malformed", "malformed", "malformed"]
    assert mesh.cores[b].is_cut_off(a, mesh.now) and mesh.cores[b].statistics().ignored_cut_off == 1


def test_bad_signature_asks_another_advertiser_for_a_good_copy() -> None:
    mesh = Mesh(3, links={0: [2], 1: [2], 2: [0, 1]})
    a, b, c = mesh.ids
    m = mesh.msg(0)
    mesh.inject(b, c, {"t": "adv", "d": [m.digest]})
    mesh.inject(a, c, {"t": "adv", "d": [m.digest]})
    mesh.queue.clear()
    forged = dataclasses.replace(m, signature=b"\x01" * 64).to_wire()
    mesh.inject(b, c, {"t": "msg", "m": forged, "h": 1})
    assert mesh.queue == [(c, a, {"t": "want", "d": [m.digest]})]
    mesh.inject(a, c, {"t": "msg", "m": m.to_wire(), "h": 1})
    assert digests(mesh, 2) == [m.digest]
    assert [(p.peer, p.reason) for p in mesh.penalties] == [(b, "bad_signature")]


def test_a_peer_sending_invalid_messages_is_cut_off() -> None:
    mesh = Mesh(2)
    a, b = mesh.ids
    for i in range(STRIKES_TO_CUT_OFF):
        m = dataclasses.replace(mesh.msg(0, payload=bytes([i])), signature=b"\x02" * 64)
        _fetch(mesh, m.to_wire())
    assert [p.cut_off_s > 0 for p in mesh.penalties] == [False] * (STRIKES_TO_CUT_OFF - 1) + [True]
    core = mesh.cores[b]
    assert core.is_cut_off(a, mesh.now) and a not in core.active_peers(mesh.now)
    good = mesh.msg(0, payload=b"good")
    mesh.inject(a, b, {"t": "adv", "d": [good.digest]})
    assert mesh.queue == [] and core.statistics().ignored_cut_off == 1
    mesh.tick(61.0)  # the cut-off ends
    mesh.inject(a, b, {"t": "adv", "d": [good.digest]})
    assert mesh.queue == [(b, a, {"t": "want", "d": [good.digest]})]


def test_light_offences_decay_instead_of_adding_up() -> None:
    mesh = Mesh(2)
    for i in range(30):  # three past-epoch messages every ten minutes: never a whole point at once
        if i % 3 == 0:
            mesh.tick(600.0)
        _fetch(mesh, mesh.msg(0, payload=bytes([i]), epoch=mesh.epoch - 1).to_wire())
    assert mesh.penalties == [] and mesh.cores[mesh.ids[1]].statistics().invalid == {"past_epoch": 30}


# -- dedup ----------------------------------------------------------------------------------------------------------
def test_seen_digests_are_never_fetched_again_and_expire_with_the_clock_window() -> None:
    mesh = Mesh(2)
    a, b = mesh.ids
    m = mesh.publish(0)
    mesh.pump()
    mesh.inject(a, b, {"t": "adv", "d": [m.digest]})
    assert mesh.queue == []
    mesh.tick(BroadcastConfig().max_age_s + 1)
    assert m.digest not in mesh.cores[b].seen
    _fetch(mesh, m.to_wire())  # a replay after the window: too old
    assert mesh.reasons()[-1] == "too_old" and len(mesh.delivered[b]) == 1


def test_a_full_dedup_cache_raises_its_floor() -> None:
    mesh = Mesh(2, config=BroadcastConfig(seen_cache_entries=3))
    _a, b = mesh.ids
    sent = []
    for i in range(5):
        mesh.now += 1
        sent.append(mesh.publish(0, bytes([i])))
        mesh.pump()
    assert len(mesh.delivered[b]) == 5 and len(mesh.cores[b].seen) == 3
    # The oldest two were forgotten: replaying them is refused by the floor, not delivered again.
    for m in sent[:2]:
        _fetch(mesh, m.to_wire())
    assert mesh.reasons() == ["before_floor", "before_floor"] and len(mesh.delivered[b]) == 5 and not mesh.penalties


def test_loaded_digests_are_not_fetched() -> None:
    mesh = Mesh(2)
    m = mesh.msg(0)
    mesh.cores[mesh.ids[1]].load_seen([(m.digest, m.timestamp_ms)], -1)
    mesh.inject(mesh.ids[0], mesh.ids[1], {"t": "adv", "d": [m.digest]})
    assert mesh.queue == []


# -- bounds, losses, pings ------------------------------------------------------------------------------------------
def test_the_want_queue_is_bounded() -> None:
    mesh = Mesh(3, config=BroadcastConfig(want_queue_len=8))
    a, b, c = mesh.ids
    mesh.inject(a, c, {"t": "adv", "d": [bytes([i]) * 32 for i in range(10)]})  # one peer: a quarter at most
    assert mesh.cores[c].holding()[0] == 2
    mesh.inject(b, c, {"t": "adv", "d": [bytes([i]) * 32 for i in range(20, 40)]})
    assert mesh.cores[c].holding()[0] == 4
    mesh.tick(61.0)  # the want TTL: nobody answered
    assert mesh.cores[c].holding()[0] == 0 and mesh.cores[c].statistics().wants_expired == 4


def test_unsent_adverts_go_out_when_the_peer_is_heard_from() -> None:
    mesh = Mesh(2)
    a, b = mesh.ids
    m = mesh.publish(0)
    (_src, _dst, frame) = mesh.queue.pop()
    assert frame == {"t": "adv", "d": [m.digest]}
    mesh.cores[a].not_sent(b, frame)
    mesh.inject(b, a, {"t": "ping", "n": 1})  # b is back
    assert (a, b, {"t": "adv", "d": [m.digest]}) in mesh.queue
    mesh.pump()
    assert digests(mesh, 1) == [m.digest]


def test_ping_pong_measures_round_trips() -> None:
    mesh = Mesh(2)
    a, b = mesh.ids
    mesh.cores[a].ping(b, mesh.now)
    mesh.collect(a)
    (_, _, ping) = mesh.queue.pop()
    mesh.now += 0.25
    mesh.inject(a, b, ping)
    mesh.inject(a, b, ping)  # twice within half a second: answered once
    assert len(mesh.queue) == 1
    mesh.pump()
    assert [(r.peer, r.rtt_s) for r in mesh.rtts] == [(b, 0.25)]


def test_unjudged_messages_time_out_unrelayed() -> None:
    mesh = Mesh(3, links={0: [1], 1: [0, 2], 2: [1]})
    mesh.publish(0)
    mesh.pump(judge=None)
    mesh.tick(BroadcastConfig().validation_timeout_s)
    assert mesh.cores[mesh.ids[1]].statistics().validation_timeouts == 1
    assert not mesh.cores[mesh.ids[1]].propagate(mesh.delivered[mesh.ids[1]][0].digest, mesh.now)


def test_inbound_peers_are_advertised_to_but_not_mere_pingers() -> None:
    mesh = Mesh(4, links={0: [1], 1: [], 2: [], 3: []})  # 1, 2 and 3 think nobody is their peer
    _a, b, c, d = mesh.ids
    mesh.inject(c, b, {"t": "want", "d": [b"\x07" * 32]})  # c gossips with b: b advertises to it too
    mesh.inject(d, b, {"t": "ping", "n": 1})  # d only measures its latency to b
    mesh.queue.clear()
    assert mesh.cores[b].active_peers(mesh.now) == [c]
    m = mesh.publish(0)
    mesh.pump()
    assert digests(mesh, 2) == [m.digest] and digests(mesh, 3) == []
    mesh.now += 3 * BroadcastConfig().ping_interval_s + 1  # it stopped gossiping a while ago
    assert mesh.cores[b].active_peers(mesh.now) == []
