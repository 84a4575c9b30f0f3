"""The state tree: canonical shape whatever the history, proofs of value and absence, incremental cost, vectors."""

from __future__ import annotations

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.codec import decode, encode
from lightning.state import smt

KEYS = 48  # a small key space so updates collide, overwrite and delete often


def _path(k: int) -> bytes:
    return smt.key_path("t", k.to_bytes(2, "big"))


def _vh(v: int) -> bytes:
    return smt.value_hash(v.to_bytes(2, "big"))


batches = st.lists(
    st.dictionaries(st.integers(0, KEYS - 1), st.one_of(st.none(), st.integers(0, 3)), max_size=30),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150)
@given(batches)
def test_root_and_nodes_depend_only_on_the_final_contents(history: list[dict[int, int | None]]) -> None:
    store = smt.DictNodeStore()
    model: dict[bytes, bytes] = {}
    for batch in history:
        changes = {_path(k): None if v is None else _vh(v) for k, v in batch.items()}
        root = smt.update(store, changes)
        for p, vh in changes.items():
            if vh is None:
                model.pop(p, None)
            else:
                model[p] = vh
        fresh = smt.DictNodeStore()
        assert root == smt.update(fresh, model) == smt.root_hash(store)
        assert store.nodes == fresh.nodes  # same shape, and no stale node left behind


@settings(max_examples=80)
@given(st.dictionaries(st.integers(0, KEYS - 1), st.integers(0, 3), max_size=KEYS))
def test_proofs_of_value_and_absence_verify(contents: dict[int, int]) -> None:
    store = smt.DictNodeStore()
    root = smt.update(store, {_path(k): _vh(v) for k, v in contents.items()})
    for k in range(KEYS):
        path = _path(k)
        expected = _vh(contents[k]) if k in contents else None
        proof = smt.make_proof(store, path)
        assert smt.get_value_hash(store, path) == expected
        smt.verify_proof(root, path, expected, proof)
        wire = smt.Proof.from_wire(decode(encode(proof.to_wire())))
        smt.verify_proof(root, path, expected, wire)
        with pytest.raises(smt.StateProofError):  # the opposite claim never verifies
            smt.verify_proof(root, path, None if expected else _vh(9), proof)


def test_tampered_proofs_fail() -> None:
    store = smt.DictNodeStore()
    root = smt.update(store, {_path(k): _vh(k % 4) for k in range(40)})
    path = _path(7)
    proof = smt.make_proof(store, path)
    assert proof.levels and proof.leaf is not None
    bitmap, sibs = proof.levels[0]
    bad_sib = smt.Proof(((bitmap, bytes([sibs[0] ^ 1]) + sibs[1:]), *proof.levels[1:]), proof.leaf)
    bad_bitmap = smt.Proof(((bitmap ^ 0x0001, sibs), *proof.levels[1:]), proof.leaf)
    truncated = smt.Proof(proof.levels[:-1], proof.leaf) if len(proof.levels) > 1 else smt.Proof((), proof.leaf)
    for bad in (bad_sib, bad_bitmap, truncated):
        with pytest.raises(smt.StateProofError):
            smt.verify_proof(root, path, _vh(7 % 4), bad)
    with pytest.raises(smt.StateProofError):
        smt.verify_proof(root, path, _vh(3 if 7 % 4 != 3 else 2), proof)
    with pytest.raises(smt.StateProofError):
        smt.verify_proof(bytes(32), path, _vh(7 % 4), proof)
    # A leaf off the path cannot prove absence: take another key's proof and claim it for ``path``.
    other = smt.make_proof(store, _path(8))
    with pytest.raises(smt.StateProofError):
        smt.verify_proof(root, path, None, other)


@pytest.mark.parametrize("wire", [None, [], [[[0, b""]], None], [[[1, b"x"]], None], [[], [b"x", b"y"]], [[], 5]])
def test_malformed_proofs_are_rejected(wire: object) -> None:
    with pytest.raises(smt.StateProofError):
        smt.Proof.from_wire(wire)


class CountingStore(smt.DictNodeStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = self.writes = 0

    def get(self, pos: bytes) -> bytes | None:
        self.reads += 1
        return super().get(pos)

    def put(self, pos: bytes, node: bytes) -> None:
        self.writes += 1
        super().put(pos, node)


def test_update_cost_follows_changed_keys_not_state_size() -> None:
    store = CountingStore()
    smt.update(store, {_path(k): _vh(1) for k in range(20_000)})
    depth_bound = 8  # log16(20,000) is about 3.6; paths that share longer prefixes are rare
    for k in (5, 17_000):
        store.reads = store.writes = 0
        smt.update(store, {_path(k): _vh(2)})
        assert store.writes <= depth_bound and store.reads <= depth_bound
    store.reads = store.writes = 0
    smt.update(store, {_path(k): _vh(3) for k in range(100)})
    assert store.writes <= 100 * depth_bound


def test_deleting_everything_gives_the_empty_root() -> None:
    store = smt.DictNodeStore()
    smt.update(store, {_path(k): _vh(k) for k in range(30)})
    assert smt.update(store, {_path(k): None for k in range(30)}) == smt.EMPTY
    assert store.nodes == {}


def test_vectors() -> None:
    """The vectors in docs/state.md."""
    assert smt.root_hash(smt.DictNodeStore()) == bytes(32)
    a_path = smt.key_path("accounts", bytes(32))
    assert a_path == blake3.blake3(b"lightning/state-key/v1\x00\x08accounts" + bytes(32)).digest()
    assert a_path.hex() == "f07c355fc20d70e9c4f3d68ccf38c23f9088ce748d5c911ada396fb04cde079b"
    a_value = encode({"balance": 1, "nonce": 0})
    assert a_value.hex() == "82a56e6f6e636500a762616c616e636501"
    a_leaf = smt.leaf_hash(a_path, smt.value_hash(a_value))
    assert a_leaf.hex() == "04df350c7fad4d8f7f85c1f78786780e511cb2acecffe3d33c0e34c5036a6eef"
    m_path = smt.key_path("meta", b"epoch")
    assert m_path.hex() == "1eaf34a1b6b6f3b4586bbe2c385d1998b69fad4ba3007f71a0e7552e7654eceb"
    m_leaf = smt.leaf_hash(m_path, smt.value_hash(encode(0)))
    assert m_leaf.hex() == "854fea56233dc07bdda073502e76abb80a01f7cf7109aaa697a82ea7dfce1f3c"
    one = smt.DictNodeStore()
    assert smt.update(one, {a_path: smt.value_hash(a_value)}) == a_leaf  # a lone leaf is the root
    two = smt.DictNodeStore()
    root = smt.update(two, {a_path: smt.value_hash(a_value), m_path: smt.value_hash(encode(0))})
    # nibbles 0x1 (meta) and 0xf (accounts) under the root: bitmap 0x4001, children in nibble order
    assert root == blake3.blake3(b"\x01" + bytes.fromhex("4001") + m_leaf + a_leaf).digest()
    assert root.hex() == "ec14fa51c2ca3c9a824dae82b4d94551f9b205ccb0e9545f6e155f3dfa2b2168"
