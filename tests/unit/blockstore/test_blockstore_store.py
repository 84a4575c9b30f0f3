"""The LMDB store: publish atomically, dedup, verified reads, untrusted puts, GC, corruption, full map."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
from pathlib import Path

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.blockstore import (
    BLOCK_SIZE,
    BlockStore,
    BlockstoreFull,
    CorruptBlock,
    ObjectWriter,
    UnknownObject,
    VerificationFailed,
    hash_block,
    root_of_bytes,
)
from lightning.blockstore.store import _process_start


def content(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def store(tmp_path: Path):
    with BlockStore(tmp_path / "bs", map_size=1 << 30) as s:
        yield s


def put(store: BlockStore, data: bytes, *, pin: bool = False, chunk: int = 100_000) -> bytes:
    with ObjectWriter(store, pin=pin) as w:
        for i in range(0, len(data), chunk):
            w.write(data[i : i + chunk])
        return w.close()


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE + 17])
def test_round_trip_and_root(store, size):
    data = content(size)
    root = put(store, data)
    assert root == root_of_bytes(data)
    assert store.read_all(root) == data
    info = store.get_info(root)
    assert info.length == size and not info.pinned
    stats = store.statistics()
    assert stats.objects == 1 and stats.bytes == size and stats.staging_writers == 0


def test_identical_blocks_are_stored_once(store):
    block = os.urandom(BLOCK_SIZE)
    a = put(store, block * 3)
    b = put(store, os.urandom(10) + block)  # same bytes at another offset: different blocks
    c = put(store, block + block)
    s = store.statistics()
    assert s.objects == 3
    assert s.blocks == 1 + 2  # `block`, and b's two unaligned blocks
    store.delete(a)
    assert store.read_all(c) == block * 2
    store.delete(c)
    assert store.statistics().blocks == 2 and store.read_all(b)[10:] == block


def test_storing_the_same_object_twice_keeps_one(store):
    data = content(2 * BLOCK_SIZE + 5)
    r1 = put(store, data)
    r2 = put(store, data, pin=True)
    assert r1 == r2
    s = store.statistics()
    assert s.objects == 1 and s.pinned == 1 and s.bytes == len(data) and s.blocks == 3


@pytest.fixture(scope="module")
def range_store(tmp_path_factory):
    data = content(3 * BLOCK_SIZE + 50, seed=11)
    with BlockStore(tmp_path_factory.mktemp("ranges") / "bs", map_size=1 << 30) as s:
        yield s, put(s, data), data


@settings(max_examples=60)
@given(st.integers(0, 3 * BLOCK_SIZE + 100), st.integers(0, 3 * BLOCK_SIZE + 100))
def test_byte_ranges(range_store, a, b):
    s, root, data = range_store
    start, end = min(a, b), max(a, b)
    assert b"".join(s.read_range(root, start, end)) == data[start:end]


def test_unknown_root(store):
    with pytest.raises(UnknownObject, match="no object"):
        list(store.read_range(b"\x01" * 32))
    assert store.info(b"\x01" * 32) is None and not store.has(b"\x01" * 32)


def test_untrusted_put_from_a_proof_stream(tmp_path, store):
    data = content(5 * BLOCK_SIZE + 3)
    with BlockStore(tmp_path / "other", map_size=1 << 30) as source:
        root = put(source, data)
        stream = b"".join(bytes(c) for c in source.proof_stream(root))
    with ObjectWriter(store, expected_root=root) as w:
        for i in range(0, len(stream), 77_777):
            w.write(stream[i : i + 77_777])
        assert w.close() == root
    assert store.read_all(root) == data


def test_untrusted_put_rejects_a_bad_block_and_stores_nothing(tmp_path, store):
    data = content(5 * BLOCK_SIZE)
    with BlockStore(tmp_path / "other", map_size=1 << 30) as source:
        root = put(source, data)
        stream = bytearray(b"".join(bytes(c) for c in source.proof_stream(root)))
    stream[-BLOCK_SIZE * 2 + 5] ^= 0x01  # a byte of block 3
    with pytest.raises(VerificationFailed, match="block 3"), ObjectWriter(store, expected_root=root) as w:
        w.write(bytes(stream))
        w.close()
    s = store.statistics()
    assert not store.has(root) and s.objects == 0 and s.blocks == 0 and s.bytes == 0 and s.staging_writers == 0


def test_truncated_untrusted_stream(tmp_path, store):
    data = content(2 * BLOCK_SIZE)
    with BlockStore(tmp_path / "other", map_size=1 << 30) as source:
        root = put(source, data)
        stream = b"".join(bytes(c) for c in source.proof_stream(root))
    with pytest.raises(VerificationFailed, match=r"ended|truncat"), ObjectWriter(store, expected_root=root) as w:
        w.write(stream[:-10])
        w.close()
    assert store.statistics().blocks == 0


def test_a_writer_that_fails_leaves_nothing(store):
    keep = put(store, content(BLOCK_SIZE + 1, seed=3))
    before = store.statistics()
    with pytest.raises(RuntimeError), ObjectWriter(store) as w:
        w.write(os.urandom(40 * BLOCK_SIZE))  # several staged batches
        raise RuntimeError("client went away")
    assert store.statistics() == before
    assert store.read_all(keep) == content(BLOCK_SIZE + 1, seed=3)


def test_flipped_bit_in_a_stored_block_is_detected(store, caplog):
    data = content(3 * BLOCK_SIZE)
    root = put(store, data)
    info = store.get_info(root)
    h = info.block_hash(1)
    with store.env.begin(write=True) as txn:
        blocks = store.env.open_db(b"blocks", txn=txn)
        raw = bytearray(txn.get(h, db=blocks))
        raw[1000] ^= 0x10
        txn.put(h, bytes(raw), db=blocks)
    caplog.set_level(logging.ERROR)
    out = []
    with pytest.raises(CorruptBlock) as info_exc:
        for chunk in store.read_range(root):
            out.append(chunk)
    assert info_exc.value.block_index == 1 and info_exc.value.root == root
    assert b"".join(out) == data[:BLOCK_SIZE]  # only what verified came out
    assert store.verification_failures == 1
    assert any(root.hex() in r.getMessage() and "block 1" in r.getMessage() for r in caplog.records)


def test_gc_evicts_least_recently_used_and_never_pinned(store):
    pinned = put(store, content(2 * BLOCK_SIZE, seed=1), pin=True)
    a = put(store, os.urandom(BLOCK_SIZE))
    b = put(store, os.urandom(BLOCK_SIZE))
    c = put(store, os.urandom(BLOCK_SIZE))
    store.touch([a])  # a is now more recent than b and c
    evicted = store.collect(capacity_bytes=4 * BLOCK_SIZE)
    assert evicted == [b]
    evicted = store.collect(capacity_bytes=0)
    assert evicted == [c, a]
    s = store.statistics()
    assert s.objects == 1 and store.has(pinned) and s.bytes == 2 * BLOCK_SIZE and s.evictions == 3
    store.pin(pinned, False)
    assert store.collect(capacity_bytes=0) == [pinned]


def test_gc_keeps_protected_roots(store):
    a = put(store, os.urandom(BLOCK_SIZE))
    assert store.collect(capacity_bytes=0, keep=[a]) == []
    assert store.has(a)


def test_full_map_fails_cleanly_and_keeps_the_store_consistent(tmp_path):
    with BlockStore(tmp_path / "small", map_size=8 * 1024 * 1024) as s:
        keep = put(s, content(BLOCK_SIZE * 2, seed=9))
        before = s.statistics()
        with pytest.raises(BlockstoreFull, match="full"):
            put(s, os.urandom(40 * BLOCK_SIZE))
        assert s.statistics() == before
        assert s.read_all(keep) == content(BLOCK_SIZE * 2, seed=9)
        # and it still accepts what fits
        small = put(s, b"fits")
        assert s.read_all(small) == b"fits"


def test_orphans_of_a_dead_writer_are_swept_on_open(tmp_path):
    path = tmp_path / "bs"
    with BlockStore(path, map_size=1 << 30) as s:
        keep = put(s, content(BLOCK_SIZE, seed=4))
        wid = s.new_writer_id()
        block = os.urandom(BLOCK_SIZE)
        s.stage(wid, 0, [(hash_block(block), block)])
        assert s.statistics().staging_writers == 1 and s.statistics().blocks == 2
    # closing the store ends its unpublished writer (its lock is released, as when a process dies)
    with BlockStore(path, map_size=1 << 30) as s:
        st = s.statistics()
        assert st.staging_writers == 0 and st.blocks == 1 and st.objects == 1
        assert s.read_all(keep) == content(BLOCK_SIZE, seed=4)


def _open_and_count_writers(path: Path, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with BlockStore(path, map_size=1 << 30) as other:
        out.put(other.statistics().staging_writers)


def test_a_live_writer_is_not_swept(tmp_path):
    path = tmp_path / "bs"
    with BlockStore(path, map_size=1 << 30) as s:
        wid = s.new_writer_id()
        block = os.urandom(100)
        s.stage(wid, 0, [(hash_block(block), block)])
        # another process (e.g. the CLI next to a running node) opens the store meanwhile
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_open_and_count_writers, args=(path, out))
        proc.start()
        assert out.get(timeout=60) == 1
        proc.join(60)
        assert s.statistics().staging_writers == 1
        s.abort(wid)
        assert s.statistics().staging_writers == 0 and s.statistics().blocks == 0
    assert _process_start(os.getpid()) is not None


def test_readonly_env_errors_are_typed(tmp_path):
    bad = tmp_path / "file"
    bad.write_text("not a directory")
    from lightning.blockstore import BlockstoreError

    with pytest.raises(BlockstoreError, match="cannot open"):
        BlockStore(bad / "bs")
    assert lmdb is not None
