"""The pool on the simulated network: scoped messaging, limits, admission, dialing, loss, partitions, resets.

Every test runs under an autojump MockClock with a seeded network; the seed is in each test id (``[seed=N]``).
Invariants are asserted, never interleavings: trio's scheduler is not deterministic on purpose.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.codec import FrameTooLarge
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net import (
    ConnectionLost,
    InternalError,
    NetError,
    NotHere,
    PeerProtocolError,
    PeerUnavailable,
    ReplyWriter,
    RequestTimeout,
    StaticAdmission,
    TooManyRequests,
    Unauthorized,
)
from lightning.net.config import NetConfig
from lightning.net.sim import Link, SimNetwork, open_sim
from lightning.net.wire import Scope, StreamKind, preamble

SEEDS = [1, 2, 3]


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed={s}")
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)


async def echo(peer: NodeId, msg: Any) -> Any:
    return {"from": bytes(peer), "msg": msg}


class Inbox:
    """A message handler that records what arrives; ``await wait_for(n)`` until n messages are in."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.peers: list[NodeId] = []
        self._changed = trio.Event()

    async def handler(self, peer: NodeId, msg: Any) -> None:
        self.items.append(msg)
        self.peers.append(peer)
        self._changed.set()

    async def wait_for(self, n: int) -> None:
        while len(self.items) < n:
            self._changed = trio.Event()
            await self._changed.wait()


