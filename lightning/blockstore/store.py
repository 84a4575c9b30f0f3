"""The blockstore on LMDB: blocks stored once by their blake3 hash, objects published atomically, LRU eviction.

Theory of operation
-------------------
One LMDB environment (``<home>/data/blockstore``) holds these tables:

=============  ==================================  =====================================================
table          key                                 value
=============  ==================================  =====================================================
``blocks``     block hash (32)                     block bytes (at most 256 KiB)
``refs``       block hash                          u64: object positions + staging entries that use it
``objects``    root (32)                           canonical msgpack ``{len, hashes, pinned}``
``lru``        root of a cached (unpinned) object  u64 tick of its last use
``lru_order``  u64be tick || root                  empty: the eviction order
``staging``    writer id (16) || u64be seq         block hash written by an unpublished writer
``writers``    writer id                           ``{pid, start}``: who owns the staging entries
``meta``       name                                u64 counters (``bytes``, ``objects``, ``tick``, …)
=============  ==================================  =====================================================

A writer stores its blocks in small transactions, each block with a staging entry that holds a reference, so a
block a writer needs is never collected. Publishing is one transaction: the object row appears, the staging entries
turn into the object's references (the counts do not change) and vanish. Until then no reader can name the object,
so a writer killed mid-put leaves no half object: on open, staging entries of writers whose process is gone are
swept (their references dropped, blocks with no reference deleted). ``refs[h] > 0`` iff ``blocks[h]`` exists.

The environment is opened without ``writemap`` (a full disk is an error from a write, not a SIGBUS) and with
``sync=False``; :meth:`BlockStore.publish` calls ``env.sync`` after its commit, so a published object survives a
power cut, while the staging transactions before it skip the fsync. LMDB is safe across processes, so the CLI can
write while the node runs. Write transactions belong to the thread that opened them: the async component
(``component.py``) runs every write on one long-lived thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from lightning.blockstore.tree import BlockTree, encode_proof_stream, tree_from_block_hashes
from lightning.blockstore.verify import BLOCK_SIZE, HASH_SIZE, BytesLike, block_count, block_len, hash_block
from lightning.codec import CodecError, decode_trusted, encode
from lightning.errors import LightningError
from lightning.storage import open_env, write_txn

__all__ = [
    "BlockStore",
    "BlockstoreError",
    "BlockstoreFull",
    "CorruptBlock",
    "CorruptObject",
    "ObjectInfo",
    "StoreStatistics",
    "UnknownObject",
]

logger = logging.getLogger(__name__)

_U64 = struct.Struct(">Q")
WRITER_ID_BYTES = 16
TREE_CACHE_ENTRIES = 256
MAX_ALIAS_BYTES = 511  # LMDB's default maximum key size


class BlockstoreError(LightningError):
    """Root of the blockstore's errors."""


class UnknownObject(BlockstoreError):
    """No object with this root is stored."""


class BlockstoreFull(BlockstoreError):
    """The store's map or the disk is full; the write was rolled back."""


class CorruptBlock(BlockstoreError):
    """A stored block no longer hashes to its key (disk or memory corruption)."""

    def __init__(self, root: bytes, index: int) -> None:
        super().__init__(f"stored block {index} of object {root.hex()} is corrupt (hash mismatch)")
        self.root = root
        self.block_index = index


class CorruptObject(BlockstoreError):
    """An object's stored block list does not hash to its root."""


@dataclass(frozen=True)
class ObjectInfo:
    root: bytes
    length: int
    hashes: bytes  # block hashes, 32 bytes each, in order
    pinned: bool

    @property
    def block_count(self) -> int:
        return len(self.hashes) // HASH_SIZE

    def block_hash(self, index: int) -> bytes:
        return self.hashes[index * HASH_SIZE : (index + 1) * HASH_SIZE]


@dataclass(frozen=True)
class StoreStatistics:
    bytes: int  # unique block bytes stored
    objects: int
    blocks: int
    pinned: int
    evictions: int
    staging_writers: int


def _u64(v: int) -> bytes:
    return _U64.pack(v)


def _from_u64(b: bytes | memoryview | None) -> int:
    return 0 if b is None else int(_U64.unpack(b)[0])


def _process_start(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])


