"""Peers as a content source (lightning/fetcher/peer_source.py) behind the real Fetcher, on the simulated network
(lightning/net/sim.py, autojump clock, blockstores inline): failover between peers while nothing reached the
client, hand-over to the next source once bytes flowed, penalties for bad blocks, resolver records for IPFS
pointers."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import trio.testing

from lightning.blockstore import BLOCK_SIZE, root_of_bytes
from lightning.blockstore.component import Blockstore
from lightning.config import Config
from lightning.fetcher import Download, Fetcher, NotFound, Pointer, Sink, Source, SpoolFailed
from lightning.fetcher.peer_source import PeerSource
from lightning.fetcher.resolver import Resolver
from lightning.ids import NodeId
from lightning.net import ReplyWriter
from lightning.net.content import ContentClient, ContentServer
from lightning.net.sim import SimNetwork, SimPool
from lightning.net.wire import Scope

DATA = random.Random(14).randbytes(4 * BLOCK_SIZE + 321)
ROOT = root_of_bytes(DATA)
BLAKE3 = Pointer("blake3", ROOT.hex())
IPFS = Pointer("ipfs", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "movie.mp4")


@dataclass
class Peer:
    pool: SimPool
    store: Blockstore
    server: ContentServer

    @property
    def node_id(self) -> NodeId:
        return self.pool.node_id

    def corrupt_replies(self, index: int) -> None:
        """From now on this peer sends block ``index`` with one byte flipped (and every block before it intact)."""

        async def serve(peer: NodeId, msg: Any, out: ReplyWriter) -> None:
            info = self.store.info(msg["root"])
            assert info is not None
            await out.start({"len": info.length, "start": 0, "end": info.block_count})
            for i, chunk in enumerate(self.store.store.proof_stream(info.root)):
                data = bytearray(chunk)
                if i == 2 + 2 * index:  # header, then (proof, block) per block
                    data[len(data) // 2] ^= 0x01
                await out.send(bytes(data))

        self.pool.on_stream(Scope.BLOCKS, serve)


class BytesOrigin:
    """The origin behind the peers: serves DATA for any pointer, already verified."""

    name = "origin"

    def __init__(self) -> None:
        self.calls = 0

    def handles(self, pointer: Pointer) -> bool:
        return True

    async def fetch(self, pointer: Pointer, sink: Sink) -> None:
        self.calls += 1
        sink.set_total_len(len(DATA))
        for pos in range(0, len(DATA), 100_000):
            await sink.write(DATA[pos : pos + 100_000])


@dataclass
class Net:
    net: SimNetwork
    pool: SimPool
    store: Blockstore
    peers: list[Peer]
    ghost: NodeId  # a node nobody can reach

    def metric(self, name: str, **labels: str) -> float:
        return self.pool.metrics.registry.get_sample_value(name, labels) or 0.0

    @asynccontextmanager
    async def fetcher(self, sources: Sequence[Source]) -> AsyncIterator[Fetcher]:
        config = dataclasses.replace(Config().fetcher, first_byte_timeout_s=5.0, idle_timeout_s=5.0)
        fetcher = Fetcher(config, self.store, sources)
        async with trio.open_nursery() as nursery:
            await nursery.start(fetcher.run)
            yield fetcher
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def network(tmp_path: Path, peers: int, *, holding: Sequence[int] = ()) -> AsyncIterator[Net]:
    """A client and ``peers`` peers; the peers listed in ``holding`` store DATA."""
    config = Config()
    net = SimNetwork(14, config=dataclasses.replace(config.net, handshake_timeout_s=1.0))
    blockstore_config = dataclasses.replace(config.blockstore, map_size_bytes=1 << 30)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        nodes = []
        for i in range(peers + 1):
            store = Blockstore(blockstore_config, tmp_path / f"bs{i}", inline=True)
            await nursery.start(store.run)
            pool = net.pool()
            await nursery.start(pool.run)
            nodes.append(Peer(pool, store, ContentServer(pool, store)))
        for i in holding:
            assert await nodes[1 + i].store.put(DATA) == ROOT
        client = nodes[0]
        yield Net(net, client.pool, client.store, nodes[1:], net.pool().node_id)
        nursery.cancel_scope.cancel()


def peer_source(net: Net, located: dict[str, tuple[bytes, list[NodeId]]]) -> PeerSource:
    return PeerSource(ContentClient(net.pool, net.store, timeout_s=10.0), lambda p: located.get(p.alias))


async def read_all(download: Download) -> bytes:
    spool = download.spool
    rid = spool.open_reader()
    out = bytearray()
    try:
        while chunk := await spool.read(rid):
            out += chunk
    finally:
        spool.close_reader(rid)
    await download.done.wait()
    return bytes(out)


async def test_peers_are_tried_in_turn_until_one_has_it(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with network(tmp_path, 2, holding=[1]) as net:
        empty, holder = net.peers
        origin = BytesOrigin()
        source = peer_source(net, {BLAKE3.alias: (ROOT, [empty.node_id, net.ghost, holder.node_id])})
        async with net.fetcher([source, origin]) as fetcher:
            download = fetcher.start(BLAKE3)
            assert await read_all(download) == DATA
        assert download.source == "peer" and download.spool.root == ROOT and origin.calls == 0
        assert holder.server.served == 1 and net.store.has(ROOT)
        assert net.metric("lightning_net_penalties_total", reason="sent a block that does not verify") == 0


async def test_a_peer_with_a_bad_first_block_is_penalised_and_skipped(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with network(tmp_path, 2, holding=[0, 1]) as net:
        evil, holder = net.peers
        evil.corrupt_replies(0)
        origin = BytesOrigin()
        source = peer_source(net, {BLAKE3.alias: (ROOT, [evil.node_id, holder.node_id])})
        async with net.fetcher([source, origin]) as fetcher:
            download = fetcher.start(BLAKE3)
            assert await read_all(download) == DATA
        assert download.source == "peer" and origin.calls == 0 and holder.server.served == 1
        assert net.metric("lightning_net_penalties_total", reason="sent a block that does not verify") == 1


async def test_a_peer_failing_after_bytes_flowed_hands_over_to_the_next_source(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Blocks 0 and 1 reached the client before block 2 failed: the peer source gives up (another peer would start
    from byte 0 again) and the origin continues; the client sees one seamless, exact body."""
    async with network(tmp_path, 2, holding=[0, 1]) as net:
        evil, holder = net.peers
        evil.corrupt_replies(2)
        origin = BytesOrigin()
        source = peer_source(net, {BLAKE3.alias: (ROOT, [evil.node_id, holder.node_id])})
        async with net.fetcher([source, origin]) as fetcher:
            download = fetcher.start(BLAKE3)
            assert await read_all(download) == DATA
            assert fetcher.metrics.failures.labels("peer", "OriginFailed")._value.get() == 1
        assert download.source == "origin" and origin.calls == 1
        assert holder.server.served == 0  # not asked: bytes had already flowed
        assert net.store.has(ROOT) and b"".join([c async for c in net.store.read_range(ROOT)]) == DATA


