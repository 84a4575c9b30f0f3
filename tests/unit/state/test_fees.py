"""Fees in the executor (docs/fees.md): paid transactions pay base_fee + fee_per_byte * size into the protocol fund,
a revert still pays, an unpaid transaction leaves no trace; protocol transactions are free for their role only and
within the per-epoch allowance."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.amounts import UNIT
from lightning.crypto import SigningKey
from lightning.state.epoch import beacon_commitment
from lightning.state.fees import FUND
from lightning.state.records import PROTOCOL_TXS, u64
from lightning.state.store import BlockOutcome, StateStore, genesis_params
from lightning.state.tx import SignedTransaction
from lightning.testing.devchain import DevChain, derive_key

FLK = UNIT


@pytest.fixture
def chain() -> DevChain:
    return DevChain.create(nodes=5, committee=4, accounts=3, balance="1000 FLK", epoch_time_ms=60_000)


@pytest.fixture
def store(tmp_path: Path, chain: DevChain) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state", map_size=1 << 30, sync=False) as s:
        s.initialize(chain.genesis)
        yield s


def apply(chain: DevChain, store: StateStore, *txs: SignedTransaction, ts: int | None = None) -> BlockOutcome:
    return chain.apply(store, txs, timestamp_ms=ts)


def fee_of(store: StateStore, tx: SignedTransaction) -> int:
    with store.view() as v:
        return v.param("base_fee") + v.param("fee_per_byte") * len(tx.raw)


def account(store: StateStore, key: SigningKey | bytes) -> tuple[int, int]:
    with store.view() as v:
        a = v.account(key.public.raw if isinstance(key, SigningKey) else key)
    return a.balance, a.nonce


def fund(store: StateStore) -> int:
    with store.view() as v:
        n: int = v.meta(FUND, 0)
    return n


def test_default_fee_of_a_transfer_is_about_a_thousandth_flk(chain: DevChain) -> None:
    params = genesis_params(chain.genesis)
    tx = chain.sign(chain.accounts[0], "transfer", to=chain.accounts[1].public.raw, amount=FLK)
    fee = params["base_fee"] + params["fee_per_byte"] * len(tx.raw)
    assert 150 <= len(tx.raw) <= 250
    assert FLK // 2000 <= fee <= FLK // 500  # 0.0005 .. 0.002 FLK


def test_a_paid_transaction_pays_its_fee_into_the_fund(chain: DevChain, store: StateStore) -> None:
    a, b = chain.accounts[0], chain.accounts[1]
    with store.view() as v:
        supply = v.meta("supply")
    t = chain.sign(a, "transfer", to=b.public.raw, amount=10 * FLK)
    (r,) = apply(chain, store, t).receipts
    assert r.status == "ok"
    fee = fee_of(store, t)
    assert fee > 0
    assert account(store, a) == (990 * FLK - fee, 1) and account(store, b) == (1010 * FLK, 0)
    assert fund(store) == fee
    with store.view() as v:
        assert v.meta("supply") == supply  # fees move FLK, they do not burn it


def test_a_revert_still_pays_and_consumes_the_nonce(chain: DevChain, store: StateStore) -> None:
    a = chain.accounts[0]
    t = chain.sign(a, "transfer", to=b"\x01" * 32, amount=5000 * FLK)  # covers the fee, not the amount
    (r,) = apply(chain, store, t).receipts
    assert r.status == "reverted" and "insufficient balance" in r.reason
    assert account(store, a) == (1000 * FLK - fee_of(store, t), 1) and fund(store) == fee_of(store, t)
    assert store.receipt(t.hash) == r


def test_an_unpaid_transaction_writes_nothing_and_has_no_receipt(chain: DevChain, store: StateStore) -> None:
    broke = derive_key(1, "broke")
    paid = chain.sign(chain.accounts[0], "transfer", to=broke.public.raw, amount=1)  # 1 base unit: less than a fee
    apply(chain, store, paid)
    before = store.head().state_root
    unpaid = chain.sign(broke, "transfer", to=b"\x01" * 32, amount=1)
    outcome = apply(chain, store, unpaid)
    assert outcome.receipts == ()
    (s,) = outcome.skipped
    assert (s.tx_hash, s.sender, s.nonce, s.code) == (unpaid.hash, broke.public.raw, 1, "insufficient_balance")
    assert outcome.head.state_root == before  # nothing written: not the nonce, not the fee
    assert account(store, broke) == (1, 0) and store.receipt(unpaid.hash) is None
    stored = store.block(outcome.head.height)
    assert stored is not None and stored[2] == ()


def test_a_sender_that_spends_its_fee_money_earlier_in_the_block_is_skipped_later(
    chain: DevChain, store: StateStore
) -> None:
    a = chain.accounts[0]
    probe = chain.sign(a, "transfer", nonce=1, to=b"\x01" * 32, amount=999 * FLK)
    drain = chain.sign(a, "transfer", nonce=1, to=b"\x01" * 32, amount=1000 * FLK - fee_of(store, probe))
    chain.nonces[a.public.raw] = 1
    after = chain.sign(a, "transfer", to=b"\x01" * 32, amount=1)
    outcome = apply(chain, store, drain, after)
    assert [r.status for r in outcome.receipts] == ["ok"] and [s.index for s in outcome.skipped] == [1]
    assert account(store, a) == (0, 1)


def test_fee_params_change_applies_to_the_next_transaction_in_the_same_block(
    chain: DevChain, store: StateStore
) -> None:
    g, a = chain.governance, chain.accounts[0]
    raise_fee = chain.sign(g, "change_protocol_param", name="base_fee", value=2000 * FLK)
    t = chain.sign(a, "transfer", to=b"\x01" * 32, amount=1)
    outcome = apply(chain, store, raise_fee, t)
    assert [r.status for r in outcome.receipts] == ["ok"] and [s.code for s in outcome.skipped] == [
        "insufficient_balance"
    ]
    assert account(store, a) == (1000 * FLK, 0)


def test_protocol_transactions_are_free_for_members_and_leave_no_trace_from_others(
    chain: DevChain, store: StateStore
) -> None:
    member, outsider, fresh = chain.nodes[0].node, chain.nodes[4].node, derive_key(1, "fresh")
    commit = chain.sign(member, "beacon_commit", epoch=0, commitment=beacon_commitment(b"\x01" * 32))
    (r,) = apply(chain, store, commit).receipts
    assert r.status == "ok" and account(store, member) == (0, 1) and fund(store) == 0  # no balance needed
    with store.view() as v:
        assert v.row(PROTOCOL_TXS, u64(0) + member.public.raw) == 1
    before = store.head().state_root
    with store.view() as v:
        info = v.epoch_info(0)
    assert info is not None
    m = {"node": member.public.raw, "latency_ms": 1, "uptime_pct": 100, "bytes_served": 0, "requests": 0}
    spam = [  # each the sender's first transaction (an unpaid one consumes no nonce)
        chain.sign(fresh, "change_epoch", nonce=1, epoch=0),  # a fresh key's vote: once stored as "reverted"
        chain.sign(outsider, "change_epoch", nonce=1, epoch=0),  # staked and registered, but not on the committee
        chain.sign(outsider, "beacon_commit", nonce=1, epoch=0, commitment=bytes(32)),
        chain.sign(fresh, "submit_reputation_measurements", nonce=1, epoch=0, measurements=[m]),  # not staked
    ]
    outcome = apply(chain, store, *spam, ts=info.end_ms)
    assert outcome.receipts == () and [s.code for s in outcome.skipped] == ["not_authorized"] * 4
    assert outcome.head.state_root == before
    assert all(store.receipt(t.hash) is None for t in spam)


def test_the_per_epoch_protocol_allowance(chain: DevChain, store: StateStore) -> None:
    g = chain.governance
    (r,) = apply(chain, store, chain.sign(g, "change_protocol_param", name="protocol_txs_per_epoch", value=4)).receipts
    assert r.status == "ok"
    r = apply(chain, store, chain.sign(g, "change_protocol_param", name="protocol_txs_per_epoch", value=3)).receipts[0]
    assert r.status == "reverted" and "at least 4" in r.reason
    member = chain.nodes[0].node
    # reverted votes (the epoch has not ended) use the allowance: a revert counts, as a paid revert pays its fee
    votes = [chain.sign(member, "change_epoch", epoch=0) for _ in range(5)]
    outcome = apply(chain, store, *votes)
    assert [r.status for r in outcome.receipts] == ["reverted"] * 4
    assert [(s.index, s.code) for s in outcome.skipped] == [(4, "protocol_limit")]
    assert account(store, member)[1] == 4 and store.receipt(votes[4].hash) is None
    chain.nonces[member.public.raw] = 4
    # the next epoch starts a fresh allowance (the other members end this one)
    with store.view() as v:
        info = v.epoch_info(0)
    assert info is not None
    others = [chain.sign(k.node, "change_epoch", epoch=0) for k in chain.nodes[1:4]]
    assert [r.status for r in apply(chain, store, *others, ts=info.end_ms).receipts] == ["ok"] * 3
    assert store.head().epoch == 1
    with store.view() as v:
        assert list(v.kv.scan(PROTOCOL_TXS)) == []
        committee = v.committee(1)
    assert committee is not None
    if member.public.raw in committee.members:
        (r,) = apply(chain, store, chain.sign(member, "change_epoch", epoch=1)).receipts
        assert r.status == "reverted"  # free again (and reverted: epoch 1 has not ended)


@settings(max_examples=30)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 1200)), min_size=1, max_size=12),
    st.integers(1, 1000 * FLK),
    st.integers(0, 10**14),
)
def test_fees_conserve_balances_plus_fund(moves: list[tuple[int, int, int]], base: int, per_byte: int) -> None:
    chain = DevChain.create(accounts=4, balance="1000 FLK", params={"base_fee": base, "fee_per_byte": per_byte})
    with tempfile.TemporaryDirectory() as d, StateStore(Path(d) / "s", map_size=1 << 28, sync=False) as store:
        store.initialize(chain.genesis)

        def total() -> int:
            with store.view() as v:
                return sum(v.account(k.public.raw).balance for k in chain.accounts) + v.meta(FUND, 0)

        start = total()
        txs = [
            chain.sign(chain.accounts[s], "transfer", to=chain.accounts[t].public.raw, amount=n * FLK)
            for s, t, n in moves
        ]
        outcome = apply(chain, store, *txs)
        assert total() == start
        by_hash = {t.hash: t for t in txs}
        charged = [by_hash[r.tx_hash] for r in outcome.receipts if r.status != "invalid"]
        assert fund(store) == sum(base + per_byte * len(t.raw) for t in charged)
        assert len(outcome.receipts) + len(outcome.skipped) == len(txs)
