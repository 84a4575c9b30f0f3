"""The fixture chain replays byte for byte: a guard that a refactor changes no encoding and no state transition.

``tests/fixtures/chain/`` holds a genesis (``genesis.json``, the dict ``parse_genesis`` reads), a few hundred blocks
with their commit proofs (``blocks.bin``) that run every transaction method (successful, reverted and invalid
transactions, undecodable bytes, empty blocks, a dozen epoch changes with beacon commits, reveals and slashed
non-revealers), and
``expected.json``: per height the block hash, the state root, the epoch, the digest of the stored
``{block, proof, receipts}`` record and every receipt ``[method, status, reason]``.

This test applies every block to a fresh StateStore and requires, at every height: the fixture bytes decode and
re-encode to the same bytes (block and proof), the same block hash, state root and epoch, the same receipts (reasons
included: they are stored and served to followers), and the same stored record bytes. It also requires that the
fixture runs every method of the ``METHODS`` registry successfully, so a new transaction kind forces a new fixture.

Regenerate with ``python tests/fixtures/chain/make_chain.py`` (deterministic: the same code writes the same bytes).
The rule: a commit that changes a format or a rule on purpose regenerates the fixture in that same commit and says
so in its message; a commit that only moves or restructures code must pass this test with the fixture untouched.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from lightning.codec import decode, encode
from lightning.genesis import parse_genesis
from lightning.state.block import Block, CommitProof
from lightning.state.registry import METHODS
from lightning.state.store import StateStore

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "chain"
REGENERATE = "python tests/fixtures/chain/make_chain.py"


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
    return doc


@pytest.fixture(scope="module")
def blocks() -> list[list[bytes]]:
    raw = (FIXTURE / "blocks.bin").read_bytes()
    pairs: list[list[bytes]] = decode(raw, max_bytes=len(raw))
    return pairs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state", map_size=1 << 30, sync=False) as s:
        yield s


def test_fixture_chain_replays_byte_identical(
    store: StateStore, expected: dict[str, Any], blocks: list[list[bytes]]
) -> None:
    genesis = parse_genesis(json.loads((FIXTURE / "genesis.json").read_text()))
    assert genesis.digest().hex() == expected["genesis_digest"], "height 0: the genesis digest differs"
    head = store.initialize(genesis)
    assert head.state_root.hex() == expected["genesis_state_root"], "height 0: the genesis state root differs"

    heights = expected["heights"]
    assert len(blocks) == len(heights) >= 300
    by_status: Counter[str] = Counter()
    by_method: dict[str, Counter[str]] = {}
    for (block_raw, proof_raw), want in zip(blocks, heights, strict=True):
        height = want["height"]
        block = Block.decode(block_raw)
        proof = CommitProof.from_wire(decode(proof_raw))
        assert block.height == height, f"height {height}: the fixture's block is at height {block.height}"
        assert block.encode() == block_raw, f"height {height}: the block re-encodes to other bytes"
        assert encode(proof.to_wire()) == proof_raw, f"height {height}: the commit proof re-encodes to other bytes"

        outcome = store.apply_block(block, proof)
        got_hash, got_root = outcome.head.block_hash.hex(), outcome.head.state_root.hex()
        assert got_hash == want["block_hash"], f"height {height}: block hash {got_hash}, expected {want['block_hash']}"
        assert got_root == want["state_root"], f"height {height}: state root {got_root}, expected {want['state_root']}"
        assert outcome.head.epoch == want["epoch"], (
            f"height {height}: epoch {outcome.head.epoch}, expected {want['epoch']}"
        )
        receipts = [[r.method, r.status, r.reason] for r in outcome.receipts]
        for index, (got, exp) in enumerate(zip(receipts, want["receipts"], strict=False)):
            assert got == exp, f"height {height} receipt {index}: {got}, expected {exp}"
        assert len(receipts) == len(want["receipts"]), f"height {height}: {len(receipts)} receipts"
        skipped = [[x.index, x.method, x.code] for x in outcome.skipped]  # unpaid: no receipt (docs/fees.md)
        assert skipped == want.get("skipped", []), f"height {height}: skipped {skipped}"
        record = store.block_record(height)
        assert record is not None
        assert blake3.blake3(record).hexdigest() == want["record"], (
            f"height {height}: the stored {{block, proof, receipts}} record differs (a receipt's encoding changed)"
        )
        for method, status, _ in receipts:
            by_status[status] += 1
            by_method.setdefault(method, Counter())[status] += 1

    head = store.head()
    assert {
        "height": head.height,
        "block_hash": head.block_hash.hex(),
        "state_root": head.state_root.hex(),
        "timestamp_ms": head.timestamp_ms,
        "epoch": head.epoch,
    } == expected["head"]
    assert store.tree_root() == head.state_root, "the stored Merkle tree does not give the head's state root"
    assert dict(by_status) == expected["receipts_by_status"]
    assert {m: dict(s) for m, s in by_method.items()} == expected["receipts_by_method"]


def test_fixture_chain_covers_every_method(expected: dict[str, Any]) -> None:
    ran = {m for m, statuses in expected["receipts_by_method"].items() if statuses.get("ok", 0) > 0}
    missing = sorted(set(METHODS) - ran)
    assert not missing, (
        f"the fixture chain runs no successful {', '.join(missing)}: add them to the scenario in "
        f"tests/fixtures/chain/make_chain.py and regenerate ({REGENERATE})"
    )
    assert {"ok", "reverted", "invalid"} <= set(expected["receipts_by_status"])
    assert "" in expected["receipts_by_method"], "the fixture has no undecodable transaction"
    assert expected["head"]["epoch"] >= 3, "the fixture changes epochs fewer than 3 times"
    assert any(not h["receipts"] for h in expected["heights"]), "the fixture has no empty block"
