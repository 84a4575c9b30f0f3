"""The dedup cache: digests of messages already seen, bounded in memory (sans-IO; its persisted half, so a restarted
node neither re-delivers nor re-relays what it saw before, is ``seen_store.py``).

The cache and the clock window cover each other. A message timestamped more than ``max_age_s`` ago is refused
outright, so a digest only has to be remembered while its timestamp is within the window; older entries expire.
When the cache is full, the entry with the oldest timestamp is evicted and the cache's *floor* rises to that
timestamp: a message timestamped at or below the floor is refused as if it were too old (its digest may have been
forgotten). Either way a message is never accepted twice, and the memory and disk used are bounded.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

__all__ = ["SeenCache"]



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
