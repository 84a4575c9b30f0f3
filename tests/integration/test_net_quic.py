"""The QUIC pool over real loopback UDP, in process: authentication, admission, streams, backpressure."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from lightning.codec import frame
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net import (
    NotHere,
    OpenAdmission,
    QuicPool,
    ReplyWriter,
    Scope,
    StaticAdmission,
    Unauthorized,
    WrongPeerKey,
)
from lightning.net.config import NetConfig
from lightning.net.driver import QuicStreamIO
from lightning.net.endpoint import CID_BYTES
from lightning.net.errors import PeerUnavailable
from lightning.net.identity import ALPN
from lightning.net.wire import CloseCode

CONFIG = NetConfig(port=0, datagram_bytes=1452, handshake_timeout_s=5.0)


@asynccontextmanager
async def pools(n: int, *, admitted: int | None = None, config: NetConfig = CONFIG) -> AsyncIterator[list[QuicPool]]:
    """``n`` pools on 127.0.0.1..n; the first ``admitted`` (default all) admit each other."""
    keys = [SigningKey.generate() for _ in range(n)]
    members = [NodeId.of(k) for k in keys[: n if admitted is None else admitted]]
    admission = StaticAdmission(nodes=members, committee=members[:1])
    out = [QuicPool(config, k, host=f"127.0.0.{i + 1}", admission=admission) for i, k in enumerate(keys)]
    async with trio.open_nursery() as nursery:
        for p in out:
            await nursery.start(p.run)
        for p in out:
            for q in out:
                if p is not q:
                    assert q.address is not None
                    p.add_address(q.node_id, q.address)
        yield out
        nursery.cancel_scope.cancel()


async def echo(peer: NodeId, msg: Any) -> Any:
    return {"from": bytes(peer), "msg": msg}


async def test_requests_messages_and_streams_both_ways() -> None:
    async with pools(2) as (a, b):
        for p in (a, b):
            p.on_request(Scope.SYNC, echo)
        got: list[Any] = []
        all_in = trio.Event()

        async def on_msg(peer: NodeId, msg: Any) -> None:
            got.append(msg)
            if len(got) == 200:
                all_in.set()

        b.on_message(Scope.BROADCAST, on_msg)

        async def blob(peer: NodeId, msg: Any, out: ReplyWriter) -> None:
            await out.start({"size": msg})
            await out.send(bytes(range(256)) * (msg // 256))

        b.on_stream(Scope.BLOCKS, blob)
        assert (await a.request(b.node_id, Scope.SYNC, "hi"))["from"] == a.node_id
        assert (await b.request(a.node_id, Scope.SYNC, "back"))["from"] == b.node_id  # same connection
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(a.request, b.node_id, Scope.SYNC, i)
        for i in range(200):
            await a.send(b.node_id, Scope.BROADCAST, i)
        async with a.open_stream(b.node_id, Scope.BLOCKS, 8 * 1024 * 1024) as reply:
            assert reply.header == {"size": 8 * 1024 * 1024}
            assert await reply.read_all(10**9) == bytes(range(256)) * (8 * 1024 * 1024 // 256)
        with trio.fail_after(10):
            await all_in.wait()
        assert got == list(range(200))
        assert a.statistics().connections == b.statistics().connections == 1
        assert a.peers() == [b.node_id] and b.peers() == [a.node_id]
        sample = a.metrics.registry.get_sample_value
        assert sample("lightning_net_bytes_total", {"scope": "blocks", "direction": "in"}) >= 8 * 1024 * 1024
        assert sample("lightning_net_request_seconds_count", {"scope": "sync"}) == 101


async def test_wrong_key_and_unadmitted_peers_are_refused() -> None:
    async with pools(3, admitted=2) as (a, b, stranger):
        b.on_request(Scope.SYNC, echo)
        impostor = NodeId.of(SigningKey.generate())
        assert b.address is not None
        a.add_address(impostor, b.address)  # b's address, someone else's key
        with pytest.raises(WrongPeerKey, match="proved node key"):
            await a.request(impostor, Scope.SYNC, 1)
        with pytest.raises(PeerUnavailable, match="next dial in"):  # backing off, no new dial
            await a.request(impostor, Scope.SYNC, 1)
        with pytest.raises(Unauthorized, match="not admitted"):
            await stranger.request(b.node_id, Scope.SYNC, 1)
        with pytest.raises(Unauthorized, match="consensus"):  # a is the committee, b is not
            await b.request(a.node_id, Scope.CONSENSUS, 1)
        assert (await a.request(b.node_id, Scope.SYNC, "ok"))["msg"] == "ok"
        assert b.metrics.rejections("handshake") == 2  # the stranger, and the dial a dropped (wrong key)


class RawClient:
    """A bare aioquic client on its own socket, to misbehave before authenticating."""

    def __init__(self, address: tuple[str, int]) -> None:
        cfg = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], connection_id_length=CID_BYTES)
        cfg.verify_mode = ssl.CERT_NONE
        self.quic = QuicConnection(configuration=cfg)
        self.address = address
        self.sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        self.events: list[events.QuicEvent] = []

    async def flush(self) -> None:
        for data, addr in self.quic.datagrams_to_send(now=trio.current_time()):
            await self.sock.sendto(data, addr)

    async def pump_until(self, kind: type[events.QuicEvent]) -> events.QuicEvent:
        while True:
            for ev in self.events:
                if isinstance(ev, kind):
                    return ev
            timer = self.quic.get_timer()
            with trio.move_on_at(timer if timer is not None else trio.current_time() + 1):
                data, addr = await self.sock.recvfrom(65536)
                self.quic.receive_datagram(data, addr, now=trio.current_time())
            if timer is not None and trio.current_time() >= timer:
                self.quic.handle_timer(now=trio.current_time())
            while (ev := self.quic.next_event()) is not None:
                self.events.append(ev)
            await self.flush()

    async def handshake(self) -> None:
        await self.sock.bind(("127.0.0.1", 0))
        self.quic.connect(self.address, now=trio.current_time())
        await self.flush()
        await self.pump_until(events.HandshakeCompleted)


@pytest.mark.parametrize("misbehaviour", ["stream before proof", "garbage proof"])
async def test_nothing_is_accepted_before_the_client_proof(misbehaviour: str) -> None:
    async with pools(1) as (server,):
        handled = []

        async def record(peer: NodeId, msg: Any) -> Any:
            handled.append(msg)
            return msg

        server.on_request(Scope.SYNC, record)
        assert server.address is not None
        client = RawClient(server.address)
        with trio.fail_after(10):
            await client.handshake()
            if misbehaviour == "stream before proof":
                client.quic.send_stream_data(4, bytes((2, Scope.SYNC)) + frame(b"\x01"), end_stream=True)
            else:
                client.quic.send_stream_data(0, frame(b"not a proof"), end_stream=True)
            await client.flush()
            closed = await client.pump_until(events.ConnectionTerminated)
        assert isinstance(closed, events.ConnectionTerminated)
        assert closed.error_code in (CloseCode.PROTOCOL, CloseCode.UNAUTHORIZED)
        assert handled == [] and server.peers() == []


SILENT_PEER = """
import trio
from lightning.net.config import NetConfig
from lightning.crypto import SigningKey
from lightning.net import OpenAdmission, QuicPool

