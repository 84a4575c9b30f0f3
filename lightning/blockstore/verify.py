"""Verify content served by a lightning-py node, block by block, as it arrives.

This module is the client library. It imports only the standard library and the ``blake3`` package, so you
may copy this single file into your own project (MIT licence). The format it checks is specified in
``docs/blockstore-format.md``; read that first.

An object id ("root") is **not** the plain BLAKE3 hash of the content (not what ``b3sum`` prints): it is the
root of a tree over 256 KiB blocks that also binds the total length. That tree is what lets a receiver check
each block on arrival and stop at the first bad byte.

Typical use, with the bytes of a proof stream arriving in chunks of any size::

    decoder = ProofStreamDecoder(root)            # the 32-byte root you asked for
    for chunk in chunks:
        for block in decoder.feed(chunk):         # only verified blocks come out
            out.write(block.data)
    decoder.finish()                              # raises TruncatedStreamError if the stream stopped early

Theory of operation. The verifier keeps a stack of *pending* subtrees: hashes it has already verified for
subtrees that cover the rest of the requested range, nearest first. To check the next block it walks down from
the pending subtree on top of the stack to the block's leaf; the proof for that block is exactly the sibling
hashes met on that walk (top-down). It recomputes the subtree hash bottom-up from the block and compares. On
success the right-hand siblings that still overlap the range become pending (they are now verified); the
left-hand ones are never needed again. Initially the only pending subtree is the whole tree, checked against
the root with the length binding, so the first proof of a stream carries a full path and later ones only the
left spine of the next pending subtree — every hash is sent once.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn, TypeAlias

import blake3

__all__ = [
    "BLOCK_SIZE",
    "EMPTY_ROOT",
    "EMPTY_TOP",
    "HASH_SIZE",
    "HEADER_SIZE",
    "LEAF_CONTEXT",
    "MAGIC",
    "MAX_BLOCKS",
    "MAX_TOTAL_LEN",
    "MAX_TREE_DEPTH",
    "MEDIA_TYPE",
    "PARENT_CONTEXT",
    "ROOT_CONTEXT",
    "VERSION",
    "BytesLike",
    "ProofError",
    "ProofFormatError",
    "ProofStreamDecoder",
    "ProofStreamHeader",
    "RangeProof",
    "StreamVerifier",
    "TruncatedStreamError",
    "VerificationError",
    "VerifiedBlock",
    "WrongRootError",
    "block_count",
    "block_len",
    "blocks_for_byte_range",
    "encode_segment_head",
    "fetch",
    "hash_block",
    "leaf_hash",
    "left_subtree_blocks",
    "parent_hash",
    "root_hash",
    "sibling_ranges",
    "verify_range",
    "verify_stream",
]

BytesLike: TypeAlias = bytes | bytearray | memoryview

BLOCK_SIZE: Final = 262_144
"""Every block but the last is exactly this long (256 KiB); the last is 1..BLOCK_SIZE bytes."""
HASH_SIZE: Final = 32
MAX_TOTAL_LEN: Final = 2**64 - 1
MAX_BLOCKS: Final = -(-MAX_TOTAL_LEN // BLOCK_SIZE)  # 2**46
MAX_TREE_DEPTH: Final = (MAX_BLOCKS - 1).bit_length()  # 46: the most siblings any proof of one block needs

LEAF_CONTEXT: Final = "lightning-py 2026 blockstore leaf v1"
PARENT_CONTEXT: Final = "lightning-py 2026 blockstore parent v1"
ROOT_CONTEXT: Final = "lightning-py 2026 blockstore root v1"

EMPTY_TOP: Final = bytes(HASH_SIZE)
"""The tree top used for the empty object (zero blocks)."""

MAGIC: Final = b"LB3S"
VERSION: Final = 1
HEADER_SIZE: Final = 64
MEDIA_TYPE: Final = "application/vnd.lightning.proof-stream"

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_HEADER = struct.Struct("<4sB3sQQQ32s")
assert _HEADER.size == HEADER_SIZE


# ----------------------------------------------------------------------------------------------------
# Errors


class ProofError(Exception):
    """Root of every error this module raises about a proof or a proof stream.

    ``block_index`` names the first block that could not be delivered, or is None when the problem is not tied
    to a block (for instance a bad stream header).
    """

    def __init__(self, message: str, block_index: int | None = None) -> None:
        super().__init__(message)
        self.block_index = block_index


class ProofFormatError(ProofError):
    """The proof or stream is malformed: a bad header, a count or length the tree forbids, extra bytes."""


class TruncatedStreamError(ProofFormatError):
    """The stream ended before every block of its range was delivered."""


class VerificationError(ProofError):
    """Hashes do not match the root: the block at ``block_index`` (or its proof) was corrupted or forged."""

    block_index: int

    def __init__(self, message: str, block_index: int) -> None:
        super().__init__(message, block_index)


class WrongRootError(VerificationError):
    """The stream header names a different object than the one asked for; nothing of it can be verified."""


# ----------------------------------------------------------------------------------------------------
# Hashing primitives and tree shape


def hash_block(data: BytesLike) -> bytes:
    """The block id: the plain BLAKE3 hash of the block's bytes (what ``b3sum`` prints for a block alone)."""
    return blake3.blake3(data).digest()


