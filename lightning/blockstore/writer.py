"""Putting objects: cut a byte stream into blocks, hash (trusted) or verify (untrusted) them, stage, publish.

``WriterCore`` is the sans-IO part shared by the synchronous writers here (used by the CLI) and the async ones in
``component.py`` (used by the node): bytes in, batches of ``(hash, block)`` to stage out, and at the end the root,
length and block list to publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning.blockstore.store import BlockStore, BlockstoreError
from lightning.blockstore.tree import TreeBuilder
from lightning.blockstore.verify import (
    BLOCK_SIZE,
    HASH_SIZE,
    BytesLike,
    ProofError,
    ProofStreamDecoder,
    hash_block,
)

__all__ = ["Batch", "ObjectWriter", "Published", "UntrustedCore", "VerificationFailed", "WriterCore"]

STAGE_BATCH_BLOCKS = 16  # 4 MiB per staging transaction

Batch = list[tuple[bytes, bytes]]


class VerificationFailed(BlockstoreError):
    """Untrusted content did not verify against the expected root; nothing was stored."""


@dataclass(frozen=True)
class Published:
    root: bytes
    length: int
    hashes: bytes


class WriterCore:
    """Trusted mode: hashes the content itself; the root is known when it ends."""

    def __init__(self, batch_blocks: int = STAGE_BATCH_BLOCKS) -> None:
        self._buf = bytearray()
        self._batch: Batch = []
        self._batch_blocks = batch_blocks
        self._tree = TreeBuilder()
        self._hashes = bytearray()
        self.length = 0

    def _add_block(self, block: bytes) -> Batch | None:
        h = hash_block(block)
        self._tree.push(h)
        self._hashes += h
        self._batch.append((h, block))
        if len(self._batch) >= self._batch_blocks:
            batch, self._batch = self._batch, []
            return batch
        return None

    def feed(self, data: BytesLike) -> list[Batch]:
        """Take more content; return batches ready to stage."""
        view = memoryview(data).cast("B")
        self.length += len(view)
        out: list[Batch] = []
        pos = 0
        if self._buf:
            take = min(BLOCK_SIZE - len(self._buf), len(view))
            self._buf += view[:take]
            pos = take
            if len(self._buf) == BLOCK_SIZE:
                batch = self._add_block(bytes(self._buf))
                self._buf.clear()
                if batch:
                    out.append(batch)
        while len(view) - pos >= BLOCK_SIZE:
            batch = self._add_block(bytes(view[pos : pos + BLOCK_SIZE]))
            pos += BLOCK_SIZE
            if batch:
                out.append(batch)
        self._buf += view[pos:]
        return out

    def finish(self) -> tuple[Batch, Published]:
        """The last batch to stage, and what to publish."""
        if self._buf:
            self._add_block(bytes(self._buf))
            self._buf.clear()
        batch, self._batch = self._batch, []
        root = self._tree.finish(self.length)
        return batch, Published(root, self.length, bytes(self._hashes))


class UntrustedCore:
    """Untrusted mode: consumes a proof stream for the whole object ``root``; only verified blocks come out.

    Raises :class:`VerificationFailed` (naming the block index) at the first bad byte."""

    def __init__(self, root: bytes, batch_blocks: int = STAGE_BATCH_BLOCKS) -> None:
        self.root = root
        self._decoder = ProofStreamDecoder(root)
        self._batch: Batch = []
        self._batch_blocks = batch_blocks
        self._hashes = bytearray()

    def feed(self, data: BytesLike) -> list[Batch]:
        try:
            blocks = self._decoder.feed(data)
        except ProofError as exc:
            raise VerificationFailed(f"object {self.root.hex()}: {exc}") from exc
        out: list[Batch] = []
        for block in blocks:
            self._hashes += block.block_hash
            self._batch.append((block.block_hash, block.data))
            if len(self._batch) >= self._batch_blocks:
                out.append(self._batch)
                self._batch = []
        return out

    def finish(self) -> tuple[Batch, Published]:
        try:
            self._decoder.finish()
        except ProofError as exc:
            raise VerificationFailed(f"object {self.root.hex()}: {exc}") from exc
        header = self._decoder.header
        assert header is not None and len(self._hashes) == header.block_count * HASH_SIZE
        batch, self._batch = self._batch, []
        return batch, Published(self.root, header.total_len, bytes(self._hashes))


class ObjectWriter:
    """Synchronous writer (CLI, tests): ``write()`` content, ``close()`` → root. Use as a context manager so an
    exception aborts the write; nothing becomes visible before ``close()`` returns."""

    def __init__(self, store: BlockStore, *, pin: bool = False, expected_root: bytes | None = None) -> None:
        self._store = store
        self._pin = pin
        self._core: WriterCore | UntrustedCore = WriterCore() if expected_root is None else UntrustedCore(expected_root)
        self._id = store.new_writer_id()
        self._seq = 0
        self._closed = False

    def write(self, data: BytesLike) -> None:
        """Trusted mode: content bytes. Untrusted mode: proof-stream bytes."""
        assert not self._closed
        for batch in self._core.feed(data):
            self._seq = self._store.stage(self._id, self._seq, batch)

    def close(self) -> bytes:
        batch, published = self._core.finish()
        if batch:
            self._seq = self._store.stage(self._id, self._seq, batch)
        self._store.publish(self._id, published.root, published.length, published.hashes, pin=self._pin)
        self._closed = True
        return published.root

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._store.abort(self._id)

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
