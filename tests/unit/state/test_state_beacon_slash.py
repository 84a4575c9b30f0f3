"""Members that commit to a beacon value but never reveal it are slashed ``beacon_no_reveal_slash`` at the epoch change;
those that revealed, or never committed, are not. Deterministic: a twin chain fed the same blocks ends on the same
state root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning.amounts import UNIT
from lightning.state.epoch import beacon_commitment
from lightning.state.records import NodeInfo
from lightning.state.store import StateStore
from lightning.state.tx import SignedTransaction
from lightning.testing.devchain import DevChain

FLK = UNIT


def _chain(slash: str | int = "10 FLK") -> DevChain:
    return DevChain.create(
        nodes=5,
        committee=4,
        accounts=2,
        epoch_time_ms=60_000,
        params={"beacon_no_reveal_slash": slash},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state", map_size=1 << 28, sync=False) as s:
        yield s


def _node(store: StateStore, chain: DevChain, i: int) -> NodeInfo:
    with store.view() as v:
        n = v.node(chain.nodes[i].node.public.raw)
    assert n is not None
    return n


def _supply(store: StateStore) -> int:
    with store.view() as v:
        return int(v.meta("supply"))


def _ok(chain: DevChain, store: StateStore, *txs: SignedTransaction, ts: int | None = None) -> None:
    receipts = chain.apply(store, txs, timestamp_ms=ts).receipts
    assert [(r.status, r.reason) for r in receipts] == [("ok", "")] * len(receipts)


def _epoch_with_beacon(chain: DevChain, store: StateStore, *, commit: list[int], reveal: list[int]) -> None:
    """Members ``commit`` commit in the first half, members ``reveal`` reveal in the second; then 3 of 4 vote."""
    with store.view() as v:
        e, info = v.epoch, v.epoch_info(v.epoch)
    assert info is not None
    mid = (info.start_ms + info.end_ms) // 2
    values = {i: bytes([i + 1]) * 32 for i in commit}
    k = chain.nodes
    _ok(
        chain,
        store,
        *(chain.sign(k[i].node, "beacon_commit", epoch=e, commitment=beacon_commitment(values[i])) for i in commit),
    )
    if reveal:
        _ok(chain, store, *(chain.sign(k[i].node, "beacon_reveal", epoch=e, reveal=values[i]) for i in reveal), ts=mid)
    _ok(chain, store, *(chain.sign(k[i].node, "change_epoch", epoch=e) for i in range(3)), ts=info.end_ms)
    assert store.head().epoch == e + 1


def test_non_revealers_are_slashed_at_the_epoch_change(store: StateStore, tmp_path: Path) -> None:
    chain = _chain()
    store.initialize(chain.genesis)
    before = [_node(store, chain, i).stake for i in range(5)]
    supply = _supply(store)
    _epoch_with_beacon(chain, store, commit=[0, 1, 2], reveal=[0])
    after = [_node(store, chain, i).stake for i in range(5)]
    # 1 and 2 committed and stayed silent; 0 revealed; 3 never committed; 4 is not a member
    assert [b - a for b, a in zip(before, after, strict=True)] == [0, 10 * FLK, 10 * FLK, 0, 0]
    assert _supply(store) == supply - 20 * FLK

    twin_chain = _chain()
    with StateStore(tmp_path / "twin", map_size=1 << 28, sync=False) as twin:
        twin.initialize(twin_chain.genesis)
        _epoch_with_beacon(twin_chain, twin, commit=[0, 1, 2], reveal=[0])
        assert twin.head().state_root == store.head().state_root


def test_the_slash_takes_stake_then_unstaking_never_more(store: StateStore) -> None:
    chain = _chain(slash=5000 * FLK)  # above any stake: takes everything that is there
    store.initialize(chain.genesis)
    k = chain.nodes
    nid = k[1].node.public.raw
    _ok(chain, store, chain.sign(k[1].account, "unstake", node=nid, amount=400 * FLK))
    n = _node(store, chain, 1)
    assert (n.stake, n.locked) == (600 * FLK, 400 * FLK)
    supply = _supply(store)
    _epoch_with_beacon(chain, store, commit=[1], reveal=[])
    n = _node(store, chain, 1)
    assert (n.stake, n.locked) == (0, 0)
    assert _supply(store) == supply - 1000 * FLK


def test_a_zero_param_slashes_nothing(store: StateStore) -> None:
    chain = _chain(slash=0)
    store.initialize(chain.genesis)
    supply = _supply(store)
    _epoch_with_beacon(chain, store, commit=[0, 1], reveal=[])
    assert _node(store, chain, 0).stake == _node(store, chain, 1).stake == 1000 * FLK
    assert _supply(store) == supply