def leaf_hash(index: int, block_hash: bytes) -> bytes:
    """Leaf node for block ``index``: BLAKE3 derive_key(LEAF_CONTEXT, u64le(index) || block_hash).

    Raises ValueError for an index outside 0..MAX_BLOCKS-1 or a hash that is not 32 bytes.
    """
    if not 0 <= index < MAX_BLOCKS:
        raise ValueError(f"block index {index} is outside 0..{MAX_BLOCKS - 1}")
    if len(block_hash) != HASH_SIZE:
        raise ValueError(f"a block hash is {HASH_SIZE} bytes, got {len(block_hash)}")
    return blake3.blake3(_U64.pack(index) + block_hash, derive_key_context=LEAF_CONTEXT).digest()


def parent_hash(left: bytes, right: bytes) -> bytes:
    """Parent node: BLAKE3 derive_key(PARENT_CONTEXT, left || right).

    Raises ValueError unless both are 32 bytes.
    """
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise ValueError(f"child hashes are {HASH_SIZE} bytes, got {len(left)} and {len(right)}")
    return blake3.blake3(left + right, derive_key_context=PARENT_CONTEXT).digest()


def root_hash(top: bytes, total_len: int) -> bytes:
    """Object id: BLAKE3 derive_key(ROOT_CONTEXT, top || u64le(total_len)); top = EMPTY_TOP for no blocks.

    Raises ValueError for a top that is not 32 bytes or a length outside 0..MAX_TOTAL_LEN.
    """
    if len(top) != HASH_SIZE:
        raise ValueError(f"the tree top is {HASH_SIZE} bytes, got {len(top)}")
    if not 0 <= total_len <= MAX_TOTAL_LEN:
        raise ValueError(f"total length {total_len} does not fit in 64 bits")
    return blake3.blake3(top + _U64.pack(total_len), derive_key_context=ROOT_CONTEXT).digest()


EMPTY_ROOT: Final = root_hash(EMPTY_TOP, 0)
"""The id of the empty object."""


