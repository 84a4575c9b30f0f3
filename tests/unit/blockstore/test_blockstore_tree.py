"""Tree hashing, the incremental builder, proofs, and the test vectors published in docs/blockstore-format.md."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.blockstore import tree, verify
from lightning.blockstore.tree import (
    BlockTree,
    TreeBuilder,
    proof_for_block,
    proof_for_range,
    root_of_bytes,
    split_blocks,
    tree_from_block_hashes,
)
from lightning.blockstore.verify import (
    BLOCK_SIZE,
    EMPTY_ROOT,
    EMPTY_TOP,
    LEAF_CONTEXT,
    PARENT_CONTEXT,
    ROOT_CONTEXT,
    StreamVerifier,
    VerificationError,
    hash_block,
    leaf_hash,
    parent_hash,
    root_hash,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "blockstore-format.md"

# The published vectors, duplicated here on purpose: a change to the format must change both places.
VECTORS = {
    "empty": (0, "0cb9a68fb974fb84b6bf6a2a78ba7390faf6bce91e771e813a44ebd0b8b1cba4"),
    "1 byte": (1, "f697ed766a5815a54907ad1a4f312a924a6785c6f005cd2123dbf4d2e82939db"),
    "exactly one block": (262144, "c1f74aa5e94b97a53457695beabf5049d36a99e4a982b0c088dddd9915ade2e9"),
    "one block + 1 byte": (262145, "af3a86650d694670eda5c18094ae583dd758505a54e154820c74f54d14ead824"),
    "3 blocks": (786432, "38d50ae27d027565982e2db8600de7cae6927303e4a9f7aaa48d64e48e044f31"),
    "1,000 blocks": (262144000, "1faef19af8d3b0008c56bd194afeb95c2f23e6deabcc334dd4cf82f487a5b23d"),
}

_PATTERN = bytes(k % 251 for k in range(BLOCK_SIZE + 251))


def vector_block(index: int, total_len: int) -> bytes:
    """Block ``index`` of the vector content (byte k = k mod 251) without materialising the object."""
    offset = index * BLOCK_SIZE
    shift = offset % 251
    return _PATTERN[shift : shift + min(BLOCK_SIZE, total_len - offset)]


def vector_blocks(total_len: int) -> Iterator[bytes]:
    return (vector_block(i, total_len) for i in range(verify.block_count(total_len)))


def reference_root(block_ids: list[bytes], total_len: int) -> bytes:
    """The format written out from the doc with raw blake3 calls, independent of the code under test."""

    def node(a: int, b: int) -> bytes:
        if b - a == 1:
            return blake3.blake3(
                struct.pack("<Q", a) + block_ids[a], derive_key_context="lightning-py 2026 blockstore leaf v1"
            ).digest()
        m = a + 2 ** ((b - a - 1).bit_length() - 1)
        return blake3.blake3(
            node(a, m) + node(m, b), derive_key_context="lightning-py 2026 blockstore parent v1"
        ).digest()

    top = node(0, len(block_ids)) if block_ids else bytes(32)
    return blake3.blake3(
        top + struct.pack("<Q", total_len), derive_key_context="lightning-py 2026 blockstore root v1"
    ).digest()


def fake_hashes(n: int) -> list[bytes]:
    return [blake3.blake3(i.to_bytes(4, "little")).digest() for i in range(n)]


@pytest.fixture(scope="module")
def thousand_block_ids() -> list[bytes]:
    total_len = VECTORS["1,000 blocks"][0]
    return [hash_block(block) for block in vector_blocks(total_len)]


# -- vectors ---------------------------------------------------------------------------------------------------


def _doc_table(heading: str, columns: int) -> dict[str, tuple[str, ...]]:
    text = DOC.read_text()
    section = text.split(heading, 1)[1]
    rows: dict[str, tuple[str, ...]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == columns and re.fullmatch(r"[0-9a-f]{64}", cells[-1]):
            rows[cells[0]] = tuple(cells[1:])
    return rows


def test_doc_root_vectors_match_the_tests() -> None:
    table = _doc_table("## Test vectors", 3)
    assert {name: (int(n), h) for name, (n, h) in table.items()} == VECTORS


@pytest.mark.parametrize("name", [name for name in VECTORS if name != "1,000 blocks"])
def test_small_vectors(name: str) -> None:
    total_len, expected = VECTORS[name]
    content = b"".join(vector_blocks(total_len))
    assert content == bytes(k % 251 for k in range(total_len))
    assert root_of_bytes(content).hex() == expected
    ids = [hash_block(b) for b in split_blocks(content)]
    assert reference_root(ids, total_len).hex() == expected
    assert tree_from_block_hashes(ids, total_len).root.hex() == expected


def test_thousand_block_vector(thousand_block_ids: list[bytes]) -> None:
    total_len, expected = VECTORS["1,000 blocks"]
    builder = TreeBuilder()
    for block_id in thousand_block_ids:
        builder.push(block_id)
    assert builder.finish(total_len).hex() == expected
    assert tree_from_block_hashes(thousand_block_ids, total_len).root.hex() == expected
    assert reference_root(thousand_block_ids, total_len).hex() == expected


def test_doc_intermediate_values() -> None:
    rows = {name: h for name, (h,) in _doc_table("Intermediate values", 2).items()}
    one = hash_block(b"\x00")
    three = [hash_block(b) for b in vector_blocks(3 * BLOCK_SIZE)]
    leaves = [leaf_hash(i, h) for i, h in enumerate(three)]
    p01 = parent_hash(leaves[0], leaves[1])
    computed = {
        "1 byte: block id `B3(00)`": one,
        "1 byte: leaf(0) = top": leaf_hash(0, one),
        "3 blocks: block id 0": three[0],
        "3 blocks: block id 1": three[1],
        "3 blocks: block id 2": three[2],
        "3 blocks: leaf(0)": leaves[0],
        "3 blocks: leaf(1)": leaves[1],
        "3 blocks: leaf(2)": leaves[2],
        "3 blocks: parent(leaf0, leaf1)": p01,
        "3 blocks: top": parent_hash(p01, leaves[2]),
    }
    assert rows == {name: h.hex() for name, h in computed.items()}
    assert root_hash(parent_hash(p01, leaves[2]), 3 * BLOCK_SIZE).hex() == VECTORS["3 blocks"][1]


def test_object_id_is_not_plain_blake3() -> None:
    # The doc's warning, made concrete: b3sum prints the block id of a one-block file, not its object id.
    assert blake3.blake3(b"\x00").hexdigest() == hash_block(b"\x00").hex()
    assert blake3.blake3(b"\x00").hexdigest() != VECTORS["1 byte"][1]
    assert blake3.blake3(b"").hexdigest().startswith("af1349b9")
    assert EMPTY_ROOT.hex() == VECTORS["empty"][1] == root_hash(EMPTY_TOP, 0).hex()
    doc = DOC.read_text()
    assert "`b3sum` of the 1-byte object prints `2d3adedf…`" in doc.replace("\n", " ")


# -- hashing primitives and domain separation ------------------------------------------------------------------


def test_primitives_follow_the_spec() -> None:
    h, left, right = fake_hashes(3)
    assert leaf_hash(7, h) == blake3.blake3(struct.pack("<Q", 7) + h, derive_key_context=LEAF_CONTEXT).digest()
    assert parent_hash(left, right) == blake3.blake3(left + right, derive_key_context=PARENT_CONTEXT).digest()
    top = blake3.blake3(left + struct.pack("<Q", 5), derive_key_context=ROOT_CONTEXT).digest()
    assert root_hash(left, 5) == top
    assert len({LEAF_CONTEXT, PARENT_CONTEXT, ROOT_CONTEXT}) == 3


@settings(deadline=None, max_examples=200)
@given(st.binary(min_size=40, max_size=40), st.binary(min_size=32, max_size=32))
def test_domain_separation(material: bytes, other: bytes) -> None:
    # The same 40 bytes read as a leaf input and as a root input give different hashes, and neither equals
    # a parent hash or the plain BLAKE3 hash; a parent is never a leaf.
    index = int.from_bytes(material[:8], "little") % verify.MAX_BLOCKS
    as_leaf = leaf_hash(index, material[8:])
    as_root = root_hash(material[:32], int.from_bytes(material[32:], "little"))
    as_parent = parent_hash(material[:32], other)
    plain = blake3.blake3(material).digest()
    assert len({as_leaf, as_root, as_parent, plain}) == 4
    assert parent_hash(as_leaf, as_leaf) != as_leaf
    assert as_parent != leaf_hash(index, material[8:])


def test_primitive_argument_checks() -> None:
    (h,) = fake_hashes(1)
    with pytest.raises(ValueError):
        leaf_hash(-1, h)
    with pytest.raises(ValueError):
        leaf_hash(verify.MAX_BLOCKS, h)
    with pytest.raises(ValueError):
        leaf_hash(0, h[:31])
    with pytest.raises(ValueError):
        parent_hash(h, h + b"\x00")
    with pytest.raises(ValueError):
        root_hash(h, 2**64)


def test_block_arithmetic() -> None:
    assert verify.block_count(0) == 0
    assert verify.block_count(1) == 1
    assert verify.block_count(BLOCK_SIZE) == 1
    assert verify.block_count(BLOCK_SIZE + 1) == 2
    assert verify.block_count(2**64 - 1) == verify.MAX_BLOCKS == 2**46
    assert verify.MAX_TREE_DEPTH == 46
    assert verify.block_len(0, BLOCK_SIZE + 1) == BLOCK_SIZE
    assert verify.block_len(1, BLOCK_SIZE + 1) == 1
    with pytest.raises(ValueError):
        verify.block_len(2, BLOCK_SIZE + 1)
    assert [verify.left_subtree_blocks(n) for n in range(2, 10)] == [1, 2, 2, 4, 4, 4, 4, 8]
    assert verify.blocks_for_byte_range(0, 1, 10) == (0, 1)
    assert verify.blocks_for_byte_range(BLOCK_SIZE - 1, BLOCK_SIZE + 1, 3 * BLOCK_SIZE) == (0, 2)
    assert verify.blocks_for_byte_range(BLOCK_SIZE, 2 * BLOCK_SIZE, 3 * BLOCK_SIZE) == (1, 2)
    with pytest.raises(ValueError):
        verify.blocks_for_byte_range(5, 5, 10)
    with pytest.raises(ValueError):
        verify.blocks_for_byte_range(0, 11, 10)


# -- builder and batch tree ------------------------------------------------------------------------------------


@st.composite
def shapes(draw: st.DrawFn, max_blocks: int = 300) -> tuple[int, int]:
    """(n, total_len) with total_len consistent with n blocks."""
    n = draw(st.integers(0, max_blocks))
    if n == 0:
        return 0, 0
    return n, (n - 1) * BLOCK_SIZE + draw(st.integers(1, BLOCK_SIZE))


@settings(deadline=None, max_examples=150)
@given(shapes())
def test_builder_equals_batch_tree(shape: tuple[int, int]) -> None:
    n, total_len = shape
    hashes = fake_hashes(n)
    builder = TreeBuilder()
    for h in hashes:
        builder.push(h)
        # O(log n) state: one stack entry per set bit of the count.
        assert len(builder._stack) == bin(builder.block_count).count("1")
    batch = tree_from_block_hashes(hashes, total_len)
    assert builder.finish(total_len) == batch.root == reference_root(hashes, total_len)
    assert builder.top() == batch.top
    assert batch.block_count == n
    assert builder.finish(total_len) == batch.root  # finish does not consume the builder


def test_builder_and_tree_reject_inconsistent_lengths() -> None:
    hashes = fake_hashes(2)
    builder = TreeBuilder()
    for h in hashes:
        builder.push(h)
    for bad in (0, BLOCK_SIZE, 2 * BLOCK_SIZE + 1, -1):
        with pytest.raises(ValueError):
            builder.finish(bad)
        with pytest.raises(ValueError):
            tree_from_block_hashes(hashes, bad)
    with pytest.raises(ValueError):
        tree_from_block_hashes([b"short"], 1)


def test_node_hash_lookup() -> None:
    hashes = fake_hashes(6)
    t = tree_from_block_hashes(hashes, 6 * BLOCK_SIZE)
    leaves = [leaf_hash(i, h) for i, h in enumerate(hashes)]
    assert [t.node_hash(i, i + 1) for i in range(6)] == leaves
    left = parent_hash(parent_hash(leaves[0], leaves[1]), parent_hash(leaves[2], leaves[3]))
    assert t.node_hash(0, 4) == left
    assert t.node_hash(4, 6) == parent_hash(leaves[4], leaves[5])
    assert t.node_hash(0, 6) == t.top == parent_hash(left, t.node_hash(4, 6))
    for start, end in [(1, 3), (0, 3), (2, 6), (0, 8), (4, 8), (3, 3)]:
        with pytest.raises(ValueError):
            t.node_hash(start, end)


def test_split_blocks_and_root_of_bytes() -> None:
    data = bytes(range(256)) * 2049  # 2 blocks + 256 bytes
    blocks = list(split_blocks(data))
    assert [len(b) for b in blocks] == [BLOCK_SIZE, BLOCK_SIZE, 256]
    assert b"".join(blocks) == data
    assert root_of_bytes(bytearray(data)) == root_of_bytes(memoryview(data)) == root_of_bytes(data)
    assert list(split_blocks(b"")) == []
    assert root_of_bytes(b"") == EMPTY_ROOT


# -- proofs ----------------------------------------------------------------------------------------------------


def _verify_with_hashes(t: BlockTree, hashes: list[bytes], start: int, end: int) -> None:
    proof = proof_for_range(t, start, end)
    verifier = StreamVerifier(t.root, t.total_len, start, end)
    for index, segment in zip(range(start, end), proof.segments, strict=True):
        assert verifier.next_index == index
        assert verifier.expected_hash_count() == len(segment) <= verify.MAX_TREE_DEPTH
        verifier.verify_block_hash(segment, hashes[index], verify.block_len(index, t.total_len))
    assert verifier.done


def _depth(n: int, index: int) -> int:
    return len(verify.sibling_ranges(0, n, index))


@pytest.mark.parametrize("n", range(1, 25))
def test_every_range_proof_verifies(n: int) -> None:
    hashes = fake_hashes(n)
    total_len = n * BLOCK_SIZE - 3
    t = tree_from_block_hashes(hashes, total_len)
    for start in range(n):
        for end in range(start + 1, n + 1):
            _verify_with_hashes(t, hashes, start, end)
    # Every hash is sent once: a whole object costs n - 1 hashes; a first segment is a full path.
    assert len(proof_for_range(t, 0, n).hashes) == n - 1
    for index in range(n):
        assert len(proof_for_block(t, index).hashes) == _depth(n, index)


@settings(deadline=None, max_examples=100)
@given(shapes(max_blocks=2000), st.data())
def test_random_range_proofs_verify_and_detect_any_bad_hash(shape: tuple[int, int], data: st.DataObject) -> None:
    n, total_len = shape
    if n == 0:
        return
    hashes = fake_hashes(n)
    t = tree_from_block_hashes(hashes, total_len)
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, min(n, start + 64)))
    _verify_with_hashes(t, hashes, start, end)
    proof = proof_for_range(t, start, end)
    if not proof.hashes:
        return
    # Corrupt one proof hash: verification must fail exactly at the block whose segment carried it.
    k = data.draw(st.integers(0, len(proof.hashes) - 1))
    bit = data.draw(st.integers(0, 255))
    segments = [list(s) for s in proof.segments]
    flat = [(i, j) for i, s in enumerate(segments) for j in range(len(s))]
    i, j = flat[k]
    segments[i][j] = (int.from_bytes(segments[i][j], "big") ^ (1 << bit)).to_bytes(32, "big")
    verifier = StreamVerifier(t.root, total_len, start, end)
    for index in range(start, start + i):
        verifier.verify_block_hash(segments[index - start], hashes[index], verify.block_len(index, total_len))
    with pytest.raises(VerificationError) as info:
        verifier.verify_block_hash(segments[i], hashes[start + i], verify.block_len(start + i, total_len))
    assert info.value.block_index == start + i


def test_proof_range_checks() -> None:
    t = tree_from_block_hashes(fake_hashes(3), 3 * BLOCK_SIZE)
    for start, end in [(0, 0), (2, 1), (0, 4), (-1, 1), (3, 4)]:
        with pytest.raises(ValueError):
            proof_for_range(t, start, end)
    with pytest.raises(ValueError):
        proof_for_block(t, 3)


def test_tree_module_reexports() -> None:
    import lightning.blockstore as blockstore

    for name in ("TreeBuilder", "tree_from_block_hashes", "proof_for_range", "encode_proof_stream"):
        assert getattr(blockstore, name) is getattr(tree, name)
    for name in ("ProofStreamDecoder", "StreamVerifier", "VerificationError", "hash_block", "BLOCK_SIZE"):
        assert getattr(blockstore, name) is getattr(verify, name)
