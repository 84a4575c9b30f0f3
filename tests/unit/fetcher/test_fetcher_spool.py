"""The spool (lightning/fetcher/spool.py) on its own: backpressure over the slowest reader, late joiners, ranges,
failure — with no sleeps: ``wait_all_tasks_blocked`` shows where the writer stopped, and a property test runs
readers of random speeds under the autojump clock."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.fetcher import Rewound, Spool, SpoolFailed

ROOT = b"r" * 32


def chunk(k: int, size: int) -> bytes:
    return bytes([k % 251]) * size


async def read_until(spool: Spool, rid: int, n: int, end: int | None = None) -> bytes:
    out = bytearray()
    while len(out) < n:
        data = await spool.read(rid, end)
        assert data, "the spool ended early"
        out += data
    return bytes(out)


async def drain(spool: Spool, rid: int, end: int | None = None) -> bytes:
    out = bytearray()
    while data := await spool.read(rid, end):
        out += data
    return bytes(out)


async def test_the_writer_waits_for_the_slowest_reader() -> None:
    spool = Spool(max_bytes=1000)
    fast, slow = spool.open_reader(), spool.open_reader()
    chunks = [chunk(k, 300) for k in range(10)]
    data = b"".join(chunks)

    async def writer() -> None:
        for c in chunks:
            await spool.append(c)
        spool.finish(ROOT)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert spool.head == 900  # a fourth chunk would put 1200 bytes between the slowest reader and the head
        assert await read_until(spool, fast, 900) == data[:900]
        await trio.testing.wait_all_tasks_blocked()
        assert spool.head == 900  # the fast reader does not help: the slow one still needs byte 0
        assert await spool.read(slow) == data[:300]  # one chunk read → one chunk of room
        await trio.testing.wait_all_tasks_blocked()
        assert spool.head == 1200
        spool.close_reader(slow)  # a client that leaves stops holding the download back
        assert await drain(spool, fast) == data[900:]
    assert spool.finished and spool.total_len == len(data) and spool.root == ROOT


async def test_a_chunk_larger_than_the_window_still_goes_through() -> None:
    spool = Spool(max_bytes=100)
    rid = spool.open_reader()
    async with trio.open_nursery() as nursery:

        async def writer() -> None:
            await spool.append(chunk(1, 5000))  # nothing buffered: taken whole
            await spool.append(chunk(2, 10))  # waits until the reader took the big one
            spool.finish(ROOT)

        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert spool.head == 5000
        assert await drain(spool, rid) == chunk(1, 5000) + chunk(2, 10)


async def test_without_readers_the_spool_keeps_the_last_window_for_late_joiners() -> None:
    spool = Spool(max_bytes=1000)
    spool.set_total_len(3000)
    for k in range(10):
        await spool.append(chunk(k, 300))  # nobody reads: never waits
    data = b"".join(chunk(k, 300) for k in range(10))
    assert spool.head == 3000
    with pytest.raises(Rewound):
        spool.open_reader(0)
    with pytest.raises(Rewound):
        spool.open_reader(1799)  # whole chunks are kept: the last 1000 bytes start inside the one at 1800
    late = spool.open_reader(1850)
    assert await spool.read(late) == data[1850:2100]
    spool.finish(ROOT)
    assert await drain(spool, late) == data[2100:]


async def test_a_reader_ahead_of_the_head_waits_for_its_bytes() -> None:
    spool = Spool(max_bytes=1000)
    rid = spool.open_reader(450)
    async with trio.open_nursery() as nursery:
        got: list[bytes] = []

        async def reader() -> None:
            got.append(await spool.read(rid))

        nursery.start_soon(reader)
        await spool.append(chunk(1, 300))
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        await spool.append(chunk(2, 300))
    assert got == [chunk(2, 150)]


async def test_read_stops_at_the_end_of_a_range() -> None:
    spool = Spool(max_bytes=10_000)
    rid = spool.open_reader(100)
    await spool.append(chunk(1, 1000))
    assert await drain(spool, rid, end=250) == chunk(1, 150)  # b"" at the range's end, though not finished
    await spool.append(chunk(2, 1000))
    assert await spool.read(rid, end=250) == b""


async def test_length_and_failure_reach_every_reader() -> None:
    spool = Spool(max_bytes=10_000)
    rid = spool.open_reader()
    await spool.append(chunk(1, 500))
    error = ValueError("origin broke")
    spool.fail(error)
    assert await spool.read(rid) == chunk(1, 500)  # what verified before the failure is still delivered
    with pytest.raises(SpoolFailed) as info:
        await spool.read(rid)
    assert info.value.__cause__ is error
    assert await spool.wait_total_len() is None  # failed before a length was announced

    known = Spool(max_bytes=10)
    async with trio.open_nursery() as nursery:
        lengths: list[int | None] = []

        async def waiter() -> None:
            lengths.append(await known.wait_total_len())

        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert lengths == []
        known.set_total_len(1234)
    assert lengths == [1234, 1234]
    known.fail(error)
    assert await known.wait_total_len() == 1234


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=25),
    max_bytes=st.integers(1, 2000),
    readers=st.lists(st.tuples(st.integers(0, 25), st.integers(0, 5000), st.booleans()), min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
)
def test_readers_of_any_speed_get_exactly_their_bytes(
    sizes: list[int], max_bytes: int, readers: list[tuple[int, int, bool]], seed: int
) -> None:
    """Readers join after ``join`` chunks at an offset below the head, some with a range end, and read at random
    speeds. Each gets exactly its bytes or, if it joined behind every active reader, a Rewound; the writer never
    runs more than ``max_bytes`` (plus one chunk) ahead of the slowest active reader. (Joining at the head is
    test_a_reader_joining_at_the_head_does_not_stall_the_download.)"""
    rng = random.Random(seed)
    data = b"".join(chunk(k, n) for k, n in enumerate(sizes))
    largest = max(sizes)

    async def main() -> None:
        spool = Spool(max_bytes=max_bytes)
        positions: dict[int, int] = {}  # reader id → the offset it needs next
        joined = [trio.Event() for _ in sizes]

        def check_window() -> None:
            if positions:
                assert spool.head - min(positions.values()) <= max_bytes + largest

        async def writer() -> None:
            for k, n in enumerate(sizes):
                joined[k].set()
                await trio.testing.wait_all_tasks_blocked()  # readers due now have joined
                await spool.append(chunk(k, n))
                check_window()
                await trio.sleep(rng.random() / 100)
            spool.finish(ROOT)

        async def reader(join: int, offset: int, ranged: bool) -> None:
            await joined[min(join, len(sizes) - 1)].wait()
            offset = offset % spool.head if spool.head else 0
            end = min(offset + 777, len(data)) if ranged else None
            behind_everyone = not positions or offset < min(positions.values())
            try:
                rid = spool.open_reader(offset)
            except Rewound:
                assert behind_everyone, "rewound although an active reader still needed those bytes"
                return
            positions[rid] = offset
            got = bytearray()
            try:
                while piece := await spool.read(rid, end):
                    got += piece
                    positions[rid] = offset + len(got)
                    check_window()
                    await trio.sleep(rng.random() / 50)
            finally:
                del positions[rid]
                spool.close_reader(rid)
            assert bytes(got) == data[offset:end]

        with trio.fail_after(10_000):  # virtual seconds: a deadlock fails the example instead of hanging
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer)
                for join, offset, ranged in readers:
                    nursery.start_soon(reader, join, offset, ranged)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_reader_joining_at_the_head_does_not_stall_the_download() -> None:
    spool = Spool(max_bytes=1000)
    for k in range(4):
        await spool.append(chunk(k, 300))  # nobody reads: the last window is kept for late joiners
    rid = spool.open_reader(spool.head)  # e.g. a seek to the first byte not downloaded yet
    got: list[bytes] = []

    async def reader() -> None:
        got.append(await spool.read(rid))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        nursery.start_soon(spool.append, chunk(4, 300))
        await trio.testing.wait_all_tasks_blocked()
        try:
            assert got == [chunk(4, 300)]
        finally:
            nursery.cancel_scope.cancel()
