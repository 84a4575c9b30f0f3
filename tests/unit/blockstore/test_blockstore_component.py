"""The node-facing async blockstore: writer thread, cancellation, GC after publish, metrics, inline mode."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from lightning.blockstore import BLOCK_SIZE, VerificationFailed, root_of_bytes
from lightning.blockstore.component import Blockstore
from lightning.blockstore.config import BlockstoreConfig


async def start(nursery, tmp_path, **kw):
    registry = kw.pop("registry", None)
    bs = Blockstore(BlockstoreConfig(map_size_bytes=1 << 30, **kw), tmp_path / "bs", registry=registry)
    await nursery.start(bs.run)
    return bs


async def test_put_read_and_metrics(tmp_path):
    registry = CollectorRegistry()
    async with trio.open_nursery() as nursery:
        bs = await start(nursery, tmp_path, registry=registry)
        data = os.urandom(2 * BLOCK_SIZE + 9)
        root = await bs.put(data, pin=True)
        assert root == root_of_bytes(data)
        got = b"".join([c async for c in bs.read_range(root)])
        assert got == data
        assert b"".join([c async for c in bs.read_range(root, 5, BLOCK_SIZE + 5)]) == data[5 : BLOCK_SIZE + 5]
        assert registry.get_sample_value("lightning_blockstore_bytes") == len(data)
        assert registry.get_sample_value("lightning_blockstore_objects") == 1
        assert registry.get_sample_value("lightning_blockstore_pinned_objects") == 1
        assert registry.get_sample_value("lightning_blockstore_evictions_total") == 0
        assert registry.get_sample_value("lightning_blockstore_verification_failures_total") == 0
        nursery.cancel_scope.cancel()
    assert registry.get_sample_value("lightning_blockstore_bytes") is None  # unregistered on stop


async def test_cancelled_writer_leaves_nothing(tmp_path):
    async with trio.open_nursery() as nursery:
        bs = await start(nursery, tmp_path)
        staged = trio.Event()

        async def slow_put() -> None:
            async with bs.writer() as w:
                await w.write(os.urandom(40 * BLOCK_SIZE))
                staged.set()
                await trio.sleep_forever()

        async with trio.open_nursery() as inner:
            inner.start_soon(slow_put)
            await staged.wait()
            assert bs.statistics().staging_writers == 1
            inner.cancel_scope.cancel()
        s = bs.statistics()
        assert s.staging_writers == 0 and s.blocks == 0 and s.objects == 0
        nursery.cancel_scope.cancel()


async def test_gc_runs_after_publish(tmp_path):
    async with trio.open_nursery() as nursery:
        bs = await start(nursery, tmp_path, capacity_bytes=3 * BLOCK_SIZE)
        first = await bs.put(os.urandom(2 * BLOCK_SIZE))
        second = await bs.put(os.urandom(2 * BLOCK_SIZE))
        assert not bs.has(first) and bs.has(second)
        assert bs.statistics().evictions == 1
        nursery.cancel_scope.cancel()


async def test_untrusted_writer(tmp_path):
    async with trio.open_nursery() as nursery:
        a = await start(nursery, tmp_path / "a")
        b = await start(nursery, tmp_path / "b")
        data = os.urandom(3 * BLOCK_SIZE)
        root = await a.put(data)
        stream = b"".join(bytes(c) for c in a.store.proof_stream(root))
        async with b.writer(expected_root=root) as w:
            await w.write(stream)
            assert await w.close() == root
        bad = bytearray(stream)
        bad[-1] ^= 1
        await b.delete(root)
        with pytest.raises(VerificationFailed):
            async with b.writer(expected_root=root) as w:
                await w.write(bytes(bad))
                await w.close()
        assert not b.has(root) and b.statistics().blocks == 0
        nursery.cancel_scope.cancel()


async def test_inline_mode_under_mock_clock(tmp_path):
    # Simulation runs storage inline so the autojump clock never races a thread.
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> None:
        bs = Blockstore(BlockstoreConfig(map_size_bytes=1 << 30), tmp_path / "bs", inline=True)
        async with trio.open_nursery() as nursery:
            await nursery.start(bs.run)
            root = await bs.put(b"x" * 1000)
            _ = [c async for c in bs.read_range(root)]
            await trio.sleep(3600)  # an hour of virtual time: touches flushed, nothing waits on a thread
            assert bs.store.get_info(root).length == 1000
            nursery.cancel_scope.cancel()

    await trio.to_thread.run_sync(lambda: trio.run(main, clock=clock))


async def test_stream_pipelined_ranges_and_corruption(tmp_path):
    from lightning.blockstore import CorruptBlock

    async with trio.open_nursery() as nursery:
        bs = await start(nursery, tmp_path)
        data = os.urandom(20 * BLOCK_SIZE + 77)  # more than two verifier batches
        root = await bs.put(data)
        info = bs.store.get_info(root)
        for a, b in [(0, None), (5, 6), (BLOCK_SIZE - 1, 9 * BLOCK_SIZE + 3), (len(data) - 10, len(data) + 5)]:
            got = b"".join([bytes(v) async for v in bs.stream(info, a, b)])
            assert got == data[a:b]
        # flip a bit in block 13: blocks 0..12 come out, then CorruptBlock(13)
        h = info.block_hash(13)
        with bs.store.env.begin(write=True) as txn:
            db = bs.store.env.open_db(b"blocks", txn=txn)
            raw = bytearray(txn.get(h, db=db))
            raw[0] ^= 1
            txn.put(h, bytes(raw), db=db)
        out = []
        with pytest.raises(CorruptBlock) as exc:
            async for view in bs.stream(info):
                out.append(bytes(view))
        assert exc.value.block_index == 13 and b"".join(out) == data[: 13 * BLOCK_SIZE]
        # a consumer that stops early releases its read transactions
        gen = bs.stream(info)
        await gen.__anext__()
        await gen.aclose()
        nursery.cancel_scope.cancel()
