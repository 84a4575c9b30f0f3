"""The blockstore tree on the writer's and the server's side: roots, proofs and the proof-stream encoder.

The format (domain strings, split rule, length binding, framing) is specified in docs/blockstore-format.md.
The hashing primitives and the verifier live in ``verify.py``, the standalone client library; this module
builds on them so that both sides share one definition of every hash.

Shape: a node over n >= 2 blocks has a left subtree over the largest power of two strictly below n and a
right subtree over the rest (as in BLAKE3). Hence every node is either a complete subtree of 2**k blocks
aligned at a multiple of 2**k, or lies on the right spine, covering [start, n). ``BlockTree`` stores the
complete subtrees level by level (about 64 bytes per block) plus the O(log n) spine nodes, so any proof is a
few look-ups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from lightning.blockstore.verify import (
    BLOCK_SIZE,
    EMPTY_TOP,
    HASH_SIZE,
    BytesLike,
    ProofStreamHeader,
    RangeProof,
    block_count,
    block_len,
    encode_segment_head,
    hash_block,
    leaf_hash,
    left_subtree_blocks,
    parent_hash,
    root_hash,
    sibling_ranges,
)

__all__ = [
    "BlockTree",
    "TreeBuilder",
    "encode_proof_stream",
    "proof_for_block",
    "proof_for_range",
    "root_of_bytes",
    "split_blocks",
    "tree_from_block_hashes",
]


class TreeBuilder:
    """Computes an object's root from its block hashes pushed in order, holding O(log n) hashes.

    Like BLAKE3's chaining-value stack: the stack holds the roots of complete subtrees whose sizes are the
    binary digits of the number of blocks pushed, largest first; pushing block number t merges
    trailing-zeros(t) times.
    """

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self._count = 0

    @property
    def block_count(self) -> int:
        return self._count

    def push(self, block_hash: bytes) -> None:
        """Add the next block's plain BLAKE3 hash. Raises ValueError for a hash that is not 32 bytes."""
        node = leaf_hash(self._count, block_hash)
        self._count += 1
        for _ in range((self._count & -self._count).bit_length() - 1):
            node = parent_hash(self._stack.pop(), node)
        self._stack.append(node)

    def top(self) -> bytes:
        """The tree hash over the blocks pushed so far (EMPTY_TOP for none), before the length binding."""
        if not self._stack:
            return EMPTY_TOP
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = parent_hash(left, node)
        return node

    def finish(self, total_len: int) -> bytes:
        """The root for an object of ``total_len`` bytes. Does not consume the builder.

        Raises ValueError if ``total_len`` does not need exactly the number of blocks pushed.
        """
        if block_count(total_len) != self._count or total_len < 0:
            raise ValueError(f"{total_len} bytes make {block_count(total_len)} blocks, but {self._count} were pushed")
        return root_hash(self.top(), total_len)