async def main():
    key = SigningKey.generate()
    pool = QuicPool(NetConfig(port=0), key, host="127.0.0.1", admission=OpenAdmission())
    async with trio.open_nursery() as nursery:
        address = await nursery.start(pool.run)
        print(key.public.hex, address[1], flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


async def test_send_backpressure_bounds_the_buffer() -> None:
    """A peer that stops acknowledging (SIGSTOP) parks the writer once the stream buffers ``send_buffer_bytes``."""
    proc = await trio.lowlevel.open_process([sys.executable, "-c", SILENT_PEER], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some()
                assert chunk, "the silent peer exited"
                line += chunk
        key_hex, port = line.decode().split()
        peer = NodeId(bytes.fromhex(key_hex))
        config = NetConfig(port=0, send_buffer_bytes=256 * 1024, handshake_timeout_s=10.0)
        a = QuicPool(config, SigningKey.generate(), host="127.0.0.1", admission=OpenAdmission())
        a.add_address(peer, ("127.0.0.1", int(port)))
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            with pytest.raises(NotHere):  # connected and authenticated; it has no handlers
                await a.request(peer, Scope.SYNC, 1)
            stream = a._peers[peer].conns[0].conn.open_stream()
            assert isinstance(stream, QuicStreamIO)
            written = 0

            async def writer() -> None:
                nonlocal written
                while True:
                    await stream.send(b"w" * 65536)
                    written += 65536

            os.kill(proc.pid, signal.SIGSTOP)
            nursery.start_soon(writer)
            await trio.testing.wait_all_tasks_blocked(cushion=0.2)
            # The writer is parked: what aioquic buffers stays within the limit (plus the last write).
            assert 0 < written <= config.send_buffer_bytes + 65536
            assert stream.buffered() <= config.send_buffer_bytes + 65536
            nursery.cancel_scope.cancel()
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def test_unresolvable_address_fails_the_dial_not_the_node() -> None:
    async with pools(1, config=NetConfig(port=0, handshake_timeout_s=3.0)) as (a,):
        ghost = NodeId.of(SigningKey.generate())
        a.add_address(ghost, ("unresolvable.invalid", 4300))
        with pytest.raises(PeerUnavailable):
            await a.request(ghost, Scope.SYNC, 1)
        assert a.statistics().connections == 0  # and the pool is still serving