def block_count(total_len: int) -> int:
    """Number of blocks of an object of ``total_len`` bytes (0 for the empty object)."""
    return -(-total_len // BLOCK_SIZE)


def block_len(index: int, total_len: int) -> int:
    """Length of block ``index`` of an object of ``total_len`` bytes.

    Raises ValueError if there is no such block.
    """
    n = block_count(total_len)
    if not 0 <= index < n:
        raise ValueError(f"block {index} does not exist in an object of {n} blocks")
    return BLOCK_SIZE if index < n - 1 else total_len - (n - 1) * BLOCK_SIZE


def left_subtree_blocks(n: int) -> int:
    """Blocks in the left subtree of a node over n >= 2 blocks: the largest power of two strictly below n."""
    assert n >= 2, n
    return 1 << ((n - 1).bit_length() - 1)


def sibling_ranges(start: int, end: int, index: int) -> list[tuple[int, int]]:
    """Block ranges [s, e) of the siblings met walking down from node [start, end) to leaf ``index``.

    Top-down order. A sibling lies right of the path when ``s > index``, left of it otherwise. The proof of a
    block relative to a node is the list of these siblings' hashes in this order.
    """
    assert start <= index < end, (start, index, end)
    path: list[tuple[int, int]] = []
    while end - start > 1:
        mid = start + left_subtree_blocks(end - start)
        if index < mid:
            path.append((mid, end))
            end = mid
        else:
            path.append((start, mid))
            start = mid
    return path


def blocks_for_byte_range(first_byte: int, end_byte: int, total_len: int) -> tuple[int, int]:
    """The block range [start, end) covering bytes [first_byte, end_byte) of an object of ``total_len`` bytes.

    Raises ValueError for an empty or out-of-bounds byte range.
    """
    if not 0 <= first_byte < end_byte <= total_len:
        raise ValueError(f"byte range [{first_byte}, {end_byte}) is empty or outside 0..{total_len}")
    return first_byte // BLOCK_SIZE, -(-end_byte // BLOCK_SIZE)


# ----------------------------------------------------------------------------------------------------
# Proofs and the incremental verifier


@dataclass(frozen=True, slots=True)
class RangeProof:
    """Everything, besides the blocks, needed to verify blocks [start_block, end_block) against a root.

    ``segments[k]`` holds the proof hashes (top-down) to send with block ``start_block + k``; the first one is
    a full path to the root, the later ones only hashes not sent before. An empty object has no segments.
    """

    total_len: int
    start_block: int
    end_block: int
    segments: tuple[tuple[bytes, ...], ...]

    def __post_init__(self) -> None:
        _check_range(self.total_len, self.start_block, self.end_block)
        if len(self.segments) != self.end_block - self.start_block:
            raise ProofFormatError(
                f"a proof for blocks [{self.start_block}, {self.end_block}) has one segment per block, "
                f"got {len(self.segments)}"
            )

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """All proof hashes in the order they are sent."""
        return tuple(h for segment in self.segments for h in segment)


def _check_range(total_len: int, start_block: int, end_block: int) -> None:
    if not 0 <= total_len <= MAX_TOTAL_LEN:
        raise ProofFormatError(f"total length {total_len} does not fit in 64 bits")
    n = block_count(total_len)
    if n == 0:
        if start_block != 0 or end_block != 0:
            raise ProofFormatError(f"the empty object has no blocks, got range [{start_block}, {end_block})")
    elif not 0 <= start_block < end_block <= n:
        raise ProofFormatError(f"block range [{start_block}, {end_block}) is empty or outside the object's {n} blocks")


class StreamVerifier:
    """Verifies the blocks of one range, in order, each with its proof segment.

    Construct it with the root you trust and the object's total length and range (as claimed by the sender:
    the first block's proof binds them to the root). Then call ``verify_block`` for each block in order. The
    first mismatch raises and leaves the verifier failed: every later call raises the same error.
    """

    def __init__(self, root: bytes, total_len: int, start_block: int = 0, end_block: int | None = None) -> None:
        """Raises ProofFormatError for an impossible range.

        Raises VerificationError if the object is empty and ``root`` is not EMPTY_ROOT.
        """
        if len(root) != HASH_SIZE:
            raise ValueError(f"a root is {HASH_SIZE} bytes, got {len(root)}")
        n = block_count(total_len)
        if end_block is None:
            end_block = n
        _check_range(total_len, start_block, end_block)
        self._root = bytes(root)
        self._total_len = total_len
        self._end = end_block
        self._next: int | None = start_block if start_block < end_block else None
        # Verified subtrees (start, end, hash) still to consume, nearest on top; None: check against the root.
        self._pending: list[tuple[int, int, bytes | None]] = [(0, n, None)] if n else []
        self._error: ProofError | None = None
        if n == 0 and root_hash(EMPTY_TOP, 0) != self._root:
            self._fail(VerificationError("the root is not the empty object's id, but the object is empty", 0))

    @property
    def total_len(self) -> int:
        return self._total_len

    @property
    def next_index(self) -> int | None:
        """Index of the next block to verify, or None when the range is complete."""
        return self._next

    @property
    def done(self) -> bool:
        return self._next is None and self._error is None

    def _fail(self, error: ProofError) -> NoReturn:
        self._error = error
        self._next = None
        raise error

    def _walk(self) -> tuple[int, tuple[int, int, bytes | None], list[tuple[int, int]]]:
        if self._error is not None:
            raise self._error
        if self._next is None:
            raise ProofFormatError("every block of the range was already verified")
        top = self._pending[-1]
        return self._next, top, sibling_ranges(top[0], top[1], self._next)

    def expected_hash_count(self) -> int:
        """How many proof hashes must come with the next block."""
        return len(self._walk()[2])

    def expected_block_len(self) -> int:
        """How many bytes the next block must have."""
        index = self._walk()[0]
        return block_len(index, self._total_len)

    def verify_block(self, proof_hashes: Sequence[bytes], block: BytesLike) -> bytes:
        """Check the next block against its proof segment; return its bytes once verified.

        Raises ProofFormatError for a wrong number of hashes or a wrong block length, VerificationError
        (naming the block index) when the hashes do not lead to the trusted root.
        """
        data = block if isinstance(block, bytes) else bytes(block)  # what we return is exactly what we hashed
        self.verify_block_hash(proof_hashes, hash_block(data), len(data))
        return data

    def verify_block_hash(self, proof_hashes: Sequence[bytes], block_hash: bytes, block_len_: int) -> None:
        """Like ``verify_block`` for a block whose plain BLAKE3 hash and length you computed yourself."""
        index, (_, _, node_hash), path = self._walk()
        expected_len = block_len(index, self._total_len)
        if block_len_ != expected_len:
            self._fail(ProofFormatError(f"block {index} is {block_len_} bytes, expected {expected_len}", index))
        if len(proof_hashes) != len(path):
            self._fail(
                ProofFormatError(f"block {index} needs {len(path)} proof hashes, got {len(proof_hashes)}", index)
            )
        if any(len(h) != HASH_SIZE for h in proof_hashes):
            self._fail(ProofFormatError(f"a proof hash for block {index} is not {HASH_SIZE} bytes", index))
        node = leaf_hash(index, block_hash)
        for (sibling_start, _), sibling in zip(reversed(path), reversed(proof_hashes), strict=True):
            node = parent_hash(node, sibling) if sibling_start > index else parent_hash(sibling, node)
        if node_hash is None:
            ok = root_hash(node, self._total_len) == self._root
        else:
            ok = node == node_hash
        if not ok:
            self._fail(VerificationError(f"block {index} or its proof does not match the root", index))
        self._pending.pop()
        for (sibling_start, sibling_end), sibling in zip(path, proof_hashes, strict=True):
            if index < sibling_start < self._end:
                self._pending.append((sibling_start, sibling_end, bytes(sibling)))
        self._next = index + 1 if index + 1 < self._end else None
        assert self._next is None or self._pending[-1][0] == self._next


def verify_range(root: bytes, proof: RangeProof, blocks: Iterable[BytesLike]) -> Iterator[bytes]:
    """Yield each block of ``proof``'s range once verified against ``root``.

    Raises VerificationError at the first bad block (nothing from it on is yielded), ProofFormatError for a
    wrong block length or too many blocks, TruncatedStreamError if ``blocks`` ends early.
    """
    verifier = StreamVerifier(root, proof.total_len, proof.start_block, proof.end_block)
    segments = iter(proof.segments)
    for block in blocks:
        if verifier.next_index is None:
            raise ProofFormatError("more blocks than the proof's range", proof.end_block)
        yield verifier.verify_block(next(segments), block)
    if verifier.next_index is not None:
        raise TruncatedStreamError(f"blocks ended before block {verifier.next_index}", verifier.next_index)


# ----------------------------------------------------------------------------------------------------
# Proof-stream framing


@dataclass(frozen=True, slots=True)
class ProofStreamHeader:
    """The 64-byte header of a proof stream.

    ``total_len`` and the range are the sender's claims until the first block verifies (the root binds them).
    """

    total_len: int
    start_block: int
    block_count: int
    root: bytes

    @property
    def end_block(self) -> int:
        return self.start_block + self.block_count

    def encode(self) -> bytes:
        return _HEADER.pack(MAGIC, VERSION, bytes(3), self.total_len, self.start_block, self.block_count, self.root)

    @classmethod
    def decode(cls, data: BytesLike) -> ProofStreamHeader:
        """Parse and check a header.

        Raises ProofFormatError for a bad magic, version, reserved bytes or range.
        """
        if len(data) != HEADER_SIZE:
            raise ProofFormatError(f"a proof-stream header is {HEADER_SIZE} bytes, got {len(data)}")
        magic, version, reserved, total_len, start, count, root = _HEADER.unpack(data)
        if magic != MAGIC:
            raise ProofFormatError(f"not a proof stream (magic {magic!r}, expected {MAGIC!r})")
        if version != VERSION:
            raise ProofFormatError(f"proof-stream version {version} is not supported (this client reads {VERSION})")
        if reserved != bytes(3):
            raise ProofFormatError("reserved header bytes are not zero")
        _check_range(total_len, start, start + count)
        return cls(total_len, start, count, root)


def encode_segment_head(proof_hashes: Sequence[bytes], block_len_: int) -> bytes:
    """The bytes sent before a block: u8 hash count, the hashes, u32le block length."""
    assert len(proof_hashes) <= MAX_TREE_DEPTH and 0 < block_len_ <= BLOCK_SIZE
    assert all(len(h) == HASH_SIZE for h in proof_hashes)
    return bytes((len(proof_hashes),)) + b"".join(proof_hashes) + _U32.pack(block_len_)


@dataclass(frozen=True, slots=True)
class VerifiedBlock:
    """A block whose bytes were verified against the root; ``offset`` is its position in the object."""

    index: int
    offset: int
    data: bytes
    block_hash: bytes  # its plain BLAKE3 hash, computed during verification


class _State(enum.Enum):
    HEADER = enum.auto()  # need HEADER_SIZE bytes
    COUNT = enum.auto()  # need 1 byte: the hash count of the next segment
    HASHES = enum.auto()  # need count * HASH_SIZE + 4 bytes: the hashes and the block length
    BLOCK = enum.auto()  # need block length bytes
    DONE = enum.auto()  # every block delivered; any further byte is an error


# state -> state after its bytes were consumed (BLOCK goes to DONE after the last block)
_TRANSITIONS: Final = {
    _State.HEADER: _State.COUNT,  # or DONE for the empty object
    _State.COUNT: _State.HASHES,
    _State.HASHES: _State.BLOCK,
    _State.BLOCK: _State.COUNT,  # or DONE after the range's last block
}


class ProofStreamDecoder:
    """Sans-IO decoder of a proof stream: bytes in (any chunking), verified blocks out.

    ``root`` is the object id you trust. By default the stream must carry the whole object; pass the block
    range you requested as ``start_block``/``end_block`` (``end_block=None``: to the last block), or
    ``accept_any_range=True`` to take whatever range the header announces (check ``header`` then).

    Every count and length is checked against the tree shape before it is buffered, so memory stays below one
    block plus one proof. Errors are ProofError subclasses; after one, every call raises it again.
    """

    def __init__(
        self,
        root: bytes,
        *,
        start_block: int = 0,
        end_block: int | None = None,
        accept_any_range: bool = False,
    ) -> None:
        if len(root) != HASH_SIZE:
            raise ValueError(f"a root is {HASH_SIZE} bytes, got {len(root)}")
        self._root = bytes(root)
        self._want = None if accept_any_range else (start_block, end_block)
        self._buf = bytearray()
        self._pos = 0
        self._state = _State.HEADER
        self._need = HEADER_SIZE
        self._header: ProofStreamHeader | None = None
        self._verifier: StreamVerifier | None = None
        self._hash_count = 0
        self._proof: list[bytes] = []
        self._error: ProofError | None = None
        self._finished = False
        self.bytes_received = 0

    @property
    def header(self) -> ProofStreamHeader | None:
        """The parsed header once received; the first verified block binds its claims to the root."""
        return self._header

    @property
    def done(self) -> bool:
        """True once every block of the range was verified."""
        return self._state is _State.DONE and self._error is None

    def receive_data(self, data: BytesLike) -> None:
        """Buffer more stream bytes; call ``next_block`` to process them."""
        if self._finished:
            raise RuntimeError("receive_data() called after finish()")
        if self._error is not None:
            raise self._error
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data
        self.bytes_received += len(data)

    def next_block(self) -> VerifiedBlock | None:
        """Process buffered bytes up to the next verified block; None if more bytes are needed or it is done.

        Raises ProofFormatError, VerificationError (see the class docstring).
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next_block()
        except ProofError as error:
            self._error = error
            raise

    def feed(self, data: BytesLike) -> list[VerifiedBlock]:
        """``receive_data``, then return every block it completes.

        On error the blocks verified during this call are lost to the caller (they were correct); use
        ``receive_data``/``next_block`` to get each one before the error.
        """
        self.receive_data(data)
        blocks: list[VerifiedBlock] = []
        while (block := self.next_block()) is not None:
            blocks.append(block)
        return blocks

    def finish(self) -> None:
        """Signal the end of the stream. Raises TruncatedStreamError unless every block was delivered."""
        self._finished = True
        if self._error is not None:
            raise self._error
        if self.next_block() is not None:
            raise RuntimeError("finish() called before next_block() returned None")
        if self._state is not _State.DONE:
            self._error = TruncatedStreamError(self._truncation_message(), self._current_index())
            raise self._error

    # -- internals -------------------------------------------------------------------------------------------

    def _current_index(self) -> int | None:
        return None if self._verifier is None else self._verifier.next_index

    def _truncation_message(self) -> str:
        have = len(self._buf) - self._pos
        if self._header is None:
            return f"the stream ended inside its header ({have} of {HEADER_SIZE} bytes)"
        where = {
            _State.COUNT: "before the proof of",
            _State.HASHES: "inside the proof of",
            _State.BLOCK: "inside",
        }[self._state]
        delivered = (self._current_index() or 0) - self._header.start_block
        return (
            f"the stream ended {where} block {self._current_index()} ({have} of {self._need} bytes); "
            f"{delivered} of {self._header.block_count} blocks were delivered"
        )

    def _take(self) -> bytes:
        view = memoryview(self._buf)
        try:
            data = bytes(view[self._pos : self._pos + self._need])
        finally:
            view.release()
        self._pos += self._need
        return data

    def _next_block(self) -> VerifiedBlock | None:
        while True:
            if self._state is _State.DONE:
                extra = len(self._buf) - self._pos
                if extra:
                    raise ProofFormatError(f"{extra} unexpected bytes after the last block")
                return None
            if len(self._buf) - self._pos < self._need:
                return None
            state = self._state
            data = self._take()
            if state is _State.HEADER:
                self._on_header(data)
            elif state is _State.COUNT:
                self._on_count(data[0])
            elif state is _State.HASHES:
                self._on_hashes(data)
            else:
                return self._on_block(data)

    def _advance(self, state: _State, need: int) -> None:
        assert state is _State.DONE or _TRANSITIONS[self._state] is state, (self._state, state)
        self._state = state
        self._need = need

    def _on_header(self, data: bytes) -> None:
        header = ProofStreamHeader.decode(data)
        if header.root != self._root:
            raise WrongRootError(
                f"the stream is for object {header.root.hex()}, not {self._root.hex()}", header.start_block
            )
        if self._want is not None:
            start, end = self._want
            end = block_count(header.total_len) if end is None else end
            if (header.start_block, header.end_block) != (start, end):
                raise ProofFormatError(
                    f"the stream carries blocks [{header.start_block}, {header.end_block}), "
                    f"but [{start}, {end}) were requested"
                )
        self._header = header
        self._verifier = StreamVerifier(self._root, header.total_len, header.start_block, header.end_block)
        if self._verifier.next_index is None:
            self._advance(_State.DONE, 0)
        else:
            self._advance(_State.COUNT, 1)

    def _on_count(self, count: int) -> None:
        assert self._verifier is not None
        expected = self._verifier.expected_hash_count()
        if count != expected:
            raise ProofFormatError(
                f"block {self._verifier.next_index} needs {expected} proof hashes, the stream announces {count}",
                self._verifier.next_index,
            )
        self._hash_count = count
        self._advance(_State.HASHES, count * HASH_SIZE + _U32.size)

    def _on_hashes(self, data: bytes) -> None:
        assert self._verifier is not None
        self._proof = [data[k : k + HASH_SIZE] for k in range(0, self._hash_count * HASH_SIZE, HASH_SIZE)]
        (length,) = _U32.unpack_from(data, self._hash_count * HASH_SIZE)
        expected = self._verifier.expected_block_len()
        if length != expected:
            raise ProofFormatError(
                f"block {self._verifier.next_index} must be {expected} bytes, the stream announces {length}",
                self._verifier.next_index,
            )
        self._advance(_State.BLOCK, length)

    def _on_block(self, data: bytes) -> VerifiedBlock:
        verifier = self._verifier
        assert verifier is not None and verifier.next_index is not None
        index = verifier.next_index
        block_hash = hash_block(data)
        verifier.verify_block_hash(self._proof, block_hash, len(data))
        if verifier.done:
            self._advance(_State.DONE, 0)
        else:
            self._advance(_State.COUNT, 1)
        return VerifiedBlock(index, index * BLOCK_SIZE, data, block_hash)


def verify_stream(
    root: bytes,
    chunks: Iterable[BytesLike],
    *,
    start_block: int = 0,
    end_block: int | None = None,
    accept_any_range: bool = False,
) -> Iterator[VerifiedBlock]:
    """Decode a proof stream given as chunks of bytes, yielding each block as soon as it is verified.

    Raises what ``ProofStreamDecoder`` raises, including TruncatedStreamError when the chunks end early.
    """
    decoder = ProofStreamDecoder(root, start_block=start_block, end_block=end_block, accept_any_range=accept_any_range)
    for chunk in chunks:
        decoder.receive_data(chunk)
        while (block := decoder.next_block()) is not None:
            yield block
    decoder.finish()


def fetch(
    node_url: str, root: bytes | str, *, timeout_s: float = 60.0, read_bytes: int = 256 * 1024
) -> Iterator[VerifiedBlock]:
    """Download object ``root`` from a node in verified mode and yield each block once it verified.

    ``node_url`` is the node's client endpoint (``http://host:4220``). Uses only the standard library: a GET of
    ``/services/0/blake3/<root>`` with ``Accept: application/vnd.lightning.proof-stream``. Raises
    VerificationError / ProofFormatError / TruncatedStreamError as ``verify_stream`` does, and ``OSError`` (or
    ``urllib.error.HTTPError``) for network and HTTP failures. Write ``block.data`` as it comes: it is verified.
    """
    import urllib.request

    root_bytes = bytes.fromhex(root) if isinstance(root, str) else bytes(root)
    if len(root_bytes) != HASH_SIZE:
        raise ValueError(f"a root is {HASH_SIZE} bytes, got {len(root_bytes)}")
    url = f"{node_url.rstrip('/')}/services/0/blake3/{root_bytes.hex()}"
    request = urllib.request.Request(url, headers={"Accept": MEDIA_TYPE})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        yield from verify_stream(root_bytes, iter(lambda: response.read(read_bytes), b""))