@dataclass(frozen=True, slots=True)
class BlockTree:
    """Every node hash of one object's tree; build it with ``tree_from_block_hashes``.

    ``levels[k]`` concatenates the hashes of the complete subtrees of 2**k blocks, left to right (level 0: the
    leaves); ``spine`` maps ``start`` to the hash of the incomplete right-spine node [start, block_count).
    """

    total_len: int
    root: bytes
    levels: tuple[bytes, ...] = field(repr=False)
    spine: Mapping[int, bytes] = field(repr=False)

    @property
    def block_count(self) -> int:
        return block_count(self.total_len)

    @property
    def top(self) -> bytes:
        """The hash of the whole tree before the length binding (EMPTY_TOP for the empty object)."""
        return self.node_hash(0, self.block_count) if self.block_count else EMPTY_TOP

    def node_hash(self, start: int, end: int) -> bytes:
        """The hash of the node over blocks [start, end). Raises ValueError if the tree has no such node."""
        size = end - start
        if size > 0 and size & (size - 1) == 0 and start % size == 0 and end <= self.block_count:
            level = self.levels[size.bit_length() - 1]
            offset = (start // size) * HASH_SIZE
            return level[offset : offset + HASH_SIZE]
        if end == self.block_count and start in self.spine:
            return self.spine[start]
        raise ValueError(f"blocks [{start}, {end}) are not a node of a tree over {self.block_count} blocks")

    def segments(self, start_block: int, end_block: int) -> Iterator[tuple[bytes, ...]]:
        """The proof hashes to send with each block of [start_block, end_block), in order (see RangeProof).

        Mirrors the verifier's stack of pending subtrees. Raises ValueError for an empty or out-of-bounds
        range.
        """
        n = self.block_count
        if not 0 <= start_block < end_block <= n:
            raise ValueError(f"block range [{start_block}, {end_block}) is empty or outside 0..{n}")
        return self._segments(start_block, end_block)

    def _segments(self, start_block: int, end_block: int) -> Iterator[tuple[bytes, ...]]:
        pending = [(0, self.block_count)]
        for index in range(start_block, end_block):
            node_start, node_end = pending.pop()
            path = sibling_ranges(node_start, node_end, index)
            yield tuple(self.node_hash(s, e) for s, e in path)
            pending.extend((s, e) for s, e in path if index < s < end_block)


def tree_from_block_hashes(block_hashes: Sequence[bytes], total_len: int) -> BlockTree:
    """Build the tree of an object from its block hashes (in order) and its length in bytes.

    Costs about two small hashes per block. Raises ValueError if the number of hashes does not match
    ``total_len`` or a hash is not 32 bytes.
    """
    n = len(block_hashes)
    if total_len < 0 or block_count(total_len) != n:
        raise ValueError(f"{total_len} bytes make {block_count(total_len)} blocks, got {n} block hashes")
    level = b"".join(leaf_hash(i, h) for i, h in enumerate(block_hashes))
    levels = [level]
    while len(level) >= 2 * HASH_SIZE:
        pairs = len(level) // (2 * HASH_SIZE)
        level = b"".join(
            parent_hash(level[k : k + HASH_SIZE], level[k + HASH_SIZE : k + 2 * HASH_SIZE])
            for k in range(0, pairs * 2 * HASH_SIZE, 2 * HASH_SIZE)
        )
        levels.append(level)

    spine: dict[int, bytes] = {}

    def node(start: int, end: int) -> bytes:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            offset = (start // size) * HASH_SIZE
            return levels[size.bit_length() - 1][offset : offset + HASH_SIZE]
        mid = start + left_subtree_blocks(size)
        spine[start] = parent_hash(node(start, mid), node(mid, end))
        return spine[start]

    top = node(0, n) if n else EMPTY_TOP
    return BlockTree(total_len, root_hash(top, total_len), tuple(levels), spine)


def proof_for_range(tree: BlockTree, start_block: int, end_block: int) -> RangeProof:
    """The proof for blocks [start_block, end_block) of ``tree``: a full path for the first block, then only
    hashes not sent before. Raises ValueError for an empty or out-of-bounds range."""
    return RangeProof(tree.total_len, start_block, end_block, tuple(tree.segments(start_block, end_block)))


def proof_for_block(tree: BlockTree, index: int) -> RangeProof:
    """The proof for one block: the sibling hashes on its path to the root. Raises ValueError if out of
    bounds."""
    return proof_for_range(tree, index, index + 1)


def encode_proof_stream(
    tree: BlockTree,
    get_block: Callable[[int], BytesLike],
    start_block: int = 0,
    end_block: int | None = None,
) -> Iterator[BytesLike]:
    """The proof stream for blocks [start_block, end_block) (default: the whole object), as chunks to send.

    ``get_block(index)`` returns a block's bytes; they are passed through uncopied and not re-hashed (the
    store keys blocks by hash). For the empty object the stream is the header alone. Raises ValueError for a
    bad range or a block of the wrong length.
    """
    n = tree.block_count
    end = n if end_block is None else end_block
    if n:
        segments = tree.segments(start_block, end)
    elif (start_block, end) == (0, 0):
        segments = iter(())
    else:
        raise ValueError(f"the empty object has no blocks, got range [{start_block}, {end})")
    yield ProofStreamHeader(tree.total_len, start_block, end - start_block, tree.root).encode()
    for index, proof in zip(range(start_block, end), segments, strict=True):
        block = get_block(index)
        expected = block_len(index, tree.total_len)
        if len(block) != expected:
            raise ValueError(f"block {index} is {len(block)} bytes, expected {expected}")
        yield encode_segment_head(proof, expected)
        yield block


def split_blocks(data: BytesLike) -> Iterator[memoryview]:
    """Zero-copy views of the blocks of ``data``: BLOCK_SIZE bytes each, the last one possibly shorter."""
    view = memoryview(data).cast("B")
    for offset in range(0, len(view), BLOCK_SIZE):
        yield view[offset : offset + BLOCK_SIZE]


def root_of_bytes(data: BytesLike) -> bytes:
    """The object id of ``data`` (not its plain BLAKE3 hash)."""
    builder = TreeBuilder()
    for block in split_blocks(data):
        builder.push(hash_block(block))
    return builder.finish(memoryview(data).nbytes)
