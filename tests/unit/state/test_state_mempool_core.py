"""The mempool core: admission codes, limits, ready order, pruning, expiry."""

from __future__ import annotations

from typing import Any

import pytest

from lightning.chain.mempool_core import MempoolCore, MempoolLimits, TxRejected
from lightning.crypto import Domain, SigningKey
from lightning.state.records import Account
from lightning.state.tx import SignedTransaction, decode_transaction, sign_transaction
from lightning.testing.devchain import DevChain

CHAIN = DevChain.create(accounts=4)
A, B, C = CHAIN.accounts[0], CHAIN.accounts[1], CHAIN.accounts[2]
RICH = Account(balance=10**30, nonce=0)


def tx(key: SigningKey = A, nonce: int = 1, amount: int = 1, chain_id: int | None = None) -> SignedTransaction:
    return sign_transaction(
        key,
        chain_id=CHAIN.genesis.chain_id if chain_id is None else chain_id,
        nonce=nonce,
        method="transfer",
        to=b"\x01" * 32,
        amount=amount,
    )


def pool(**limits: Any) -> MempoolCore:
    return MempoolCore(CHAIN.genesis.chain_id, MempoolLimits(**limits))


def rejected(m: MempoolCore, stx: SignedTransaction, account: Account = RICH) -> str:
    with pytest.raises(TxRejected) as info:
        m.add(stx, account, 0.0)
    return info.value.code


def test_admission_checks() -> None:
    m = pool(max_per_sender=4)
    assert m.add(tx(nonce=1), RICH, 0.0) is True
    assert m.add(tx(nonce=1), RICH, 0.0) is False  # the same transaction again: accepted, not duplicated
    assert len(m) == 1
    assert rejected(m, tx(nonce=1, chain_id=99)) == "wrong_chain"
    assert rejected(m, tx(nonce=1, amount=2)) == "nonce_pending"
    assert rejected(m, tx(nonce=3), Account(10**30, 3)) == "nonce_too_low"
    assert rejected(m, tx(nonce=6)) == "nonce_too_high"
    assert rejected(m, tx(nonce=2, amount=10**31)) == "insufficient_balance"
    forged = decode_transaction(tx(nonce=2).raw.replace(tx(nonce=2).signature, A.sign(Domain.TEST, b"x")))
    assert rejected(m, forged) == "bad_signature"
    assert m.statistics().rejected == 6


def test_limits() -> None:
    m = pool(max_per_sender=2, max_txs=3)
    m.add(tx(A, 1), RICH, 0)
    m.add(tx(A, 2), RICH, 0)
    assert rejected(m, tx(A, 3), Account(10**30, 1)) == "sender_full"
    m.add(tx(B, 1), RICH, 0)
    assert rejected(m, tx(C, 1)) == "pool_full"


def test_ready_order_gaps_and_prune() -> None:
    m = pool()
    for key, nonce in [(B, 2), (A, 1), (B, 1), (A, 2), (C, 3), (A, 3)]:
        m.add(tx(key, nonce), RICH, 0)
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


def test_expiry() -> None:
    m = pool(ttl_s=10.0)
    m.add(tx(A, 1), RICH, 0.0)
    m.add(tx(B, 1), RICH, 5.0)
    assert m.next_expiry() == 10.0
    assert m.expire(9.9) == 0
    assert m.expire(10.0) == 1 and len(m) == 1 and m.next_expiry() == 15.0
    assert m.expire(20.0) == 1 and m.next_expiry() is None
    assert m.statistics().expired == 2
