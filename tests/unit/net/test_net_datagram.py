"""Real UDP sockets (``lightning.net.datagram``) on loopback, under the real clock.

Every socket binds port 0 on 127.0.1.x, away from the node's fixed ports on 127.0.0.1. The ``fail_after`` bounds
only stop a broken test from hanging; loopback delivers at once.
"""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from lightning.net.datagram import (
    MAX_DATAGRAM_BYTES,
    DatagramBindError,
    DatagramTooLarge,
    UdpSocket,
    open_udp_socket,
)

HANG_S = 10


async def test_a_datagram_round_trips() -> None:
    with await open_udp_socket("127.0.1.1", 0) as a, await open_udp_socket("127.0.1.2", 0) as b:
        assert a.local_address[0] == "127.0.1.1" and a.local_address[1] != 0
        with trio.fail_after(HANG_S):
            await a.send_to(b"ping", b.local_address)
            data, sender = await b.receive_from()
            assert (data, sender) == (b"ping", a.local_address)
            await b.send_to(b"pong", sender)
            assert await a.receive_from() == (b"pong", b.local_address)
        assert (a.statistics().sent, a.statistics().received) == (1, 1)


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        a = await open_udp_socket("::1", 0)
    except DatagramBindError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    with a, await open_udp_socket("::1", 0) as b, trio.fail_after(HANG_S):
        await a.send_to(b"six", b.local_address)
        assert await b.receive_from() == (b"six", a.local_address)


async def test_oversize_is_refused_on_send_and_dropped_on_receipt() -> None:
    with await open_udp_socket("127.0.1.3", 0) as a, await open_udp_socket("127.0.1.4", 0) as b:
        with pytest.raises(DatagramTooLarge, match="at most 1200 bytes"):
            await a.send_to(bytes(MAX_DATAGRAM_BYTES + 1), b.local_address)
        assert a.statistics().sent == 0
        raw = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with raw, trio.fail_after(HANG_S):
            await raw.bind(("127.0.1.3", 0))
            await raw.sendto(bytes(1500), b.local_address)  # a peer ignoring the limit
            await a.send_to(bytes(MAX_DATAGRAM_BYTES), b.local_address)
            data, sender = await b.receive_from()
        assert (len(data), sender) == (MAX_DATAGRAM_BYTES, a.local_address)
        assert b.statistics().dropped_oversize == 1 and b.statistics().received == 1


async def test_bind_errors_say_what_to_do() -> None:
    with await open_udp_socket("127.0.1.5", 0) as a:
        with pytest.raises(DatagramBindError, match=r"127\.0\.1\.5:\d+/udp: the port is already in use .* configure"):
            await open_udp_socket("127.0.1.5", a.local_address[1])
    with pytest.raises(DatagramBindError, match="not on this machine; check the configured host"):
        await open_udp_socket("192.0.2.1", 0)  # TEST-NET-1: never a local address


async def test_close_ends_a_waiting_receiver() -> None:
    sock: UdpSocket = await open_udp_socket("127.0.1.6", 0)
    async with trio.open_nursery() as nursery:

        async def receiver() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await sock.receive_from()

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        sock.close()
    with pytest.raises(trio.ClosedResourceError):
        await sock.receive_from()
    with pytest.raises(trio.ClosedResourceError):
        await sock.send_to(b"x", ("127.0.1.6", 9))
    sock.close()  # idempotent