async def test_no_known_holder_goes_to_the_origin(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with network(tmp_path, 1, holding=[0]) as net:
        origin = BytesOrigin()
        async with net.fetcher([peer_source(net, {}), origin]) as fetcher:
            download = fetcher.start(IPFS)
            assert await read_all(download) == DATA
            assert fetcher.metrics.failures.labels("peer", "NotFound")._value.get() == 1
        assert download.source == "origin" and net.peers[0].server.served == 0


async def test_every_peer_failing_is_not_found_with_each_reason(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with network(tmp_path, 2, holding=[1]) as net:
        empty, evil = net.peers
        evil.corrupt_replies(0)
        source = peer_source(net, {BLAKE3.alias: (ROOT, [empty.node_id, evil.node_id, net.ghost])})
        async with net.fetcher([source]) as fetcher:
            download = fetcher.start(BLAKE3)
            try:
                await read_all(download)
            except SpoolFailed as exc:
                error = exc.__cause__
            else:
                raise AssertionError("the download should have failed")
        assert isinstance(error, NotFound)
        text = str(error)
        assert f"{empty.node_id.short()}: not there" in text
        assert f"{evil.node_id.short()}: " in text and "does not match" in text
        assert f"{net.ghost.short()}: " in text
        assert not net.store.has(ROOT) and net.store.statistics().staging_writers == 0


async def test_an_ipfs_pointer_is_fetched_from_the_holders_of_its_record(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with network(tmp_path, 2, holding=[1]) as net:
        empty, holder = net.peers
        resolver = Resolver(None)
        resolver.learn(IPFS.alias, ROOT, holder.node_id)
        resolver.learn(IPFS.alias, ROOT, empty.node_id)  # newest first: the empty one is asked first
        source = PeerSource(ContentClient(net.pool, net.store, timeout_s=10.0), lambda p: resolver.lookup(p.alias))
        assert source.handles(IPFS) and source.handles(BLAKE3)
        assert not source.handles(Pointer("url", "https://example.com/f", "sha256-x"))  # SRI: origin only
        async with net.fetcher([source]) as fetcher:
            download = fetcher.start(IPFS)
            assert await read_all(download) == DATA
        assert download.source == "peer" and holder.server.served == 1
        assert net.store.resolve_alias(IPFS.alias) == ROOT  # recorded for the next client
