"""Block transfer between pools on the simulated network, storage inline (blocks.py)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from lightning.blockstore import BLOCK_SIZE
from lightning.blockstore.component import Blockstore
from lightning.blockstore.config import BlockstoreConfig
from lightning.blockstore.verify import HEADER_SIZE
from lightning.ids import NodeId
from lightning.net import BadRequest, NotHere, ReplyWriter, TooManyRequests
from lightning.net.config import NetConfig
from lightning.net.content import ContentClient, ContentServer, FetchFailed
from lightning.net.sim import Link, SimNetwork, SimPool
from lightning.net.wire import Scope

SEEDS = [1, 2]


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed={s}")
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)


class Peer:
    def __init__(self, pool: SimPool, store: Blockstore, concurrency: int = 50) -> None:
        self.pool = pool
        self.store = store
        self.server = ContentServer(pool, store, concurrency=concurrency)
        self.fetcher = ContentClient(pool, store, timeout_s=10.0)


@asynccontextmanager
async def cluster(tmp_path: Path, seed: int, n: int, **kw: Any) -> AsyncIterator[tuple[SimNetwork, list[Peer]]]:
    net = SimNetwork(seed, link=Link(latency_s=0.01, jitter_s=0.005, loss=0.05), config=NetConfig(**kw))
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        peers = []
        for i in range(n):
            store = Blockstore(BlockstoreConfig(map_size_bytes=1 << 30), tmp_path / f"bs{i}", inline=True)
            await nursery.start(store.run)
            pool = net.pool()
            await nursery.start(pool.run)
            peers.append(Peer(pool, store))
        yield net, peers
        nursery.cancel_scope.cancel()


async def test_fetch_verifies_and_stores(autojump_clock: trio.testing.MockClock, seed: int, tmp_path: Path) -> None:
    data = random.Random(seed).randbytes(5 * BLOCK_SIZE + 1234)
    async with cluster(tmp_path, seed, 2) as (_net, (a, b)):
        root = await a.store.put(data)
        result = await b.fetcher.fetch(root, [a.pool.node_id])
        assert result.peer == a.pool.node_id and result.length == len(data)
        assert b"".join([c async for c in b.store.read_range(root)]) == data
        # Already here: no transfer.
        assert (await b.fetcher.fetch(root, [])).peer is None
        assert a.server.served == 1


async def test_byte_range_is_verified(autojump_clock: trio.testing.MockClock, seed: int, tmp_path: Path) -> None:
    data = random.Random(seed).randbytes(4 * BLOCK_SIZE)
    async with cluster(tmp_path, seed, 2) as (_net, (a, b)):
        root = await a.store.put(data)
        for lo, hi in [(0, 1), (BLOCK_SIZE - 5, BLOCK_SIZE + 5), (3 * BLOCK_SIZE + 7, 4 * BLOCK_SIZE)]:
            got = b"".join([c async for c in b.fetcher.read_range(a.pool.node_id, root, lo, hi)])
            assert got == data[lo:hi]
        assert not b.store.has(root)
        with pytest.raises(BadRequest):
            async for _ in b.fetcher.read_range(a.pool.node_id, root, 10, 5 * BLOCK_SIZE):
                pass


async def test_corrupting_peer_is_penalised_and_skipped(
    autojump_clock: trio.testing.MockClock, seed: int, tmp_path: Path
) -> None:
    data = random.Random(seed).randbytes(3 * BLOCK_SIZE + 99)
    async with cluster(tmp_path, seed, 3) as (_net, (good, evil, client)):
        root = await good.store.put(data)
        assert await evil.store.put(data) == root

        async def corrupt(peer: NodeId, msg: Any, out: ReplyWriter) -> None:
            stream = bytearray(b"".join(bytes(c) for c in evil.store.store.proof_stream(msg["root"])))
            stream[HEADER_SIZE + 1 + 32 + 4 + 1000] ^= 0x01  # a byte of block 0's data
            await out.start({"len": len(data), "start": 0, "end": 4})
            await out.send(bytes(stream))

        evil.pool.on_stream(Scope.BLOCKS, corrupt)
        with pytest.raises(FetchFailed, match="block 0 or its proof does not match"):
            await client.fetcher.fetch(root, [evil.pool.node_id])
        assert not client.store.has(root)
        assert client.store.statistics().staging_writers == 0 and client.store.statistics().blocks == 0
        result = await client.fetcher.fetch(root, [evil.pool.node_id, good.pool.node_id])
        assert result.peer == good.pool.node_id
        assert b"".join([c async for c in client.store.read_range(root)]) == data
        assert (
            client.pool.metrics.registry.get_sample_value(
                "lightning_net_penalties_total", {"reason": "sent a block that does not verify"}
            )
            == 2
        )


async def test_not_found_and_unknown_peers(autojump_clock: trio.testing.MockClock, seed: int, tmp_path: Path) -> None:
    async with cluster(tmp_path, seed, 2, handshake_timeout_s=1.0) as (net, (a, b)):
        ghost = net.pool()
        with pytest.raises(FetchFailed) as info:
            await b.fetcher.fetch(bytes(32), [a.pool.node_id, ghost.node_id])
        assert "no object" in str(info.value) and "no authenticated connection" in str(info.value)
        with pytest.raises(FetchFailed, match="no peers"):
            await b.fetcher.fetch(bytes(32), [])
        with pytest.raises(NotHere):
            async with b.pool.open_stream(a.pool.node_id, Scope.BLOCKS, {"root": bytes(32)}):
                pass


async def test_server_concurrency_limit(autojump_clock: trio.testing.MockClock, seed: int, tmp_path: Path) -> None:
    data = random.Random(seed).randbytes(8 * BLOCK_SIZE)
    async with cluster(tmp_path, seed, 2, stream_window_bytes=BLOCK_SIZE) as (_net, (a, b)):
        a.server = ContentServer(a.pool, a.store, concurrency=1)
        root = await a.store.put(data)
        async with b.pool.open_stream(a.pool.node_id, Scope.BLOCKS, {"root": root}) as first:
            await first.receive()  # the first transfer is under way and stalls on credit
            with pytest.raises(TooManyRequests):
                async with b.pool.open_stream(a.pool.node_id, Scope.BLOCKS, {"root": root}):
                    pass
        await trio.sleep(1.0)
        assert a.server.active == 0
        assert (await b.fetcher.fetch(root, [a.pool.node_id])).length == len(data)
