"""The fetcher and its spool under a mock clock: merging, retries across sources, timeouts, backpressure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.blockstore import root_of_bytes
from lightning.blockstore.component import Blockstore
from lightning.blockstore.config import BlockstoreConfig
from lightning.fetcher import Fetcher, NotFound, OriginFailed, Pointer, Rewound, Sink, Spool, SpoolFailed
from lightning.fetcher.config import FetcherConfig


class ScriptedOrigin:
    """An origin double: serves ``data`` (already 'verified') in chunks, optionally failing or stalling."""

    def __init__(self, name: str, data: bytes | None, *, fail_after: int | None = None, stall_after: int | None = None,
                 chunk: int = 100_000, delay_s: float = 0.01) -> None:  # fmt: skip
        self.name = name
        self.data = data
        self.fail_after = fail_after
        self.stall_after = stall_after
        self.chunk = chunk
        self.delay_s = delay_s
        self.calls = 0

    def handles(self, pointer: Pointer) -> bool:
        return True

    async def fetch(self, pointer: Pointer, sink: Sink) -> None:
        self.calls += 1
        if self.data is None:
            raise NotFound(f"{self.name} has no {pointer}")
        sink.set_total_len(len(self.data))
        for pos in range(0, len(self.data), self.chunk):
            if self.fail_after is not None and pos >= self.fail_after:
                raise OriginFailed(f"{self.name} broke at {pos}")
            if self.stall_after is not None and pos >= self.stall_after:
                await trio.sleep_forever()
            await trio.sleep(self.delay_s)
            await sink.write(self.data[pos : pos + self.chunk])


def run_sim(test, tmp_path: Path, sources, **fetcher_kw):
    async def main() -> None:
        bs = Blockstore(BlockstoreConfig(map_size_bytes=1 << 30), tmp_path / "bs", inline=True)
        config = FetcherConfig(first_byte_timeout_s=5, idle_timeout_s=5, **fetcher_kw)
        fetcher = Fetcher(config, bs, sources)
        async with trio.open_nursery() as outer:
            await outer.start(bs.run)
            async with trio.open_nursery() as inner:  # stops before the blockstore it writes to
                await inner.start(fetcher.run)
                await test(bs, fetcher)
                inner.cancel_scope.cancel()
            outer.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def read_all(spool: Spool, offset: int = 0) -> bytes:
    rid = spool.open_reader(offset)
    out = bytearray()
    try:
        while chunk := await spool.read(rid):
            out += chunk
    finally:
        spool.close_reader(rid)
    return bytes(out)


DATA = os.urandom(1_000_000)
P = Pointer("ipfs", "bafytest", "dir/file.bin")


def test_concurrent_requests_merge_into_one_download(tmp_path):
    origin = ScriptedOrigin("origin", DATA)

    async def test(bs, fetcher):
        d1 = fetcher.start(P)
        d2 = fetcher.start(P)
        assert d1 is d2
        results = []
        async with trio.open_nursery() as n:
            r1 = d1.spool.open_reader()
            r2 = d2.spool.open_reader()

            async def drain(rid):
                out = bytearray()
                while chunk := await d1.spool.read(rid):
                    out += chunk
                results.append(bytes(out))

            n.start_soon(drain, r1)
            n.start_soon(drain, r2)
        assert results == [DATA, DATA] and origin.calls == 1
        await d1.done.wait()
        assert d1.spool.root == root_of_bytes(DATA)
        assert bs.resolve_alias(P.alias) == d1.spool.root
        assert b"".join([bytes(c) async for c in bs.read_range(d1.spool.root)]) == DATA

    run_sim(test, tmp_path, [origin])


def test_retry_on_another_source_skips_bytes_already_served(tmp_path):
    broken = ScriptedOrigin("peer", DATA, fail_after=400_000)
    good = ScriptedOrigin("origin", DATA)

    async def test(bs, fetcher):
        d = fetcher.start(P)
        assert await read_all(d.spool) == DATA
        await d.done.wait()
        assert d.source == "origin" and broken.calls == 1 and good.calls == 1
        assert bs.statistics().objects == 1 and bs.statistics().staging_writers == 0

    run_sim(test, tmp_path, [broken, good])


def test_a_stalled_source_times_out(tmp_path):
    stalled = ScriptedOrigin("peer", DATA, stall_after=200_000)
    good = ScriptedOrigin("origin", DATA)

    async def test(bs, fetcher):
        d = fetcher.start(P)
        assert await read_all(d.spool) == DATA
        assert fetcher.metrics.failures.labels("peer", "OriginTimeout")._value.get() == 1

    run_sim(test, tmp_path, [stalled, good])


def test_all_sources_failing_fails_the_spool(tmp_path):
    async def test(bs, fetcher):
        d = fetcher.start(P)
        with pytest.raises(SpoolFailed, match="not found"):
            await read_all(d.spool)
        await d.done.wait()
        assert bs.resolve_alias(P.alias) is None and bs.statistics().objects == 0 and bs.statistics().blocks == 0

    run_sim(test, tmp_path, [ScriptedOrigin("a", None), ScriptedOrigin("b", None)])


def test_spool_backpressure_and_rewind(tmp_path):
    async def test(bs, fetcher):
        spool = Spool(max_bytes=1000)
        rid = spool.open_reader()
        spool.set_total_len(5000)
        appended = 0

        async def writer() -> None:
            nonlocal appended
            for k in range(10):
                await spool.append(bytes([k]) * 500)
                appended += 500
            spool.finish(b"r" * 32)

        async with trio.open_nursery() as n:
            n.start_soon(writer)
            await trio.sleep(1)
            assert appended <= 1000  # the reader has not read: the writer waits
            out = bytearray()
            while chunk := await spool.read(rid):
                out += chunk
        assert bytes(out) == b"".join(bytes([k]) * 500 for k in range(10))
        with pytest.raises(Rewound):
            spool.open_reader(0)  # dropped once every reader passed it

    run_sim(test, tmp_path, [])


def test_queue_limit(tmp_path):
    slow = ScriptedOrigin("origin", DATA, delay_s=10)

    async def test(bs, fetcher):
        fetcher.start(Pointer("ipfs", "a"))
        fetcher.start(Pointer("ipfs", "b"))
        from lightning.fetcher import FetchError

        with pytest.raises(FetchError, match="too many downloads"):
            fetcher.start(Pointer("ipfs", "c"))

    run_sim(test, tmp_path, [slow], max_concurrent=1, max_queued=1)