class BlockStore:
    """Synchronous LMDB store; every method opens and commits its own transaction.

    Writes must come from one thread per process (the async component guarantees it); reads may come from any.
    Raises :class:`BlockstoreError` subclasses; :class:`BlockstoreFull` leaves the store as it was.
    """

    def __init__(self, path: Path, *, map_size: int = 1024**4, readonly: bool = False) -> None:
        self.path = path
        self.env = open_env(
            path,
            what="blockstore",
            error=BlockstoreError,
            map_size=map_size,
            max_dbs=16,
            max_readers=4096,
            sync=False,  # staging skips fsync; publish() syncs explicitly
            readonly=readonly,
        )
        create = not readonly
        self._blocks = self.env.open_db(b"blocks", create=create)
        self._refs = self.env.open_db(b"refs", create=create)
        self._objects = self.env.open_db(b"objects", create=create)
        self._lru = self.env.open_db(b"lru", create=create)
        self._lru_order = self.env.open_db(b"lru_order", create=create)
        self._staging = self.env.open_db(b"staging", create=create)
        self._writers = self.env.open_db(b"writers", create=create)
        self._meta = self.env.open_db(b"meta", create=create)
        self._aliases = self.env.open_db(b"aliases", create=create)
        self._trees: OrderedDict[bytes, BlockTree] = OrderedDict()
        self._writer_locks: dict[bytes, int] = {}  # writer id → fd holding its flock
        self.verification_failures = 0
        if not readonly:
            self.sweep_orphans()

    def close(self) -> None:
        for fd in self._writer_locks.values():  # unpublished writers die with the store; the next open sweeps them
            os.close(fd)
        self._writer_locks.clear()
        self.env.close()

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------------------------------
    def _write(self) -> contextlib.AbstractContextManager[lmdb.Transaction]:
        return write_txn(
            self.env,
            self.path,
            full=BlockstoreFull,
            full_hint="raise blockstore.map_size_bytes or lower capacity_bytes",
            error=BlockstoreError,
        )

    def _meta_add(self, txn: lmdb.Transaction, name: bytes, delta: int) -> int:
        value = _from_u64(txn.get(name, db=self._meta)) + delta
        assert value >= 0, f"blockstore counter {name!r} went negative"
        txn.put(name, _u64(value), db=self._meta)
        return value

    def _incref(self, txn: lmdb.Transaction, h: bytes, data: bytes | memoryview | None) -> None:
        count = _from_u64(txn.get(h, db=self._refs))
        if count == 0:
            assert data is not None, "a new block needs its bytes"
            txn.put(h, data, db=self._blocks)
            self._meta_add(txn, b"bytes", len(data))
            self._meta_add(txn, b"blocks", 1)
        txn.put(h, _u64(count + 1), db=self._refs)

    def _decref(self, txn: lmdb.Transaction, h: bytes) -> None:
        count = _from_u64(txn.get(h, db=self._refs))
        assert count > 0, f"block {h.hex()} released more often than referenced"
        if count == 1:
            data = txn.get(h, db=self._blocks)
            txn.delete(h, db=self._refs)
            txn.delete(h, db=self._blocks)
            self._meta_add(txn, b"bytes", -(len(data) if data is not None else 0))
            self._meta_add(txn, b"blocks", -1)
        else:
            txn.put(h, _u64(count - 1), db=self._refs)

    # -- writers ------------------------------------------------------------------------------------------------
    def new_writer_id(self) -> bytes:
        return os.urandom(WRITER_ID_BYTES)

    # A writer holds an flock on <env>/writers/<id>.lock for as long as it lives: the kernel drops it when the
    # process dies however it dies, in whatever pid namespace, so the sweep can tell a dead writer from a live one.
    def _lock_path(self, writer_id: bytes) -> Path:
        return self.path / "writers" / f"{writer_id.hex()}.lock"

    def _hold_writer_lock(self, writer_id: bytes) -> None:
        path = self._lock_path(writer_id)
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._writer_locks[writer_id] = fd

    def _release_writer_lock(self, writer_id: bytes) -> None:
        fd = self._writer_locks.pop(writer_id, None)
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self._lock_path(writer_id).unlink()
            os.close(fd)

    def _writer_is_alive(self, writer_id: bytes) -> bool:
        if writer_id in self._writer_locks:
            return True
        try:
            fd = os.open(self._lock_path(writer_id), os.O_RDWR)
        except FileNotFoundError:
            return False  # it died before it staged anything, or finished
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we may have just taken
        return False

    def stage(self, writer_id: bytes, first_seq: int, blocks: Iterable[tuple[bytes, bytes | memoryview]]) -> int:
        """Store ``(hash, data)`` blocks for an unpublished writer in one transaction; returns the next seq.

        The caller has hashed the blocks (trusted) or verified them (untrusted)."""
        seq = first_seq
        with self._write() as txn:
            if first_seq == 0:
                self._hold_writer_lock(writer_id)  # before the record exists, so a sweep never sees it unlocked
                owner = {"pid": os.getpid(), "start": _process_start(os.getpid()) or 0}  # for people reading it
                txn.put(writer_id, encode(owner), db=self._writers)
            for h, data in blocks:
                assert len(h) == HASH_SIZE and 0 < len(data) <= BLOCK_SIZE
                self._incref(txn, h, data)
                txn.put(writer_id + _u64(seq), h, db=self._staging)
                seq += 1
        return seq

    def _staged(self, txn: lmdb.Transaction, writer_id: bytes) -> list[tuple[bytes, bytes]]:
        out = []
        cursor = txn.cursor(db=self._staging)
        if cursor.set_range(writer_id):
            for key, value in cursor:
                if bytes(key[:WRITER_ID_BYTES]) != writer_id:
                    break
                out.append((bytes(key), bytes(value)))
        return out

    def publish(self, writer_id: bytes, root: bytes, length: int, hashes: bytes, *, pin: bool) -> bool:
        """Make the writer's staged blocks the object ``root`` in one transaction, then fsync.

        Returns False if the object already existed (the staged references are dropped; ``pin`` still applies)."""
        assert len(hashes) == block_count(length) * HASH_SIZE
        with self._write() as txn:
            staged = self._staged(txn, writer_id)
            assert b"".join(h for _, h in staged) == hashes, "staged blocks differ from the published list"
            existing = txn.get(root, db=self._objects)
            for key, h in staged:
                txn.delete(key, db=self._staging)
                if existing is not None:
                    self._decref(txn, h)
            txn.delete(writer_id, db=self._writers)
            if existing is None:
                txn.put(root, encode({"len": length, "hashes": hashes, "pinned": pin}), db=self._objects)
                self._meta_add(txn, b"objects", 1)
                if pin:
                    self._meta_add(txn, b"pinned", 1)
                else:
                    self._touch(txn, root)
            elif pin:
                self._set_pinned(txn, root, True)
            else:
                self._touch(txn, root)
        self._release_writer_lock(writer_id)
        self.env.sync(True)
        return existing is None

    def abort(self, writer_id: bytes) -> None:
        """Drop an unpublished writer's staged blocks."""
        with self._write() as txn:
            self._abort(txn, writer_id)
        self._release_writer_lock(writer_id)

    def _abort(self, txn: lmdb.Transaction, writer_id: bytes) -> None:
        for key, h in self._staged(txn, writer_id):
            txn.delete(key, db=self._staging)
            self._decref(txn, h)
        txn.delete(writer_id, db=self._writers)

    def sweep_orphans(self) -> int:
        """Abort writers whose process is gone (killed mid-put). Returns how many were swept."""
        with self.env.begin() as txn:
            writers = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=self._writers)]
        dead = [wid for wid, _ in writers if not self._writer_is_alive(wid)]
        if dead:
            with self._write() as txn:
                for wid in dead:
                    self._abort(txn, wid)
            for wid in dead:
                with contextlib.suppress(FileNotFoundError):
                    self._lock_path(wid).unlink()
            logger.info("swept %d unpublished writer(s) left by dead processes in %s", len(dead), self.path)
        return len(dead)

    # -- objects ------------------------------------------------------------------------------------------------
    def _object(self, txn: lmdb.Transaction, root: bytes) -> ObjectInfo | None:
        raw = txn.get(root, db=self._objects)
        if raw is None:
            return None
        try:
            row: dict[str, Any] = decode_trusted(bytes(raw))
            info = ObjectInfo(bytes(root), int(row["len"]), bytes(row["hashes"]), bool(row["pinned"]))
        except (CodecError, KeyError, TypeError, ValueError) as exc:
            raise CorruptObject(f"object {root.hex()}: stored record is unreadable ({exc})") from None
        if len(info.hashes) != block_count(info.length) * HASH_SIZE:
            raise CorruptObject(f"object {root.hex()}: stored block list does not match its length")
        return info

    def info(self, root: bytes) -> ObjectInfo | None:
        with self.env.begin() as txn:
            return self._object(txn, root)

    def has(self, root: bytes) -> bool:
        with self.env.begin() as txn:
            return txn.get(root, db=self._objects) is not None

    def get_info(self, root: bytes) -> ObjectInfo:
        info = self.info(root)
        if info is None:
            raise UnknownObject(f"no object {root.hex()} in the blockstore")
        return info

    def tree(self, info: ObjectInfo) -> BlockTree:
        """The object's verified tree (cached): its block list must hash to its root."""
        tree = self._trees.get(info.root)
        if tree is not None:
            self._trees.move_to_end(info.root)
            return tree
        hashes = [info.block_hash(i) for i in range(info.block_count)]
        tree = tree_from_block_hashes(hashes, info.length)
        if tree.root != info.root:
            self.verification_failures += 1
            logger.error("object %s: stored block list does not hash to its root", info.root.hex())
            raise CorruptObject(f"object {info.root.hex()}: stored block list does not hash to its root")
        self._trees[info.root] = tree
        if len(self._trees) > TREE_CACHE_ENTRIES:
            self._trees.popitem(last=False)
        return tree

    def read_block(self, info: ObjectInfo, index: int) -> bytes:
        """Block ``index`` of the object, verified against its hash. Raises :class:`CorruptBlock`."""
        if not 0 <= index < info.block_count:
            raise IndexError(f"block {index} outside the object's {info.block_count} blocks")
        h = info.block_hash(index)
        with self.env.begin() as txn:
            data = txn.get(h, db=self._blocks)
        if data is None or len(data) != block_len(index, info.length) or hash_block(data) != h:
            raise self.corrupt(info, index)
        return bytes(data)

    # -- zero-copy reads (the async component pipelines these: views from one read transaction, hashed off-thread)
    def read_txn(self) -> lmdb.Transaction:
        """A read transaction whose ``get`` returns views into the map; they die with the transaction."""
        return self.env.begin(buffers=True)

    def block_view(self, txn: lmdb.Transaction, info: ObjectInfo, index: int) -> memoryview | None:
        view = txn.get(info.block_hash(index), db=self._blocks)
        return None if view is None else memoryview(view)

    @staticmethod
    def first_bad_block(info: ObjectInfo, indices: Sequence[int], views: Sequence[memoryview | None]) -> int | None:
        """The first index whose block is missing, the wrong size, or not its hash (None if all verify).

        Thread-safe and GIL-friendly (blake3 releases the GIL), so it can run beside the event loop."""
        for index, view in zip(indices, views, strict=True):
            if view is None or len(view) != block_len(index, info.length) or hash_block(view) != info.block_hash(index):
                return index
        return None

    def corrupt(self, info: ObjectInfo, index: int) -> CorruptBlock:
        """Count and log a block that failed verification; return the error to raise."""
        self.verification_failures += 1
        logger.error("blockstore: object %s block %d failed verification", info.root.hex(), index)
        return CorruptBlock(info.root, index)

    def peek(self, info: ObjectInfo, size: int = 512) -> bytes:
        """The first ``size`` bytes of the object, unverified (for sniffing a Content-Type only)."""
        if info.length == 0:
            return b""
        with self.env.begin(buffers=True) as txn:
            view = txn.get(info.block_hash(0), db=self._blocks)
            return b"" if view is None else bytes(view[:size])

    def read_range(self, root: bytes, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Verified bytes [start, end) of the object, block by block. Raises UnknownObject, CorruptBlock."""
        info = self.get_info(root)
        self.tree(info)
        end = info.length if end is None else min(end, info.length)
        if start >= end:
            return
        first, last = start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        for index in range(first, last + 1):
            block = self.read_block(info, index)
            offset = index * BLOCK_SIZE
            lo = max(start - offset, 0)
            hi = min(end - offset, len(block))
            yield block if (lo, hi) == (0, len(block)) else block[lo:hi]

    def proof_stream(self, root: bytes, start_block: int = 0, end_block: int | None = None) -> Iterator[BytesLike]:
        """The proof stream (docs/blockstore-format.md) for blocks [start_block, end_block) of a stored object,
        every block verified as it is read. Raises UnknownObject, CorruptObject, CorruptBlock, ValueError (range)."""
        info = self.get_info(root)
        return encode_proof_stream(self.tree(info), lambda i: self.read_block(info, i), start_block, end_block)

    def read_all(self, root: bytes) -> bytes:
        return b"".join(self.read_range(root))

    # -- recency, pinning, deletion, GC -------------------------------------------------------------------------
    def _forget_use(self, txn: lmdb.Transaction, root: bytes) -> None:
        """Drop a root's recency rows (``lru`` and its ``lru_order`` entry), if it has them."""
        old = txn.get(root, db=self._lru)
        if old is not None:
            txn.delete(bytes(old) + root, db=self._lru_order)
            txn.delete(root, db=self._lru)

    def _touch(self, txn: lmdb.Transaction, root: bytes) -> None:
        self._forget_use(txn, root)
        tick = _u64(self._meta_add(txn, b"tick", 1))
        txn.put(root, tick, db=self._lru)
        txn.put(tick + root, b"", db=self._lru_order)

    def touch(self, roots: Iterable[bytes]) -> None:
        """Mark cached objects as just used (pinned and unknown roots are ignored)."""
        with self._write() as txn:
            for root in roots:
                if txn.get(root, db=self._lru) is not None:
                    self._touch(txn, root)

    def _set_pinned(self, txn: lmdb.Transaction, root: bytes, pinned: bool) -> None:
        info = self._object(txn, root)
        if info is None:
            raise UnknownObject(f"no object {root.hex()} in the blockstore")
        if info.pinned == pinned:
            return
        txn.put(root, encode({"len": info.length, "hashes": info.hashes, "pinned": pinned}), db=self._objects)
        self._meta_add(txn, b"pinned", 1 if pinned else -1)
        if pinned:
            self._forget_use(txn, root)
        else:
            self._touch(txn, root)

    def pin(self, root: bytes, pinned: bool = True) -> None:
        with self._write() as txn:
            self._set_pinned(txn, root, pinned)

    def _delete(self, txn: lmdb.Transaction, root: bytes) -> bool:
        info = self._object(txn, root)
        if info is None:
            return False
        for i in range(info.block_count):
            self._decref(txn, info.block_hash(i))
        txn.delete(root, db=self._objects)
        self._forget_use(txn, root)
        self._meta_add(txn, b"objects", -1)
        if info.pinned:
            self._meta_add(txn, b"pinned", -1)
        self._trees.pop(root, None)
        return True

    def delete(self, root: bytes) -> bool:
        """Remove an object (pinned or not); blocks no other object uses are freed. False if it was not there."""
        with self._write() as txn:
            return self._delete(txn, root)

    def collect(self, capacity_bytes: int, *, keep: Iterable[bytes] = ()) -> list[bytes]:
        """Evict least-recently-used cached objects until at most ``capacity_bytes`` of blocks remain.

        Pinned objects and ``keep`` are never evicted. Returns the evicted roots."""
        protect = set(keep)
        evicted: list[bytes] = []
        with self._write() as txn:
            cursor = txn.cursor(db=self._lru_order)
            while _from_u64(txn.get(b"bytes", db=self._meta)) > capacity_bytes:
                victim = None
                if cursor.first():
                    for key, _ in cursor:
                        root = bytes(key[8:])
                        if root not in protect:
                            victim = root
                            break
                if victim is None:
                    break
                self._delete(txn, victim)
                self._meta_add(txn, b"evictions", 1)
                evicted.append(victim)
        if evicted:
            logger.info("blockstore: evicted %d object(s) to stay under %d bytes", len(evicted), capacity_bytes)
        return evicted

    # -- aliases: origin pointers (e.g. "ipfs:<cid>/path") → root -------------------------------------------------
    def record_alias(self, alias: str, root: bytes) -> None:
        key = alias.encode()
        if not 0 < len(key) <= MAX_ALIAS_BYTES:
            raise BlockstoreError(f"alias of {len(key)} bytes is empty or longer than {MAX_ALIAS_BYTES}")
        with self._write() as txn:
            txn.put(key, root, db=self._aliases)

    def resolve_alias(self, alias: str) -> bytes | None:
        """The root recorded for ``alias`` if that object is still stored."""
        key = alias.encode()
        if not 0 < len(key) <= MAX_ALIAS_BYTES:
            return None
        with self.env.begin() as txn:
            root = txn.get(key, db=self._aliases)
            if root is None or txn.get(root, db=self._objects) is None:
                return None
            return bytes(root)

    def statistics(self) -> StoreStatistics:
        with self.env.begin() as txn:

            def m(name: bytes) -> int:
                return _from_u64(txn.get(name, db=self._meta))

            writers = txn.stat(self._writers)["entries"]
            return StoreStatistics(m(b"bytes"), m(b"objects"), m(b"blocks"), m(b"pinned"), m(b"evictions"), writers)

    def roots(self) -> Iterator[bytes]:
        with self.env.begin() as txn:
            for key, _ in txn.cursor(db=self._objects):
                yield bytes(key)
