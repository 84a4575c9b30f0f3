"""The dedup cache: digests of messages already seen, bounded in memory (:class:`SeenCache`) and persisted in LMDB
(:class:`SeenStore`) so a restarted node neither re-delivers nor re-relays what it saw before.

The cache and the clock window cover each other. A message timestamped more than ``max_age_s`` ago is refused
outright, so a digest only has to be remembered while its timestamp is within the window; older entries expire.
When the cache is full, the entry with the oldest timestamp is evicted and the cache's *floor* rises to that
timestamp: a message timestamped at or below the floor is refused as if it were too old (its digest may have been
forgotten). Either way a message is never accepted twice, and the memory and disk used are bounded.

LMDB layout (``<home>/data/broadcast``): table ``seen``, key ``u64be timestamp_ms || digest``, empty value (time
order, so expiry deletes a prefix); table ``meta``, key ``floor``, value u64be. Opened without ``writemap`` and with
``sync=False`` (a process crash loses nothing: committed pages are in the OS; a power cut may lose the last
seconds, which means re-delivering at most those messages).
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterable
from pathlib import Path

from lightning.broadcast.message import DIGEST_BYTES, BroadcastError
from lightning.storage import open_env, write_txn

__all__ = ["SeenCache", "SeenStore", "SeenStoreError"]

_U64 = struct.Struct(">Q")


class SeenCache:
    """In-memory digests with their message timestamps; at most ``capacity`` (sans-IO)."""

    def __init__(self, capacity: int) -> None:
        assert capacity > 0
        self.capacity = capacity
        self.floor_ms = -1
        self._ts: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []

    def __contains__(self, digest: object) -> bool:
        return digest in self._ts

    def __len__(self) -> int:
        return len(self._ts)

    def add(self, digest: bytes, ts_ms: int) -> None:
        if digest in self._ts:
            return
        while len(self._ts) >= self.capacity:
            ts, old = heapq.heappop(self._heap)
            del self._ts[old]
            self.floor_ms = max(self.floor_ms, ts)
        self._ts[digest] = ts_ms
        heapq.heappush(self._heap, (ts_ms, digest))

    def expire(self, before_ms: int) -> int:
        """Forget digests timestamped before ``before_ms`` (the clock window refuses such messages anyway; the floor
        rises too, in case the wall clock steps back). Returns how many were forgotten."""
        n = 0
        while self._heap and self._heap[0][0] < before_ms:
            _, old = heapq.heappop(self._heap)
            del self._ts[old]
            n += 1
        self.floor_ms = max(self.floor_ms, before_ms - 1)
        return n

    def load(self, entries: Iterable[tuple[bytes, int]], floor_ms: int) -> None:
        self.floor_ms = max(self.floor_ms, floor_ms)
        for digest, ts in entries:
            self.add(digest, ts)


class SeenStoreError(BroadcastError):
    """The dedup store cannot be opened or written (disk full, map full, corrupt)."""


class SeenStore:
    """The persisted half of the dedup cache (see the module docstring). Synchronous; writes belong on the
    component's writer thread."""

    def __init__(self, path: Path, *, map_size: int) -> None:
        self.path = path
        self.env = open_env(
            path, what="the broadcast dedup store", error=SeenStoreError, map_size=map_size, max_dbs=4, sync=False
        )
        self._seen = self.env.open_db(b"seen")
        self._meta = self.env.open_db(b"meta")

    def close(self) -> None:
        try:
            self.env.sync(True)
        finally:
            self.env.close()

    def load(self, since_ms: int, limit: int) -> tuple[list[tuple[bytes, int]], int]:
        """The newest ``limit`` entries timestamped at or after ``since_ms``, and the floor (raised to the newest
        entry left out, if any)."""
        entries: list[tuple[bytes, int]] = []
        with self.env.begin() as txn:
            raw = txn.get(b"floor", db=self._meta)
            floor = _U64.unpack(raw)[0] - 1 if raw is not None else -1
            cur = txn.cursor(db=self._seen)
            if cur.set_range(_U64.pack(max(since_ms, 0))):
                for key in cur.iternext(keys=True, values=False):
                    if len(key) != 8 + DIGEST_BYTES:
                        continue  # not ours; never written by this version
                    entries.append((bytes(key[8:]), _U64.unpack_from(key)[0]))
        if len(entries) > limit:
            dropped = entries[: len(entries) - limit]
            floor = max(floor, dropped[-1][1])
            entries = entries[len(entries) - limit :]
        return entries, floor

    def add(self, entries: Iterable[tuple[bytes, int]], prune_before_ms: int, floor_ms: int) -> int:
        """Record digests; delete entries timestamped before ``prune_before_ms``; store the floor. One transaction.
        Returns how many entries were pruned. Raises SeenStoreError (map or disk full)."""
        pruned = 0
        with write_txn(
            self.env,
            self.path,
            full=SeenStoreError,
            full_hint="free disk space or raise [broadcast] map_size_bytes",
            error=SeenStoreError,
        ) as txn:
            for digest, ts in entries:
                txn.put(_U64.pack(ts) + digest, b"", db=self._seen)
            cur = txn.cursor(db=self._seen)
            limit = _U64.pack(max(prune_before_ms, 0))
            if cur.first():
                while bytes(cur.key()) < limit:
                    pruned += 1
                    if not cur.delete():
                        break
            # Stored +1 so that the initial floor of -1 fits an unsigned integer.
            txn.put(b"floor", _U64.pack(max(floor_ms, -1) + 1), db=self._meta)
        return pruned

    def count(self) -> int:
        with self.env.begin() as txn:
            return int(txn.stat(self._seen)["entries"])
