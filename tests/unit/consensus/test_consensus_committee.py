"""Stake-weighted committee selection (lightning/state/epoch.py): deterministic, without replacement, and a node's
chance follows its stake."""

from __future__ import annotations

import blake3

from lightning.state.epoch import select_committee


def test_selection_is_deterministic_distinct_and_bounded() -> None:
    eligible = {bytes([i]) * 32: 1000 * (i + 1) for i in range(10)}
    a = select_committee(b"s" * 32, eligible, 4)
    assert a == select_committee(b"s" * 32, dict(reversed(list(eligible.items()))), 4)  # insertion order is irrelevant
    assert len(a) == len(set(a)) == 4 and set(a) <= set(eligible)
    assert len(select_committee(b"s" * 32, eligible, 50)) == 10
    assert select_committee(b"s" * 32, {}, 4) == ()


def test_selection_follows_stake() -> None:
    whale, minnow = b"\x01" * 32, b"\x02" * 32
    picks = [select_committee(blake3.blake3(b"%d" % i).digest(), {whale: 99, minnow: 1}, 1)[0] for i in range(400)]
    assert 370 <= picks.count(whale) <= 400 and picks.count(minnow) >= 1  # ~99%, 400 fixed seeds
    # equal stakes: both are drawn first about as often
    even = [select_committee(blake3.blake3(b"%d" % i).digest(), {whale: 5, minnow: 5}, 1)[0] for i in range(400)]
    assert 150 <= even.count(whale) <= 250
