"""The dedup cache in memory and in LMDB: bounded, floor-raising, and the same after a reopen."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lightning.broadcast.seen import SeenCache
from lightning.broadcast.seen_store import SeenStore


def d(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_capacity_evicts_the_oldest_and_raises_the_floor() -> None:
    cache = SeenCache(3)
    for i, ts in enumerate([50, 10, 40, 30]):
        cache.add(d(i), ts)
    assert len(cache) == 3 and d(1) not in cache and cache.floor_ms == 10
    cache.add(d(0), 99)  # already there: nothing changes
    assert len(cache) == 3 and cache.floor_ms == 10


def test_expiry_forgets_and_raises_the_floor() -> None:
    cache = SeenCache(10)
    for i in range(5):
        cache.add(d(i), 100 + i)
    assert cache.expire(103) == 3
    assert [d(i) in cache for i in range(5)] == [False, False, False, True, True] and cache.floor_ms == 102


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 1000), st.booleans()), max_size=80))
def test_a_digest_is_remembered_or_covered_by_the_floor(ops: list[tuple[int, int, bool]]) -> None:
    """Whatever the sequence of adds and expiries, an added digest is either still known or its timestamp is at
    or below the floor (so a replay is refused either way); the size never exceeds the capacity."""
    cache = SeenCache(5)
    added: dict[bytes, int] = {}
    for i, ts, expire in ops:
        if expire:
            cache.expire(ts)
        else:
            if d(i) not in cache:
                added[d(i)] = ts
            cache.add(d(i), ts)
        assert len(cache) <= 5
    for digest, ts in added.items():
        assert digest in cache or ts <= cache.floor_ms


def test_store_round_trip_prune_and_floor(tmp_path: Path) -> None:
    store = SeenStore(tmp_path / "bc", map_size=16 * 1024 * 1024)
    try:
        assert store.load(0, 100) == ([], -1)
        store.add([(d(1), 1000), (d(2), 2000), (d(3), 3000)], 0, -1)
        assert store.load(1500, 100) == ([(d(2), 2000), (d(3), 3000)], -1)
        assert store.add([(d(4), 4000)], 2500, 1234) == 2  # prunes 1000 and 2000
        assert store.count() == 2
    finally:
        store.close()
    store = SeenStore(tmp_path / "bc", map_size=16 * 1024 * 1024)
    try:
        assert store.load(0, 100) == ([(d(3), 3000), (d(4), 4000)], 1234)
        # More entries than the cache holds: the newest are kept and the floor covers the rest.
        assert store.load(0, 1) == ([(d(4), 4000)], 3000)
    finally:
        store.close()
