"""The persisted half of the dedup cache (:class:`~lightning.broadcast.seen.SeenCache`): what a restarted node saw.

LMDB layout (``<home>/data/broadcast``): table ``seen``, key ``u64be timestamp_ms || digest``, empty value (time
order, so expiry deletes a prefix); table ``meta``, key ``floor``, value u64be. Opened without ``writemap`` and with
``sync=False`` (a process crash loses nothing: committed pages are in the OS; a power cut may lose the last
seconds, which means re-delivering at most those messages).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from lightning.broadcast.message import DIGEST_BYTES, BroadcastError
from lightning.storage import open_env, write_txn

__all__ = ["SeenStore", "SeenStoreError"]

_U64 = struct.Struct(">Q")


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
