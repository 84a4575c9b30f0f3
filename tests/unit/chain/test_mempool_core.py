"""The mempool core: acceptance codes and their order, pending-cost accounting, protocol roles and counts, per-sender,
per-peer and pool limits, settling after a block, ready order, expiry. Driven against a real state (an LMDB store
with a writable overlay on top, so a test sets balances, nonces and params directly)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lightning.amounts import UNIT
from lightning.chain.mempool_core import MempoolCore, MempoolLimits, TxRejected
from lightning.crypto import Domain, SigningKey
from lightning.state.executor import Overlay
from lightning.state.fees import Costs
from lightning.state.records import PROTOCOL_TXS, Account, Committee, StateView, u64
from lightning.state.store import StateStore
from lightning.state.tx import SignedTransaction, decode_transaction, sign_transaction
from lightning.testing.devchain import DevChain, derive_key

FLK = UNIT
CHAIN = DevChain.create(nodes=3, committee=2, accounts=4)
A, B, C = CHAIN.accounts[0], CHAIN.accounts[1], CHAIN.accounts[2]
MEMBER, OTHER_MEMBER, STAKED = (k.node for k in CHAIN.nodes)  # nodes 0, 1 sit on the committee; node 2 does not
PEER, PEER2 = b"\x0a" * 32, b"\x0b" * 32


@pytest.fixture
def view(tmp_path: Path) -> Iterator[StateView]:
    """The genesis state, writable in memory (nothing reaches the store)."""
    with StateStore(tmp_path / "state", map_size=1 << 28, sync=False) as store:
        store.initialize(CHAIN.genesis)
        with store.view() as v:
            yield StateView(Overlay(v.kv))


def tx(key: SigningKey = A, nonce: int = 1, amount: int = 1, chain_id: int | None = None) -> SignedTransaction:
    return sign_transaction(
        key,
        chain_id=CHAIN.genesis.chain_id if chain_id is None else chain_id,
        nonce=nonce,
        method="transfer",
        to=b"\x01" * 32,
        amount=amount,
    )


def protocol(key: SigningKey, nonce: int = 1, method: str = "change_epoch") -> SignedTransaction:
    if method == "submit_reputation_measurements":
        m = {"node": MEMBER.public.raw, "latency_ms": 1, "uptime_pct": 100, "bytes_served": 0, "requests": 0}
        return sign_transaction(
            key, chain_id=CHAIN.genesis.chain_id, nonce=nonce, method=method, epoch=0, measurements=[m]
        )
    return sign_transaction(key, chain_id=CHAIN.genesis.chain_id, nonce=nonce, method=method, epoch=0)


def forged(stx: SignedTransaction) -> SignedTransaction:
    """``stx`` with a signature that does not verify."""
    return decode_transaction(stx.raw.replace(stx.signature, A.sign(Domain.TEST, b"x")))


def pool(**limits: Any) -> MempoolCore:
    return MempoolCore(CHAIN.genesis.chain_id, MempoolLimits(**limits))


def fund(view: StateView, key: SigningKey, balance: int, nonce: int = 0) -> None:
    view.set_account(key.public.raw, Account(balance, nonce))


def rejected(m: MempoolCore, stx: SignedTransaction, view: StateView, origin: bytes | None = None) -> str:
    before = (len(m), m.statistics().pending_bytes, m.pending_cost(stx.sender))
    with pytest.raises(TxRejected) as info:
        m.add(stx, Costs(view), 0.0, origin=origin)
    assert (len(m), m.statistics().pending_bytes, m.pending_cost(stx.sender)) == before  # nothing stored
    return info.value.code


def add(m: MempoolCore, stx: SignedTransaction, view: StateView, now: float = 0.0, origin: bytes | None = None) -> bool:
    return m.add(stx, Costs(view), now, origin=origin)


def fee(view: StateView, stx: SignedTransaction) -> int:
    return Costs(view).rules.fee(len(stx.raw))


def test_acceptance_codes(view: StateView) -> None:
    m = pool(max_per_sender=4)
    assert add(m, tx(nonce=1), view) is True
    assert add(m, tx(nonce=1), view) is False  # the same transaction again: accepted, not duplicated
    assert len(m) == 1
    assert rejected(m, tx(nonce=1, chain_id=99), view) == "wrong_chain"
    assert rejected(m, tx(nonce=1, amount=2), view) == "nonce_pending"
    assert rejected(m, tx(nonce=6), view) == "nonce_too_high"
    assert rejected(m, tx(nonce=2, amount=10**6 * FLK), view) == "insufficient_balance"
    assert rejected(m, forged(tx(nonce=2)), view) == "bad_signature"
    fund(view, A, 1000 * FLK, nonce=3)
    assert rejected(m, tx(nonce=3), view) == "nonce_too_low"
    assert m.statistics().rejected == 6


def test_unpaid_is_refused_before_the_signature_and_a_forgery_learns_nothing_about_the_pool(view: StateView) -> None:
    m = pool()
    broke = derive_key(5, "broke")
    # zero balance: refused for the fee whatever the signature (the balance is public state)
    assert rejected(
        m, sign_transaction(broke, chain_id=7, nonce=1, method="transfer", to=b"\x01" * 32, amount=1), view
    ) == ("insufficient_balance")
    assert rejected(m, forged(tx(broke, amount=1)), view) == "insufficient_balance"
    # a funded sender's pending transaction: a forged copy, or a forgery for its pending nonce, is a bad signature,
    # never "already pending" / "nonce_pending" (which would reveal what waits here)
    pending = tx(A, 1, amount=5)
    assert add(m, pending, view)
    assert rejected(m, forged(pending), view) == "bad_signature"
    assert rejected(m, forged(tx(A, 1, amount=6)), view) == "bad_signature"
    assert len(m) == 1 and m.pending() == [pending]


def test_the_total_pending_cost_must_fit_the_balance(view: StateView) -> None:
    m = pool()
    first = tx(A, 1, amount=FLK)
    cost = FLK + fee(view, first)
    fund(view, A, 3 * cost + cost // 2)  # pays three such transactions, not four
    for n in (1, 2, 3):
        assert add(m, tx(A, n, amount=FLK), view)
    assert m.pending_cost(A.public.raw) == 3 * cost
    assert rejected(m, tx(A, 4, amount=FLK), view) == "pending_exceeds_balance"
    assert add(m, tx(A, 4, amount=cost // 2 - fee(view, first)), view)  # what is left still fits
    assert rejected(m, tx(B, 1, amount=1000 * FLK), view) == "insufficient_balance"  # 1000 FLK + the fee
    assert add(m, tx(B, 1, amount=1000 * FLK - fee(view, tx(B, 1, amount=1000 * FLK))), view)
    # a block ran A's first two: the state's balance fell by their cost; A's pending cost falls as they are pruned
    fund(view, A, cost + cost // 2, nonce=2)
    assert m.settle([A.public.raw], Costs(view)) == 2
    assert m.pending_cost(A.public.raw) == cost + cost // 2 and len(m) == 3


def test_settle_drops_what_the_new_state_cannot_pay(view: StateView) -> None:
    m = pool()
    for n in (1, 2, 3):
        assert add(m, tx(A, n, amount=100 * FLK), view)
    # A's balance fell elsewhere (e.g. the same nonces spent through another node's pool): only one still fits
    fund(view, A, 150 * FLK)
    assert m.settle([A.public.raw], Costs(view)) == 2
    assert [t.nonce for t in m.pending()] == [1] and m.statistics().dropped_unpaid == 2
    assert m.pending_cost(A.public.raw) == 100 * FLK + fee(view, tx(A, 1, amount=100 * FLK))
    # a fee increase is priced in at settle time
    view.set_param("base_fee", 50 * FLK)
    assert m.settle([A.public.raw], Costs(view)) == 1 and len(m) == 0
    assert m.pending_cost(A.public.raw) == 0


def test_protocol_transactions_need_the_role(view: StateView) -> None:
    m = pool()
    fresh = derive_key(5, "fresh")
    assert rejected(m, protocol(fresh), view) == "not_authorized"  # the spam of issue 16: a fresh key's vote
    assert rejected(m, protocol(STAKED), view) == "not_authorized"  # staked, but not on the committee
    assert rejected(m, _beacon(fresh, 1), view) == "not_authorized"
    assert add(m, protocol(MEMBER), view)
    assert m.pending_cost(MEMBER.public.raw) == 0  # free
    # measurements are free for any staked registered node, committee or not; not for a stranger
    assert add(m, protocol(STAKED, method="submit_reputation_measurements"), view)
    assert rejected(m, protocol(fresh, method="submit_reputation_measurements"), view) == "not_authorized"
    # a forged vote from a member is a bad signature (the role passes, the signature does not)
    assert rejected(m, forged(protocol(OTHER_MEMBER)), view) == "bad_signature"


def _beacon(key: SigningKey, nonce: int) -> SignedTransaction:
    return sign_transaction(
        key, chain_id=CHAIN.genesis.chain_id, nonce=nonce, method="beacon_commit", epoch=0, commitment=bytes(32)
    )


def test_protocol_allowance_counts_the_state_and_the_pool(view: StateView) -> None:
    m = pool()
    view.set_param("protocol_txs_per_epoch", 4)
    view.put_row(PROTOCOL_TXS, u64(0) + MEMBER.public.raw, 1)  # one already executed this epoch
    for n in (1, 2, 3):
        assert add(m, _beacon(MEMBER, n), view)
    assert rejected(m, _beacon(MEMBER, 4), view) == "protocol_limit"
    # the count is per node: another member is not limited by it
    assert add(m, _beacon(OTHER_MEMBER, 1), view)
    # once the state's count reaches the limit, the pending ones are dropped at settle
    view.put_row(PROTOCOL_TXS, u64(0) + MEMBER.public.raw, 4)
    assert rejected(m, _beacon(MEMBER, 4), view) == "protocol_limit"
    assert m.settle([MEMBER.public.raw], Costs(view)) == 3


def test_settle_drops_protocol_transactions_whose_role_ended(view: StateView) -> None:
    m = pool()
    assert add(m, protocol(MEMBER), view) and add(m, protocol(OTHER_MEMBER), view)
    view.set_committee(0, Committee((OTHER_MEMBER.public.raw,), b""))  # MEMBER left the committee
    assert m.settle([MEMBER.public.raw, OTHER_MEMBER.public.raw], Costs(view)) == 1
    assert [t.sender for t in m.pending()] == [OTHER_MEMBER.public.raw]


def test_limits_per_sender_per_peer_and_pool(view: StateView) -> None:
    m = pool(max_per_sender=2, max_txs=5, max_per_peer=2)
    add(m, tx(A, 1), view)
    add(m, tx(A, 2), view)
    fund(view, A, 1000 * FLK, nonce=1)
    assert rejected(m, tx(A, 3), view) == "sender_full"
    assert add(m, tx(B, 1), view, origin=PEER) and add(m, tx(B, 2), view, origin=PEER)
    assert rejected(m, tx(C, 1), view, origin=PEER) == "peer_full"
    assert add(m, tx(B, 2), view, origin=PEER2) is False  # already pending: not counted against another peer
    assert m.pending_from(PEER) == 2 and m.pending_from(PEER2) == 0
    assert add(m, tx(C, 1), view, origin=None)  # a local client is not peer-limited
    assert rejected(m, tx(C, 2), view) == "pool_full"
    # pruning gives the peer its room back
    m.prune({B.public.raw: 1})
    assert m.pending_from(PEER) == 1
    assert add(m, tx(C, 2), view, origin=PEER)


def test_pool_bytes_limit(view: StateView) -> None:
    size = len(tx(A, 1).raw)
    m = pool(max_bytes=2 * size + size // 2)
    add(m, tx(A, 1), view)
    add(m, tx(B, 1), view)
    assert m.statistics().pending_bytes == 2 * size
    assert rejected(m, tx(C, 1), view) == "pool_full"
    m.prune({A.public.raw: 1})
    assert m.statistics().pending_bytes == size
    assert add(m, tx(C, 1), view)


def test_ready_order_gaps_and_prune(view: StateView) -> None:
    m = pool()
    for key, nonce in [(B, 2), (A, 1), (B, 1), (A, 2), (C, 3), (A, 3)]:
        add(m, tx(key, nonce), view)
    nonces = {A.public.raw: 0, B.public.raw: 0, C.public.raw: 0}
    ready = m.ready(10, nonces.__getitem__)
    # per sender in nonce order; across senders by arrival; C waits behind its gap
    assert [(t.sender, t.nonce) for t in ready] == [
        (A.public.raw, 1),
        (B.public.raw, 1),
        (B.public.raw, 2),
        (A.public.raw, 2),
        (A.public.raw, 3),
    ]
    assert m.ready(2, nonces.__getitem__) == ready[:2]
    assert m.pending_nonce(A.public.raw, 0) == 3 and m.pending_nonce(C.public.raw, 0) == 0
    assert m.prune({A.public.raw: 2, B.public.raw: 2}) == 4
    assert [(t.sender, t.nonce) for t in m.pending()] == [(C.public.raw, 3), (A.public.raw, 3)]
    assert not m.has_ready(lambda s: 0) and m.has_ready(lambda s: 2)


def test_expiry(view: StateView) -> None:
    m = pool(ttl_s=10.0, max_per_peer=5)
    add(m, tx(A, 1), view, 0.0, origin=PEER)
    add(m, tx(B, 1), view, 5.0)
    assert m.next_expiry() == 10.0
    assert m.expire(9.9) == 0
    assert m.expire(10.0) == 1 and len(m) == 1 and m.next_expiry() == 15.0
    assert m.pending_from(PEER) == 0 and m.pending_cost(A.public.raw) == 0
    assert m.expire(20.0) == 1 and m.next_expiry() is None
    assert m.statistics().expired == 2 and m.statistics().pending_bytes == 0


def test_a_stake_whose_registration_can_never_verify_is_refused_at_acceptance(view: StateView) -> None:
    # Bad input (issue 16): a registration signed by another key, naming another owner or chain is refused before it is
    # ordered (bad_arguments), not reverted in a block; a sound one is accepted.
    node, consensus, other = derive_key(9, "node"), derive_key(9, "consensus"), derive_key(9, "intruder")
    fund(view, A, 100 * FLK)

    def stake(nonce: int, blob: bytes) -> SignedTransaction:
        return CHAIN.sign(A, "stake", nonce=nonce, node=node.public.raw, amount=FLK, registration=blob)

    m = pool()
    assert rejected(m, stake(1, CHAIN.registration(other, consensus, A)), view) == "bad_arguments"  # another node key
    assert rejected(m, stake(1, CHAIN.registration(node, consensus, B)), view) == "bad_arguments"  # another owner
    assert rejected(m, stake(1, CHAIN.registration(node, consensus, A, chain_id=99)), view) == "bad_arguments"
    assert add(m, stake(1, CHAIN.registration(node, consensus, A)), view)
