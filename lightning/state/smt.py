"""The state root: a radix-16 sparse Merkle tree over every table, updated in place, with proofs of value or absence.

Theory of operation
-------------------
Every stored row ``(table, key) -> value`` is a leaf at the 256-bit *path* ``blake3(KEY_DOMAIN || u8 len(table) ||
table || key)``, read as 64 nibbles. The tree is the compact ("jellyfish"-style) trie over those paths:

* a subtree holding no leaf is absent (its hash, where one is needed, is ``EMPTY`` = 32 zero bytes);
* a subtree holding exactly one leaf *is* that leaf, placed at the shallowest depth where its prefix is unique;
* a subtree holding two or more leaves is an internal node with up to 16 children (one per next nibble).

So the shape is a function of the set of paths alone, never of the order of updates: two nodes that hold the same rows
have the same root, whatever their history (the property tests check exactly this).

Hashes (blake3, 32 bytes)::

    leaf      = H(0x00 || path || H(value))
    internal  = H(0x01 || u16be bitmap of present children || child hashes in nibble order)
    root      = EMPTY | leaf | internal, for the node at depth 0

Storage: each node lives at its *position* ``u8 depth || first depth nibbles of the path`` (packed, the unused low
nibble zeroed), one row per node in a :class:`NodeStore` (an LMDB table in production, a dict in tests). A leaf row
holds its path and value hash; an internal row holds its child hashes and which of them are leaves. Because positions,
not hashes, are the keys, an update overwrites nodes in place: there is no garbage to collect, and the tree answers
for the current root only (which is what the node needs; history lives in the block log).

Updating a batch of changed paths walks down from the root once, descending only into children that some changed path
passes through, and rewrites exactly the nodes on those paths: the cost is O(changed keys x depth) with depth about
log16(state size), independent of the rest of the state. Deleting a key may leave an internal node with a single leaf
child; that leaf moves up (and so on) to restore the canonical shape.

A proof for a path lists, from the root down, each internal node on the path as ``(bitmap, sibling hashes)``, then the
terminal: nothing (the child slot is empty: absence), or a leaf ``(path', H(value'))``. ``path' == path`` proves the
value; any other ``path'`` sharing the walked prefix proves absence. :func:`verify_proof` needs nothing but the root.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import blake3

from lightning.state.errors import StateError

__all__ = [
    "EMPTY",
    "DictNodeStore",
    "NodeStore",
    "Proof",
    "StateProofError",
    "get_value_hash",
    "key_path",
    "leaf_hash",
    "make_proof",
    "root_hash",
    "update",
    "value_hash",
    "verify_proof",
]

EMPTY = bytes(32)
KEY_DOMAIN = b"lightning/state-key/v1\x00"
HASH_BYTES = 32
MAX_DEPTH = 64  # nibbles in a path

_LEAF = b"L"
_INTERNAL = b"I"


class StateProofError(StateError):
    """A state proof that does not verify against the given root."""


class NodeStore(Protocol):
    def get(self, pos: bytes) -> bytes | None: ...

    def put(self, pos: bytes, node: bytes) -> None: ...

    def delete(self, pos: bytes) -> None: ...


class DictNodeStore:
    """In-memory node store (tests, tools)."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def get(self, pos: bytes) -> bytes | None:
        return self.nodes.get(pos)

    def put(self, pos: bytes, node: bytes) -> None:
        self.nodes[pos] = node

    def delete(self, pos: bytes) -> None:
        self.nodes.pop(pos, None)


