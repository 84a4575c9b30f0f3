"""The spool: verified bytes of one in-flight download, shared by every client waiting on it.

Theory of operation
-------------------
A download appends verified chunks at the head; each reader keeps its own offset and waits for the head to pass it.
Chunks that every reader has passed are dropped, so memory holds only the window between the slowest reader and
the head; when that window reaches ``max_bytes`` the writer waits (backpressure on the origin or peer) until the
slowest reader catches up. A reader that joins after the bytes it wants were dropped gets :class:`Rewound` and reads
the object from the blockstore once the download is published. The total length is announced as soon as it is known
(IPFS root's file size, a proof stream's header) so HTTP can send Content-Length before the first byte.

States: open → (finished | failed). ``finish`` means every byte was verified and the object was published.
"""

from __future__ import annotations

from collections import deque

import trio

__all__ = ["Rewound", "Spool", "SpoolFailed"]


class SpoolFailed(Exception):
    """The download behind this spool failed; ``__cause__`` says why."""


class Rewound(Exception):
    """The bytes this reader wants were already dropped from the spool."""


class Spool:
    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._chunks: deque[bytes] = deque()
        self._base = 0  # offset of the first chunk kept
        self.head = 0  # bytes appended so far
        self.total_len: int | None = None
        self.root: bytes | None = None
        self.error: BaseException | None = None
        self.finished = False
        self._readers: dict[int, int] = {}
        self._next_reader = 0
        self._changed = trio.Event()
        self._known = trio.Event()

    # -- writer side ------------------------------------------------------------------------------------------
    def set_total_len(self, n: int) -> None:
        self.total_len = n
        self._known.set()
        self._notify()

    async def append(self, chunk: bytes) -> None:
        """Add verified bytes; waits while the window over the slowest reader is full."""
        while self._window() + len(chunk) > self.max_bytes and self._readers and self._chunks:
            await self._wait_change()
        self._chunks.append(chunk)
        self.head += len(chunk)
        self._trim()
        self._notify()

    def finish(self, root: bytes) -> None:
        self.root = root
        self.finished = True
        self.total_len = self.head
        self._known.set()
        self._notify()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._known.set()
        self._notify()

    # -- reader side ------------------------------------------------------------------------------------------
    async def wait_total_len(self) -> int | None:
        """The object's length once known (None if the download failed first)."""
        await self._known.wait()
        return self.total_len

    def open_reader(self, offset: int = 0) -> int:
        if offset < self._base:
            raise Rewound
        rid = self._next_reader
        self._next_reader += 1
        self._readers[rid] = offset
        # What was kept while nobody read (for a late joiner) now counts against the window only from the slowest
        # reader on: drop what every reader has passed, and wake a writer waiting for room.
        self._trim()
        self._notify()
        return rid

    def close_reader(self, rid: int) -> None:
        self._readers.pop(rid, None)
        self._trim()
        self._notify()

    async def read(self, rid: int, end: int | None = None) -> bytes:
        """The next verified bytes at this reader's offset (b"" at the end). Raises SpoolFailed, Rewound."""
        while True:
            offset = self._readers[rid]
            limit = self.head if end is None else min(self.head, end)
            if offset < limit:
                data = self._slice(offset, limit)
                self._readers[rid] = offset + len(data)
                self._trim()
                self._notify()
                return data
            if self.error is not None:
                raise SpoolFailed(str(self.error)) from self.error
            if self.finished or (end is not None and offset >= end):
                return b""
            await self._wait_change()

    # -- internals --------------------------------------------------------------------------------------------
    def _slice(self, offset: int, limit: int) -> bytes:
        if offset < self._base:
            raise Rewound
        pos = self._base
        for chunk in self._chunks:
            if pos + len(chunk) > offset:
                start = offset - pos
                return chunk[start : start + (limit - offset)]
            pos += len(chunk)
        raise AssertionError("offset below head but past the kept chunks")

    def _window(self) -> int:
        return self.head - self._base

    def _trim(self) -> None:
        if self._readers:
            low = min(self._readers.values())
        else:  # nobody reads yet (or any more): keep what fits, for a client that joins in a moment
            low = self.head - self.max_bytes
        while self._chunks and self._base + len(self._chunks[0]) <= low:
            self._base += len(self._chunks.popleft())

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()
