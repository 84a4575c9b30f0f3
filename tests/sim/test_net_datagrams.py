"""Datagrams on the simulated network: latency and jitter, real loss, reordering, partitions, crashes, limits.

Every test runs under an autojump MockClock with a seeded network; the seed is in each test id (``[seed=N]``).
Times below are simulated, so checking a delivery against the link's latency is a semantic check, not a timing one.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net.datagram import MAX_DATAGRAM_BYTES, DatagramBindError, DatagramTooLarge
from lightning.net.sim import SimDatagramSocket, SimNetwork, open_sim

SEEDS = [1, 2, 3]
PORT = 4350  # the pinger's port; simulated, so no real port is taken


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed={s}")
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@asynccontextmanager
async def running(seed: int, nodes: int = 3) -> AsyncIterator[tuple[SimNetwork, list[NodeId]]]:
    """A running network and ``nodes`` node ids (no pools: datagram sockets need none)."""
    net = SimNetwork(seed)
    keys = random.Random(f"nodes-{seed}")
    ids = [NodeId.of(SigningKey(keys.randbytes(32))) for _ in range(nodes)]
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        yield net, ids
        nursery.cancel_scope.cancel()


async def drain(sock: SimDatagramSocket, quiet_s: float = 5.0) -> list[tuple[bytes, tuple[str, int]]]:
    """Everything that arrives until nothing has for ``quiet_s`` (simulated) seconds."""
    got: list[tuple[bytes, tuple[str, int]]] = []
    while True:
        with trio.move_on_after(quiet_s) as scope:
            got.append(await sock.receive_from())
        if scope.cancelled_caught:
            return got


def numbered(i: int) -> bytes:
    return i.to_bytes(4, "big")


async def test_delivery_after_the_links_latency(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, _c)):
        net.set_link(a, b, latency_s=0.05, jitter_s=0.01)
        with net.datagram_socket(a, PORT) as tx, net.datagram_socket(b, PORT) as rx:
            assert tx.local_address == (net.host(a), PORT) == (str(a), PORT)
            started = trio.current_time()
            await tx.send_to(b"ping", rx.local_address)
            data, sender = await rx.receive_from()
            assert (data, sender) == (b"ping", tx.local_address)
            assert 0.05 <= trio.current_time() - started <= 0.06
            await rx.send_to(b"pong", sender)  # the sender's address is where a reply reaches it
            assert await tx.receive_from() == (b"pong", rx.local_address)
            assert tx.statistics().sent == 1 and tx.statistics().received == 1


async def test_loss_is_real_and_close_to_the_links_rate(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, _c)):
        net.set_link(a, b, latency_s=0.01, jitter_s=0.005, loss=0.1)
        tx = net.datagram_socket(a, PORT)
        rx = net.datagram_socket(b, PORT, receive_queue_len=4096)
        for i in range(2000):
            await tx.send_to(numbered(i), rx.local_address)
        got = [data for data, _ in await drain(rx)]
        assert len(set(got)) == len(got), f"seed {seed}: a datagram arrived twice"
        lost = 2000 - len(got)
        assert 100 <= lost <= 300, f"seed {seed}: {lost} of 2000 lost on a 10% link"
        stats = net.datagram_statistics()
        assert (stats.sent, stats.lost, stats.delivered) == (2000, lost, len(got))


async def test_jitter_reorders(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, _c)):
        net.set_link(a, b, latency_s=0.01, jitter_s=0.02)
        tx, rx = net.datagram_socket(a, PORT), net.datagram_socket(b, PORT)
        for i in range(100):
            await tx.send_to(numbered(i), rx.local_address)
        got = [data for data, _ in await drain(rx)]
        assert sorted(got) == [numbered(i) for i in range(100)]  # no loss on this link: all of them, once
        assert got != sorted(got), f"seed {seed}: 100 datagrams with 20 ms of jitter arrived in order"


async def test_without_jitter_order_is_kept(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, _c)):
        net.set_link(a, b, latency_s=0.03, jitter_s=0.0)
        tx, rx = net.datagram_socket(a, PORT), net.datagram_socket(b, PORT)
        for i in range(100):
            await tx.send_to(numbered(i), rx.local_address)
            if i % 10 == 0:
                await trio.sleep(0.001)
        assert [data for data, _ in await drain(rx)] == [numbered(i) for i in range(100)]


async def test_nothing_crosses_a_partition_until_heal(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, c)):
        net.set_link(a, b, latency_s=0.1)
        sa, sb, sc = (net.datagram_socket(n, PORT) for n in (a, b, c))
        for i in range(5):
            await sa.send_to(numbered(i), sb.local_address)  # in flight when the cut comes
        await trio.sleep(0.05)
        net.partition({a}, {b})
        for i in range(5, 10):
            await sa.send_to(numbered(i), sb.local_address)  # sent across the cut
            await sb.send_to(numbered(i), sa.local_address)  # either way
        await sc.send_to(b"from c", sb.local_address)  # c is not cut off
        assert [data for data, _ in await drain(sb)] == [b"from c"]
        assert await drain(sa) == []
        assert net.datagram_statistics().blocked == 15

        net.heal()
        await sa.send_to(b"after", sb.local_address)
        assert await drain(sb) == [(b"after", sa.local_address)]


async def test_nothing_reaches_or_leaves_a_crashed_node(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with open_sim(seed, 2) as (net, (a, b)):  # nodes may be pools as well as node ids
        net.set_link(a, b, latency_s=0.1)
        sa, sb = net.datagram_socket(a, PORT), net.datagram_socket(b, PORT)
        await sa.send_to(b"to b, in flight", sb.local_address)
        await sb.send_to(b"from b, in flight", sa.local_address)
        await trio.sleep(0.05)
        net.crash(b)
        await sa.send_to(b"to the crashed b", sb.local_address)
        await sb.send_to(b"from the crashed b", sa.local_address)
        assert await drain(sa) == []
        with trio.move_on_after(5) as waiting:  # a crashed node's receivers see nothing, not even an error
            await sb.receive_from()
        assert waiting.cancelled_caught
        stats = net.datagram_statistics()
        assert (stats.sent, stats.delivered) == (4, 0)

        restarted = net.datagram_socket(b, PORT)  # the crash freed the port
        await sa.send_to(b"to b, restarted", restarted.local_address)
        await restarted.send_to(b"from b, restarted", sa.local_address)
        assert await drain(restarted) == [(b"to b, restarted", sa.local_address)]
        assert await drain(sa) == [(b"from b, restarted", restarted.local_address)]
        sb.close()  # closing the crashed socket leaves the restarted one bound
        with pytest.raises(DatagramBindError):
            net.datagram_socket(b, PORT)


async def test_oversize_datagrams_are_refused(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, _c)):
        tx, rx = net.datagram_socket(a, PORT), net.datagram_socket(b, PORT)
        with pytest.raises(DatagramTooLarge, match="at most 1200 bytes, got 1201"):
            await tx.send_to(bytes(MAX_DATAGRAM_BYTES + 1), rx.local_address)
        await tx.send_to(bytes(MAX_DATAGRAM_BYTES), rx.local_address)
        await tx.send_to(b"", rx.local_address)
        assert sorted(data for data, _ in await drain(rx)) == [b"", bytes(MAX_DATAGRAM_BYTES)]
        assert net.datagram_statistics().sent == 2


async def test_binding(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, _c)):
        first = net.datagram_socket(a, PORT)
        with pytest.raises(DatagramBindError, match="already in use"):
            net.datagram_socket(a, PORT)
        net.datagram_socket(b, PORT)  # the same port on another node
        any1, any2 = net.datagram_socket(a, 0), net.datagram_socket(a, 0)
        ports = {any1.local_address[1], any2.local_address[1]}
        assert len(ports) == 2 and 0 not in ports
        with pytest.raises(DatagramBindError, match=r"a port is 1\.\.65535"):
            net.datagram_socket(a, 65536)
        first.close()
        first.close()  # idempotent
        net.datagram_socket(a, PORT)  # free again


async def test_the_receive_queue_is_bounded(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, _c)):
        tx, rx = net.datagram_socket(a, PORT), net.datagram_socket(b, PORT, receive_queue_len=4)
        for i in range(10):
            await tx.send_to(numbered(i), rx.local_address)
        await trio.sleep(1)
        assert rx.statistics().queued == 4 and rx.statistics().dropped_queue_full == 6
        assert len(await drain(rx)) == 4
        assert net.datagram_statistics().queue_full == 6


async def test_unbound_addresses_swallow_datagrams(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, b, _c)):
        tx = net.datagram_socket(a, PORT)
        await tx.send_to(b"nobody there", (net.host(b), PORT))
        await tx.send_to(b"no such host", ("192.0.2.1", PORT))
        await trio.sleep(1)
        assert net.datagram_statistics().unbound == 2


async def test_close_ends_a_waiting_receiver(autojump_clock: trio.testing.MockClock, seed: int) -> None:
    async with running(seed) as (net, (a, _b, _c)):
        sock = net.datagram_socket(a, PORT)
        async with trio.open_nursery() as nursery:

            async def receiver() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await sock.receive_from()

            nursery.start_soon(receiver)
            await trio.sleep(1)
            sock.close()
        with pytest.raises(trio.ClosedResourceError):
            await sock.send_to(b"x", sock.local_address)


def test_a_seed_replays_exactly(seed: int) -> None:
    # One sender and one receiver: no scheduling choices, so the seed fixes every fate and arrival time.
    def run_once() -> list[tuple[float, bytes]]:
        arrivals: list[tuple[float, bytes]] = []

        async def main() -> None:
            async with running(seed) as (net, (a, b, _c)):
                net.set_link(a, b, latency_s=0.01, jitter_s=0.02, loss=0.3)
                tx, rx = net.datagram_socket(a, PORT), net.datagram_socket(b, PORT)

                async def receiver() -> None:
                    while True:
                        data, _ = await rx.receive_from()
                        arrivals.append((trio.current_time(), data))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(receiver)
                    for i in range(200):
                        await tx.send_to(numbered(i), rx.local_address)
                        await trio.sleep(0.001)
                    await trio.sleep(1)
                    nursery.cancel_scope.cancel()

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        return arrivals

    first = run_once()
    assert 100 < len(first) < 200
    assert run_once() == first