async def test_request_messages_and_stream(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with open_sim(seed, 2) as (_net, (a, b)):
        b.on_request(Scope.SYNC, echo)
        inbox = Inbox()
        b.on_message(Scope.BROADCAST, inbox.handler)

        async def serve(peer: NodeId, msg: Any, out: ReplyWriter) -> None:
            await out.start({"count": msg})
            for i in range(msg):
                await out.send(bytes([i]) * 100_000)

        b.on_stream(Scope.BLOCKS, serve)

        reply = await a.request(b.node_id, Scope.SYNC, [1, "two", b"3"])
        assert reply == {"from": a.node_id, "msg": [1, "two", b"3"]}
        for i in range(50):
            await a.send(b.node_id, Scope.BROADCAST, {"n": i})
        async with a.open_stream(b.node_id, Scope.BLOCKS, 40) as reply:
            assert reply.header == {"count": 40}
            data = await reply.read_all(10**8)
        assert data == b"".join(bytes([i]) * 100_000 for i in range(40))
        with trio.fail_after(5):
            await inbox.wait_for(50)
        assert inbox.items == [{"n": i} for i in range(50)] and set(inbox.peers) == {a.node_id}
        assert a.peers() == [b.node_id] and b.peers() == [a.node_id]
        assert a.statistics().connections == b.statistics().connections == 1
        with pytest.raises(NotHere, match="no consensus request handler"):
            await a.request(b.node_id, Scope.CONSENSUS, 1)


async def _pump(a: Any, b: Any, scope: Scope, n: int, sent: list[int]) -> None:
    for i in range(n):
        try:
            await a.send(b.node_id, scope, i)
            sent.append(i)
        except NetError:
            await trio.sleep(0.05)


async def test_loss_is_delay_never_reordering(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    link = Link(latency_s=0.02, jitter_s=0.01, loss=0.3)
    async with open_sim(seed, 2, link=link) as (_net, (a, b)):
        b.on_request(Scope.SYNC, echo)
        received = {Scope.BROADCAST: Inbox(), Scope.CONSENSUS: Inbox()}
        for scope, inbox in received.items():
            b.on_message(scope, inbox.handler)
        sent = {s: list[int]() for s in received}
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for scope in received:
                nursery.start_soon(_pump, a, b, scope, 300, sent[scope])
            replies = [await a.request(b.node_id, Scope.SYNC, i) for i in range(20)]
        assert [r["msg"] for r in replies] == list(range(20))
        with trio.fail_after(30):
            for inbox in received.values():
                await inbox.wait_for(300)
        for scope, inbox in received.items():
            assert inbox.items == list(range(300)), f"seed {seed}: {scope.name} out of order or lost"
        # Loss showed up as delay: twenty round trips took longer than twenty lossless ones would.
        assert trio.current_time() - started > 20 * 2 * link.latency_s


async def test_partition_loses_in_flight_and_heals(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    cfg = NetConfig(handshake_timeout_s=2.0, backoff_min_s=0.5, backoff_max_s=4.0, request_timeout_s=3.0)
    async with open_sim(seed, 3, config=cfg) as (net, (a, b, c)):
        b.on_request(Scope.SYNC, echo)
        c.on_request(Scope.SYNC, echo)
        inbox = Inbox()
        b.on_message(Scope.BROADCAST, inbox.handler)
        assert (await a.request(b.node_id, Scope.SYNC, 0))["msg"] == 0

        failures: list[NetError] = []

        async def sender() -> None:
            for i in range(400):
                try:
                    await a.send(b.node_id, Scope.BROADCAST, i)
                except NetError as exc:
                    failures.append(exc)
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.sleep(1.0)
            net.partition({a}, {b, c})
            for peer in (b, c):
                with pytest.raises((ConnectionLost, PeerUnavailable, RequestTimeout)):
                    await a.request(peer.node_id, Scope.SYNC, "across")
            assert b.node_id not in a.peers()
            await trio.sleep(1.0)
            net.heal()
        # After the heal (and the dial backoff) everything works again.
        with trio.fail_after(30):
            while True:
                try:
                    assert (await a.request(b.node_id, Scope.SYNC, "after"))["msg"] == "after"
                    break
                except PeerUnavailable:
                    await trio.sleep(0.5)
        await trio.sleep(1.0)
        assert failures, f"seed {seed}: the partition should have cost some sends"
        # What arrived is in order and never duplicated; what was in flight at the cut is gone.
        received = inbox.items
        assert received == sorted(set(received)), f"seed {seed}"
        assert 0 < len(received) < 400 and received[-1] == 399


async def test_reset_fails_in_flight_request_and_redials(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with open_sim(seed, 2) as (net, (a, b)):
        entered = trio.Event()
        release = trio.Event()

        async def slow(peer: NodeId, msg: Any) -> Any:
            if msg == "slow":
                entered.set()
                await release.wait()
            return msg

        b.on_request(Scope.SYNC, slow)

        async def reset_when_entered() -> None:
            await entered.wait()
            net.reset(a, b)
            release.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reset_when_entered)
            with pytest.raises(ConnectionLost):
                await a.request(b.node_id, Scope.SYNC, "slow")
        assert await a.request(b.node_id, Scope.SYNC, "again") == "again"


async def test_dial_backoff(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    cfg = NetConfig(handshake_timeout_s=2.0, backoff_min_s=1.0, backoff_max_s=8.0)
    async with open_sim(seed, 1, config=cfg) as (net, (a,)):
        ghost = net.pool()  # never started: dials go unanswered
        t0 = trio.current_time()
        with pytest.raises(PeerUnavailable, match="no authenticated connection"):
            await a.request(ghost.node_id, Scope.SYNC, 1)
        assert trio.current_time() - t0 == pytest.approx(2.0)
        t1 = trio.current_time()
        with pytest.raises(PeerUnavailable, match="next dial in"):
            await a.request(ghost.node_id, Scope.SYNC, 1)
        assert trio.current_time() == t1  # no new dial while backing off
        async with trio.open_nursery() as nursery:
            await nursery.start(ghost.run)
            ghost.on_request(Scope.SYNC, echo)
            with trio.fail_after(60):
                while True:
                    try:
                        await a.request(ghost.node_id, Scope.SYNC, 2)
                        break
                    except PeerUnavailable:
                        await trio.sleep(0.25)
            nursery.cancel_scope.cancel()


async def test_idle_connections_close(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with open_sim(seed, 2, config=NetConfig(idle_timeout_s=5.0)) as (_net, (a, b)):
        b.on_request(Scope.SYNC, echo)
        await a.request(b.node_id, Scope.SYNC, 1)
        for _ in range(5):  # activity keeps it open
            await trio.sleep(3.0)
            await a.request(b.node_id, Scope.SYNC, 1)
        assert a.statistics().connections == 1
        await trio.sleep(6.0)
        assert a.statistics().connections == 0 and b.statistics().connections == 0
        await a.request(b.node_id, Scope.SYNC, 1)  # dialed again on demand
        assert a.statistics().connections == 1


async def test_max_connections_evicts_least_recently_used(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    net = SimNetwork(seed)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        a = net.pool(config=NetConfig(max_connections=2))
        others = [net.pool() for _ in range(3)]
        for p in (a, *others):
            await nursery.start(p.run)
            p.on_request(Scope.SYNC, echo)
        for p in others:
            await a.request(p.node_id, Scope.SYNC, 1)
            await trio.sleep(1.0)
        assert a.statistics().connections == 2
        assert set(a.peers()) == {others[1].node_id, others[2].node_id}
        nursery.cancel_scope.cancel()


async def test_simultaneous_dials_settle_on_one_connection(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with open_sim(seed, 2, config=NetConfig(idle_timeout_s=5.0)) as (_net, (a, b)):
        a.on_request(Scope.SYNC, echo)
        b.on_request(Scope.SYNC, echo)
        for _ in range(6):  # both keep talking; the duplicate connection goes idle and closes
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.request, b.node_id, Scope.SYNC, 1)
                nursery.start_soon(b.request, a.node_id, Scope.SYNC, 1)
            await trio.sleep(2.0)
        assert a.statistics().connections == 1 and b.statistics().connections == 1


async def test_too_many_requests(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    net = SimNetwork(seed)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        a = net.pool(config=NetConfig(max_requests_per_peer=10))
        b = net.pool(config=NetConfig(max_requests_per_peer=4))
        for p in (a, b):
            await nursery.start(p.run)
        release = trio.Event()

        async def blocked(peer: NodeId, msg: Any) -> Any:
            await release.wait()
            return msg

        b.on_request(Scope.SYNC, blocked)
        outcomes: list[str] = []
        six_busy = trio.Event()

        async def one(i: int) -> None:
            try:
                outcomes.append(f"ok {await a.request(b.node_id, Scope.SYNC, i)}")
            except TooManyRequests:
                outcomes.append("busy")
                if outcomes.count("busy") == 6:
                    six_busy.set()

        async with trio.open_nursery() as inner:
            for i in range(10):
                inner.start_soon(one, i)
            with trio.fail_after(5):
                await six_busy.wait()
            release.set()
        assert outcomes.count("busy") == 6 and len(outcomes) == 10
        assert b.metrics.rejections("too_many_requests") == 6
        nursery.cancel_scope.cancel()


async def test_scope_admission(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    net = SimNetwork(seed)
    keys = [SigningKey(random.Random(seed * 10 + i).randbytes(32)) for i in range(4)]
    member, committee, server, stranger = keys
    admission = StaticAdmission(nodes=[NodeId.of(member), NodeId.of(committee)], committee=[NodeId.of(committee)])
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        s = net.pool(server, admission=admission)
        m, c, x = net.pool(member), net.pool(committee), net.pool(stranger)
        for p in (s, m, c, x):
            await nursery.start(p.run)
        s.on_request(Scope.CONSENSUS, echo)
        s.on_request(Scope.SYNC, echo)
        votes = Inbox()
        s.on_message(Scope.CONSENSUS, votes.handler)
        assert (await c.request(s.node_id, Scope.CONSENSUS, "vote"))["msg"] == "vote"
        assert (await m.request(s.node_id, Scope.SYNC, "sync"))["msg"] == "sync"
        with pytest.raises(Unauthorized, match="consensus is not open"):
            await m.request(s.node_id, Scope.CONSENSUS, "vote")
        await m.send(s.node_id, Scope.CONSENSUS, "sneaky vote")
        await c.send(s.node_id, Scope.CONSENSUS, "vote")
        with pytest.raises(Unauthorized, match="not admitted"):
            await x.request(s.node_id, Scope.SYNC, 1)
        with trio.fail_after(5):
            await votes.wait_for(1)
        await trio.sleep(1.0)  # the unauthorized one, sent first on its own connection, had time to arrive
        assert list(zip(votes.peers, votes.items, strict=True)) == [(NodeId.of(committee), "vote")]
        assert s.metrics.rejections("unauthorized") == 2  # the request and the message
        nursery.cancel_scope.cancel()


async def test_message_queue_overflow(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    net = SimNetwork(seed)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        a, b = net.pool(), net.pool(config=NetConfig(message_queue_len=4))
        for p in (a, b):
            await nursery.start(p.run)
        release = trio.Event()
        handled: list[int] = []

        async def slow(peer: NodeId, msg: Any) -> None:
            await release.wait()
            handled.append(msg)

        b.on_message(Scope.BROADCAST, slow)
        b.on_request(Scope.SYNC, echo)
        for i in range(20):
            await a.send(b.node_id, Scope.BROADCAST, i)
        await trio.sleep(1.0)
        assert (await a.request(b.node_id, Scope.SYNC, "still"))["msg"] == "still"  # other scopes unaffected
        release.set()
        await trio.sleep(1.0)
        # One in the handler, four queued; the rest dropped and counted, in order as they came.
        assert handled == sorted(handled) and len(handled) == 5
        assert b.metrics.rejections("queue_full") == 15
        nursery.cancel_scope.cancel()


async def test_bad_frames(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with open_sim(seed, 2, config=NetConfig(max_frame_bytes=1000)) as (_net, (a, b)):
        b.on_request(Scope.SYNC, echo)
        with pytest.raises(FrameTooLarge):
            await a.send(b.node_id, Scope.BROADCAST, b"x" * 2000)
        await a.request(b.node_id, Scope.SYNC, 1)
        conn = a._peers[b.node_id].conns[0].conn  # a Byzantine peer writes raw bytes
        for garbage in (
            b"\x09\x01",
            preamble(StreamKind.REQUEST, Scope.SYNC) + b"\x00\x10\x00\x00",
            preamble(StreamKind.REQUEST, Scope.SYNC) + b"\x00\x00\x00\x01\xc1",
        ):
            stream = conn.open_stream()
            stream.send_nowait(garbage, end=True)
            await trio.sleep(1.0)
        assert b.metrics.rejections("protocol") == 3
        assert (await a.request(b.node_id, Scope.SYNC, 2))["msg"] == 2  # the connection survived


async def test_handler_failures_are_typed(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with open_sim(seed, 2) as (_net, (a, b)):

        async def handler(peer: NodeId, msg: Any) -> Any:
            if msg == "missing":
                raise NotHere("no such thing")
            if msg == "bug":
                raise ValueError("oops")
            if msg == "unencodable":
                return 1.5
            return msg

        b.on_request(Scope.SYNC, handler)
        with pytest.raises(NotHere, match="no such thing"):
            await a.request(b.node_id, Scope.SYNC, "missing")
        with pytest.raises(InternalError):
            await a.request(b.node_id, Scope.SYNC, "bug")
        with pytest.raises(InternalError):
            await a.request(b.node_id, Scope.SYNC, "unencodable")
        assert await a.request(b.node_id, Scope.SYNC, "fine") == "fine"


async def test_request_timeout_cancels_the_handler(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with open_sim(seed, 2) as (_net, (a, b)):
        cancelled = trio.Event()

        async def forever(peer: NodeId, msg: Any) -> Any:
            try:
                await trio.sleep_forever()
            finally:
                cancelled.set()

        b.on_request(Scope.SYNC, forever)
        t0 = trio.current_time()
        with pytest.raises(RequestTimeout):
            await a.request(b.node_id, Scope.SYNC, 1, timeout_s=3.0)
        assert trio.current_time() - t0 == pytest.approx(3.0)
        # b keeps its handler until idle eviction or shutdown closes the connection.
        a._peers[b.node_id].conns[0].conn.close()
        with trio.fail_after(5):
            await cancelled.wait()


async def test_stream_reply_is_bounded_by_credit(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    window = 256 * 1024
    async with open_sim(seed, 2, config=NetConfig(stream_window_bytes=window)) as (_net, (a, b)):
        progress: list[int] = []

        async def firehose(peer: NodeId, msg: Any, out: ReplyWriter) -> None:
            await out.start()
            for _ in range(100):
                await out.send(b"z" * 65536)
                progress.append(out.bytes_sent)

        b.on_stream(Scope.BLOCKS, firehose)
        async with a.open_stream(b.node_id, Scope.BLOCKS, None) as reply:
            await trio.sleep(10.0)  # a slow consumer
            assert max(progress) <= window
            assert len(await reply.read_all(10**8)) == 100 * 65536

        async def cheater(peer: NodeId, msg: Any, out: ReplyWriter) -> None:
            await out.start()
            await out._stream.send(b"z" * (2 * window))  # ignores the requester's credit

        b.on_stream(Scope.BLOCKS, cheater)
        with pytest.raises(PeerProtocolError, match="credit"):
            async with a.open_stream(b.node_id, Scope.BLOCKS, None) as reply:
                await reply.read_all(10**8)
        assert a.metrics.rejections("protocol") == 1


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    latency=st.floats(0.0, 0.2),
    jitter=st.floats(0.0, 0.1),
    loss=st.floats(0.0, 0.5),
)
def test_streams_stay_ordered_on_any_link(seed: int, latency: float, jitter: float, loss: float) -> None:
    async def main() -> None:
        link = Link(latency_s=latency, jitter_s=jitter, loss=loss)
        # The property is ordering, not timeouts: on the worst links drawn here (0.3 s RTT-ish, half the packets
        # lost) the default 10 s handshake timeout fires now and then, which is correct behaviour elsewhere.
        patient = NetConfig(handshake_timeout_s=3600, request_timeout_s=3600)
        async with open_sim(seed, 2, link=link, config=patient) as (_net, (a, b)):
            inbox = Inbox()
            b.on_message(Scope.SYNC, inbox.handler)
            b.on_request(Scope.SYNC, echo)
            for i in range(100):
                await a.send(b.node_id, Scope.SYNC, i)
            await a.request(b.node_id, Scope.SYNC, "flush")  # another stream: may overtake the messages
            with trio.fail_after(3600):
                await inbox.wait_for(100)
            assert inbox.items == list(range(100)), f"seed {seed}"

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_peer_that_dials_again_replaces_its_old_connection(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    # A restarted node dials us anew while our side still holds its previous connection (it vanished without a
    # close). The old one must go, or we would keep sending into it until the idle timeout.
    net = SimNetwork(seed)
    key_a = SigningKey(random.Random(f"restarted-{seed}").randbytes(32))
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        b = net.pool()
        await nursery.start(b.run)
        b.on_request(Scope.SYNC, echo)
        async with trio.open_nursery() as first_life:
            first = net.pool(key_a)
            await first_life.start(first.run)
            assert (await first.request(b.node_id, Scope.SYNC, 1))["msg"] == 1
            net.crash(first)
            first_life.cancel_scope.cancel()
        assert b.statistics().connections == 1  # b did not notice the crash
        second = net.pool(key_a)  # the same node id, restarted
        await nursery.start(second.run)
        second.on_request(Scope.SYNC, echo)
        assert (await second.request(b.node_id, Scope.SYNC, 2))["msg"] == 2
        assert b.statistics().connections == 1  # the dead connection was closed, not kept beside the new one
        with trio.fail_after(5):  # b reaches the restarted node at once, not after an idle timeout
            assert (await b.request(NodeId.of(key_a), Scope.SYNC, 3))["msg"] == 3
        nursery.cancel_scope.cancel()


async def test_a_restarted_peer_we_had_dialed_is_reached_on_its_new_connection(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    # We dialed the node before it crashed; once restarted it dials us: our old (dead) connection must not stay
    # the one we send on.
    net = SimNetwork(seed)
    key_a = SigningKey(random.Random(f"restarted-{seed}").randbytes(32))
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        b = net.pool()
        await nursery.start(b.run)
        async with trio.open_nursery() as first_life:
            first = net.pool(key_a)
            await first_life.start(first.run)
            first.on_request(Scope.SYNC, echo)
            assert (await b.request(NodeId.of(key_a), Scope.SYNC, 1))["msg"] == 1  # b dialed a
            net.crash(first)
            first_life.cancel_scope.cancel()
        await trio.sleep(15)  # past the handshake timeout (not a simultaneous dial), before the idle timeout
        second = net.pool(key_a)
        await nursery.start(second.run)
        second.on_request(Scope.SYNC, echo)
        b.on_request(Scope.SYNC, echo)
        assert (await second.request(b.node_id, Scope.SYNC, 2))["msg"] == 2  # a dials b
        assert b.statistics().connections == 1
        with trio.fail_after(5):
            assert (await b.request(NodeId.of(key_a), Scope.SYNC, 3))["msg"] == 3
        nursery.cancel_scope.cancel()
