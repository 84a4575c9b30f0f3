"""The Mempool component's acceptance over a running State (inline, mock clock): pending-cost accounting across a
sender's transactions, the per-peer limit on forwarded transactions, protocol roles, and settling after a block that
spent a sender's balance some other way."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.amounts import UNIT
from lightning.chain.component import State
from lightning.chain.config import StateConfig
from lightning.chain.mempool import Mempool
from lightning.chain.mempool_core import TxRejected
from lightning.ids import NodeId
from lightning.state.fees import FeeRules
from lightning.state.tx import SignedTransaction
from lightning.testing.devchain import DevChain, derive_key

FLK = UNIT
PEER = NodeId(b"\x0a" * 32)


def code(pool: Mempool, stx: SignedTransaction, origin: NodeId | None = None) -> str:
    with pytest.raises(TxRejected) as info:
        pool.submit(stx.raw, forward=False, origin=origin)
    return info.value.code


async def _run(tmp_path: Path) -> None:
    chain = DevChain.create(nodes=2, committee=1, accounts=4, balance="10 FLK")
    a, b, c, d = chain.accounts
    state = State(StateConfig(), tmp_path / "state", chain.genesis, inline=True)
    me = NodeId.of(chain.nodes[0].node)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        pool = Mempool(
            state, StateConfig(mempool_max_per_peer=2), node_id=me, ordering_nodes=lambda: [me], registry=None
        )
        with state.view() as view:
            rules = FeeRules.of(view)

        # a sender's pending transactions together must fit its balance: 4 + 4 FLK fit 10, a third 4 does not
        t1 = chain.sign(a, "transfer", to=d.public.raw, amount=4 * FLK)
        t2 = chain.sign(a, "transfer", to=d.public.raw, amount=4 * FLK)
        assert pool.submit(t1.raw, forward=False)[1] and pool.submit(t2.raw, forward=False)[1]
        assert pool.core.pending_cost(a.public.raw) == 8 * FLK + rules.fee(len(t1.raw)) + rules.fee(len(t2.raw))
        assert code(pool, chain.sign(a, "transfer", to=d.public.raw, amount=4 * FLK)) == "pending_exceeds_balance"
        chain.nonces[a.public.raw] = 2
        small = chain.sign(a, "transfer", to=d.public.raw, amount=FLK)
        assert pool.submit(small.raw, forward=False)[1]
        chain.nonces[a.public.raw] = 0

        # a zero-balance sender, a fresh key's epoch vote, a staked non-member's vote: refused, nothing pending
        broke = derive_key(3, "broke")
        assert code(pool, chain.sign(broke, "transfer", to=d.public.raw, amount=1)) == "insufficient_balance"
        assert code(pool, chain.sign(broke, "change_epoch", nonce=1, epoch=0)) == "not_authorized"
        outsider = chain.nodes[1].node
        assert code(pool, chain.sign(outsider, "change_epoch", epoch=0)) == "not_authorized"
        assert len(pool.core) == 3
        # the committee member's own vote is free
        vote = chain.sign(chain.nodes[0].node, "change_epoch", epoch=0)
        assert pool.submit(vote.raw, forward=False)[1]

        # per-peer limit: two from PEER, the third refused; a local client is not peer-limited
        assert pool.submit(chain.sign(b, "transfer", to=d.public.raw, amount=1).raw, forward=False, origin=PEER)[1]
        assert pool.submit(chain.sign(b, "transfer", to=d.public.raw, amount=1).raw, forward=False, origin=PEER)[1]
        third = chain.sign(c, "transfer", to=d.public.raw, amount=1)
        assert code(pool, third, origin=PEER) == "peer_full"
        assert pool.submit(third.raw, forward=False)[1]
        assert pool.core.pending_from(PEER) == 2

        # A's nonce 1 is spent by another transaction (sent through another node) that takes all but one fee:
        # after the block, t1 is stale (its nonce is used) and t2 and the small one can no longer be paid
        probe = chain.sign(a, "transfer", nonce=1, to=d.public.raw, amount=9 * FLK)
        other = chain.sign(a, "transfer", nonce=1, to=d.public.raw, amount=10 * FLK - 2 * rules.fee(len(probe.raw)))
        block, proof = chain.block(state.head(), [other])
        outcome = await state.commit(block, proof)
        assert [r.status for r in outcome.receipts] == ["ok"]
        assert [t.sender for t in pool.core.pending()].count(a.public.raw) == 0
        assert pool.core.pending_cost(a.public.raw) == 0
        assert pool.statistics().dropped_unpaid == 2
        assert pool.next_nonce(a.public.raw) == 2
        nursery.cancel_scope.cancel()


def test_mempool_acceptance_over_a_running_state(tmp_path: Path) -> None:
    trio.run(_run, tmp_path, clock=trio.testing.MockClock(autojump_threshold=0))