def _h(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def key_path(table: str, key: bytes) -> bytes:
    t = table.encode()
    assert len(t) < 256
    return _h(KEY_DOMAIN + bytes((len(t),)) + t + key)


def value_hash(value: bytes) -> bytes:
    return _h(value)


def leaf_hash(path: bytes, vh: bytes) -> bytes:
    return _h(b"\x00" + path + vh)


def _internal_hash(children: list[tuple[bytes, bool] | None]) -> bytes:
    bitmap = 0
    parts = [b"\x01", b""]
    for i, c in enumerate(children):
        if c is not None:
            bitmap |= 0x8000 >> i
            parts.append(c[0])
    parts[1] = bitmap.to_bytes(2, "big")
    return _h(b"".join(parts))


def _nibble(path: bytes, depth: int) -> int:
    b = path[depth >> 1]
    return b & 0x0F if depth & 1 else b >> 4


def _pos(depth: int, path: bytes) -> bytes:
    """Position of the node at ``depth`` on ``path``."""
    n = (depth + 1) >> 1
    if depth & 1:
        return bytes((depth,)) + path[: n - 1] + bytes((path[n - 1] & 0xF0,))
    return bytes((depth,)) + path[:n]


def _child_pos(depth: int, path: bytes, nib: int) -> bytes:
    """Position of child ``nib`` of the node at ``depth`` on ``path``."""
    n = depth >> 1
    if depth & 1:
        return bytes((depth + 1,)) + path[:n] + bytes(((path[n] & 0xF0) | nib,))
    return bytes((depth + 1,)) + path[:n] + bytes((nib << 4,))


@dataclass(frozen=True, slots=True)
class _Leaf:
    path: bytes
    vh: bytes

    @property
    def hash(self) -> bytes:
        return leaf_hash(self.path, self.vh)

    def encode(self) -> bytes:
        return _LEAF + self.path + self.vh


@dataclass(slots=True)
class _Internal:
    children: list[tuple[bytes, bool] | None]  # 16 slots: (hash, is_leaf) or None

    @property
    def hash(self) -> bytes:
        return _internal_hash(self.children)

    def encode(self) -> bytes:
        bitmap = leafmap = 0
        hashes = []
        for i, c in enumerate(self.children):
            if c is not None:
                bitmap |= 0x8000 >> i
                if c[1]:
                    leafmap |= 0x8000 >> i
                hashes.append(c[0])
        return _INTERNAL + bitmap.to_bytes(2, "big") + leafmap.to_bytes(2, "big") + b"".join(hashes)


_Node = _Leaf | _Internal


def _decode(raw: bytes | None) -> _Node | None:
    if raw is None:
        return None
    raw = bytes(raw)
    if raw[:1] == _LEAF:
        assert len(raw) == 1 + 2 * HASH_BYTES, "corrupt state tree leaf"
        return _Leaf(raw[1:33], raw[33:65])
    assert raw[:1] == _INTERNAL, "corrupt state tree node"
    bitmap = int.from_bytes(raw[1:3], "big")
    leafmap = int.from_bytes(raw[3:5], "big")
    children: list[tuple[bytes, bool] | None] = [None] * 16
    off = 5
    for i in range(16):
        bit = 0x8000 >> i
        if bitmap & bit:
            children[i] = (raw[off : off + HASH_BYTES], bool(leafmap & bit))
            off += HASH_BYTES
    assert off == len(raw), "corrupt state tree node"
    return _Internal(children)


def _hash_of(node: _Node | None) -> bytes:
    return EMPTY if node is None else node.hash


def root_hash(store: NodeStore) -> bytes:
    """The current root (``EMPTY`` for an empty tree)."""
    return _hash_of(_decode(store.get(_pos(0, b""))))


Update = tuple[bytes, bytes | None]  # (path, value hash or None to delete)


def update(store: NodeStore, changes: Mapping[bytes, bytes | None] | Iterable[Update]) -> bytes:
    """Apply ``path -> value hash`` (``None`` deletes) to the tree in ``store``; return the new root."""
    items = changes.items() if isinstance(changes, Mapping) else changes
    ups = sorted(items)
    for (a, _), (b, _) in itertools.pairwise(ups):
        assert a != b, "a path appears twice in one update"
    root_pos = _pos(0, b"")
    if not ups:
        return root_hash(store)
    node = _update(store, 0, _decode(store.get(root_pos)), ups)
    return _hash_of(node)


def _groups(ups: list[Update], depth: int) -> Iterable[tuple[int, list[Update]]]:
    """Split sorted updates by their nibble at ``depth`` (they arrive grouped because they are sorted)."""
    start = 0
    while start < len(ups):
        nib = _nibble(ups[start][0], depth)
        end = start + 1
        while end < len(ups) and _nibble(ups[end][0], depth) == nib:
            end += 1
        yield nib, ups[start:end]
        start = end


def _update(store: NodeStore, depth: int, node: _Node | None, ups: list[Update]) -> _Node | None:
    ref = ups[0][0]
    if not isinstance(node, _Internal):
        leaves = [(p, vh) for p, vh in ups if vh is not None]
        if node is not None and all(p != node.path for p, _ in ups):
            leaves.append((node.path, node.vh))
            leaves.sort()
        return _build(store, depth, ref, leaves)
    children = list(node.children)
    fresh: dict[int, _Node | None] = {}
    for nib, group in _groups(ups, depth):
        cur = children[nib]
        child = None if cur is None else _decode(store.get(_child_pos(depth, ref, nib)))
        new = _update(store, depth + 1, child, group)
        fresh[nib] = new
        children[nib] = None if new is None else (new.hash, isinstance(new, _Leaf))
    pos = _pos(depth, ref)
    present = [i for i, c in enumerate(children) if c is not None]
    if not present:
        store.delete(pos)
        return None
    if len(present) == 1 and children[present[0]][1]:  # type: ignore[index]  # present slots are not None
        # One leaf left below: it moves up to keep the shape canonical.
        nib = present[0]
        cpos = _child_pos(depth, ref, nib)
        leaf = fresh[nib] if nib in fresh else _decode(store.get(cpos))
        assert isinstance(leaf, _Leaf)
        store.delete(cpos)
        store.put(pos, leaf.encode())
        return leaf
    new_node = _Internal(children)
    store.put(pos, new_node.encode())
    return new_node


def _build(store: NodeStore, depth: int, ref: bytes, leaves: list[tuple[bytes, bytes]]) -> _Node | None:
    """Write the canonical subtree of ``leaves`` at an empty-below position (it held nothing or one leaf)."""
    pos = _pos(depth, ref)
    if not leaves:
        store.delete(pos)
        return None
    if len(leaves) == 1:
        leaf = _Leaf(*leaves[0])
        store.put(pos, leaf.encode())
        return leaf
    assert depth < MAX_DEPTH
    children: list[tuple[bytes, bool] | None] = [None] * 16
    for nib, group in _groups(leaves, depth):  # type: ignore[arg-type]  # (path, vh) pairs are Updates
        child = _build(store, depth + 1, group[0][0], group)  # type: ignore[arg-type]
        assert child is not None
        children[nib] = (child.hash, isinstance(child, _Leaf))
    node = _Internal(children)
    store.put(pos, node.encode())
    return node


def get_value_hash(store: NodeStore, path: bytes) -> bytes | None:
    """The value hash stored at ``path``, or None."""
    node = _decode(store.get(_pos(0, b"")))
    depth = 0
    while isinstance(node, _Internal):
        nib = _nibble(path, depth)
        if node.children[nib] is None:
            return None
        node = _decode(store.get(_child_pos(depth, path, nib)))
        depth += 1
    if node is None or node.path != path:
        return None
    return node.vh


@dataclass(frozen=True)
class Proof:
    """Internal nodes on the path, root first, as (bitmap, sibling hashes); then the terminal leaf, if any."""

    levels: tuple[tuple[int, bytes], ...]
    leaf: tuple[bytes, bytes] | None  # (path, value hash)

    def to_wire(self) -> list[object]:
        return [[[b, s] for b, s in self.levels], None if self.leaf is None else list(self.leaf)]

    @classmethod
    def from_wire(cls, obj: object) -> Proof:
        """Raises :class:`StateProofError` for a malformed proof."""
        levels_raw: Any
        leaf_raw: Any
        try:
            levels_raw, leaf_raw = obj  # type: ignore[misc]  # shape checked by the unpacking itself
            levels = []
            for b, s in levels_raw:
                if not (isinstance(b, int) and isinstance(s, bytes) and 0 < b < 1 << 16 and len(s) % HASH_BYTES == 0):
                    raise StateProofError("malformed proof level")
                levels.append((b, s))
            leaf = None
            if leaf_raw is not None:
                p, vh = leaf_raw
                if not (isinstance(p, bytes) and isinstance(vh, bytes) and len(p) == len(vh) == HASH_BYTES):
                    raise StateProofError("malformed proof leaf")
                leaf = (p, vh)
        except (TypeError, ValueError):
            raise StateProofError("malformed proof") from None
        if len(levels) > MAX_DEPTH:
            raise StateProofError("proof deeper than any path")
        return cls(tuple(levels), leaf)


def make_proof(store: NodeStore, path: bytes) -> Proof:
    """A proof of the value (or absence) at ``path`` against :func:`root_hash` of the same store."""
    levels: list[tuple[int, bytes]] = []
    node = _decode(store.get(_pos(0, b"")))
    depth = 0
    while isinstance(node, _Internal):
        nib = _nibble(path, depth)
        bitmap = 0
        sibs = []
        for i, c in enumerate(node.children):
            if c is not None:
                bitmap |= 0x8000 >> i
                if i != nib:
                    sibs.append(c[0])
        levels.append((bitmap, b"".join(sibs)))
        if node.children[nib] is None:
            return Proof(tuple(levels), None)
        node = _decode(store.get(_child_pos(depth, path, nib)))
        depth += 1
    return Proof(tuple(levels), None if node is None else (node.path, node.vh))


def verify_proof(root: bytes, path: bytes, vh: bytes | None, proof: Proof) -> None:
    """Check that ``path`` holds value hash ``vh`` (``None``: is absent) in the tree whose root is ``root``.

    Raises :class:`StateProofError` if it does not."""
    depth = len(proof.levels)
    if proof.leaf is not None:
        lpath, lvh = proof.leaf
        if any(_nibble(lpath, d) != _nibble(path, d) for d in range(depth)):
            raise StateProofError("proof leaf is not on the path")
        if vh is None:
            if lpath == path:
                raise StateProofError("proof shows a value where absence was claimed")
        elif lpath != path or lvh != vh:
            raise StateProofError("proof does not show the claimed value")
        current: bytes | None = leaf_hash(lpath, lvh)
    else:
        if vh is not None:
            raise StateProofError("proof shows absence where a value was claimed")
        current = None
    for d in range(depth - 1, -1, -1):
        bitmap, sibs = proof.levels[d]
        nib = _nibble(path, d)
        bit = 0x8000 >> nib
        if (current is None) == bool(bitmap & bit):
            raise StateProofError(f"proof level {d} bitmap does not match the path")
        count = bin(bitmap).count("1") - (current is not None)
        if len(sibs) != count * HASH_BYTES:
            raise StateProofError(f"proof level {d} has the wrong number of siblings")
        children: list[tuple[bytes, bool] | None] = [None] * 16
        off = 0
        for i in range(16):
            if i == nib and current is not None:
                children[i] = (current, False)
            elif bitmap & (0x8000 >> i):
                children[i] = (sibs[off : off + HASH_BYTES], False)
                off += HASH_BYTES
        current = _internal_hash(children)
    if (EMPTY if current is None else current) != root:
        raise StateProofError("proof does not lead to the root")
