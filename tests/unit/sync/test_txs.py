"""Transactions over the pool's TXS scope (lightning/sync/txs.py) between real mempools on the simulated pool: an edge
node forwards what its clients send to the one committee member; the member's server answers each entry with its
result; malformed or out-of-bounds batches are refused whole and their sender penalised. No sockets; a mock clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from lightning.amounts import UNIT
from lightning.chain import Mempool, State
from lightning.chain.config import StateConfig
from lightning.chain.forward import ForwardError
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net import BadRequest, NetError, NotHere, Scope
from lightning.net.sim import SimNetwork, SimPool
from lightning.state.tx import MAX_TX_BYTES, SignedTransaction, sign_transaction
from lightning.sync.blocks import SyncServer
from lightning.sync.txs import (
    FORMAT_NATIVE,
    MAX_BATCH_BYTES,
    MAX_BATCH_TXS,
    NOT_PROCESSED,
    UNPAID_TOLERATED,
    PoolForwarder,
    TxServer,
    check_batch,
    split_batches,
)
from lightning.testing.devchain import DevChain

GENESIS_MS = 1_700_000_000_000


@dataclass
class Pair:
    """Nodes ``0 .. committee-1`` are the committee (each serves TXS and forwards to the others); the last node is an
    edge node that forwards to every member."""

    chain: DevChain
    net: SimNetwork
    pools: list[SimPool]
    mempools: list[Mempool]
    metrics: list[CollectorRegistry]

    @property
    def member(self) -> Mempool:
        return self.mempools[0]

    @property
    def edge(self) -> Mempool:
        return self.mempools[-1]

    @property
    def member_id(self) -> NodeId:
        return self.pools[0].node_id

    def transfer(self, account: int = 0, *, amount: int = UNIT, nonce: int | None = None) -> SignedTransaction:
        return self.chain.sign(self.chain.accounts[account], "transfer", to=b"\x42" * 32, amount=amount, nonce=nonce)

    async def request(self, msg: Any) -> Any:
        return await self.pools[-1].request(self.member_id, Scope.TXS, msg)

    def received(self, result: str, node: int = 0) -> float:
        value = self.metrics[node].get_sample_value("lightning_txs_received_total", {"result": result})
        return value or 0.0

    def penalties(self, reason: str) -> float:
        value = self.metrics[0].get_sample_value("lightning_net_penalties_total", {"reason": reason})
        return value or 0.0


async def wait_pending(mempool: Mempool, tx_hash: bytes) -> None:
    """Until ``tx_hash`` is in ``mempool`` (woken by each admission; no polling)."""
    while tx_hash not in mempool.core:
        await mempool._changed.wait()


@asynccontextmanager
async def open_pair(tmp_path: Path, *, committee: int = 1) -> AsyncIterator[Pair]:
    chain = DevChain.create(seed=3, nodes=committee + 1, committee=committee, accounts=2, genesis_time_ms=GENESIS_MS)
    config = StateConfig()
    net = SimNetwork(3)
    registries = [CollectorRegistry() for _ in chain.nodes]
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        pools, mempools = [], []
        for i, keys in enumerate(chain.nodes):
            pool = net.pool(keys.node, registry=registries[i])
            await nursery.start(pool.run)
            state = State(config, tmp_path / f"n{i}", chain.genesis, inline=True)
            await nursery.start(state.run)
            mempool = Mempool(
                state,
                config,
                node_id=pool.node_id,
                ordering_nodes=lambda s=state: s.committee().members,
                forwarder=PoolForwarder(pool, registry=registries[i]),
                registry=registries[i],
            )
            await nursery.start(mempool.run)
            TxServer(pool, mempool, registry=registries[i])
            pools.append(pool)
            mempools.append(mempool)
        assert [m.orders_here() for m in mempools] == [True] * committee + [False]
        yield Pair(chain, net, pools, mempools, registries)
        nursery.cancel_scope.cancel()


def run(tmp_path: Path, body: Callable[[Pair], Awaitable[None]], *, committee: int = 1) -> None:
    async def main() -> None:
        async with open_pair(tmp_path, committee=committee) as pair:
            with trio.fail_after(60):
                await body(pair)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_transaction_sent_to_an_edge_node_reaches_the_member(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        stx = p.transfer()
        _, new = p.edge.submit(stx.raw)
        assert new
        await wait_pending(p.member, stx.hash)
        assert p.received("accepted") == 1
        # The forwarder itself, called directly: it counts what the member answered for.
        metrics = CollectorRegistry()
        more = [p.transfer().raw for _ in range(3)]
        await PoolForwarder(p.pools[-1], registry=metrics).forward(p.member_id, [stx.raw, *more])
        assert metrics.get_sample_value("lightning_txs_forwarded_total") == 4
        assert p.received("accepted") == 4 and p.received("duplicate") == 1

    run(tmp_path, body)


def test_members_share_client_transactions_and_do_not_forward_forwarded_ones(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        from_edge = p.transfer()
        p.edge.submit(from_edge.raw)  # forwarded to both members
        await wait_pending(p.mempools[0], from_edge.hash)
        await wait_pending(p.mempools[1], from_edge.hash)
        from_client = p.transfer(account=1)
        p.mempools[0].submit(from_client.raw)  # a member's own client: forwarded to the other member
        await wait_pending(p.mempools[1], from_client.hash)
        # Member 0 forwards over one FIFO queue: had it forwarded ``from_edge`` again, member 1 would have counted a
        # duplicate before ``from_client`` arrived.
        assert p.received("accepted", node=1) == 2 and p.received("duplicate", node=1) == 0
        assert p.received("accepted", node=0) == 1 and p.received("duplicate", node=0) == 0
        assert p.received("accepted", node=2) == 0  # the edge orders nothing: no member forwards to it

    run(tmp_path, body, committee=2)


def test_results_per_transaction(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        good = p.transfer()
        stale = p.transfer(nonce=good.nonce, amount=2 * UNIT)  # another transaction with the same nonce
        other_chain = sign_transaction(
            p.chain.accounts[1],
            chain_id=p.chain.genesis.chain_id + 1,
            nonce=1,
            method="transfer",
            to=b"\x01" * 32,
            amount=1,
        )
        unknown = b"\x01" * 40
        reply = await p.request(
            {
                "txs": [
                    [FORMAT_NATIVE, good.raw],
                    [FORMAT_NATIVE, good.raw],
                    [FORMAT_NATIVE, stale.raw],
                    [FORMAT_NATIVE, other_chain.raw],
                    [1, unknown],  # reserved: Ethereum raw transactions
                    [FORMAT_NATIVE, b"\x90"],
                ]
            }
        )
        assert reply == {
            "results": ["accepted", "duplicate", "nonce_pending", "wrong_chain", "unknown_format", "malformed"]
        }
        assert p.received("unknown_format") == 1 and p.received("duplicate") == 1
        assert p.penalties("txs invalid transactions") == 0  # 2 invalid: within what is tolerated

    run(tmp_path, body)


def test_bad_signatures_are_rejected_and_a_peer_forwarding_more_than_a_few_penalised_at_once(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        def forged(account: int, nonce: int) -> bytes:
            raw = bytearray(p.transfer(account, nonce=nonce).raw)
            raw[-1] ^= 1  # the last byte is the signature's
            return bytes(raw)

        # a few invalid ones (an honest forwarder sends none, but a bug should not get a node banned): refused
        few = [forged(0, n) for n in (1, 2, 3)]
        good = p.transfer(account=1)
        reply = await p.request({"txs": [[FORMAT_NATIVE, raw] for raw in few] + [[0, good.raw]]})
        assert reply == {"results": ["bad_signature"] * 3 + ["accepted"]}
        assert len(p.member.core) == 1 and p.penalties("txs invalid transactions") == 0
        # more within the window: penalised, and no further signature is checked for the rest of the batch
        more = [forged(0, n) for n in (4, 5, 6)]
        late = p.transfer(account=1)
        reply = await p.request({"txs": [[FORMAT_NATIVE, raw] for raw in more] + [[0, late.raw]]})
        assert reply == {"results": ["bad_signature"] * 2 + [NOT_PROCESSED] * 2}
        assert len(p.member.core) == 1 and p.penalties("txs invalid transactions") == 1

    run(tmp_path, body)


@pytest.mark.parametrize(
    "msg",
    [
        [],
        {"txs": []},
        {"txs": [[0, b"x"]], "more": 1},
        {"txs": [[0]]},
        {"txs": [["0", b"x"]]},
        {"txs": [[True, b"x"]]},
        {"txs": [[0, "hex"]]},
        {"txs": [[0, b""]]},
        {"txs": [[0, b"x" * (MAX_TX_BYTES + 1)]]},
        {"txs": [[0, b"x"]] * (MAX_BATCH_TXS + 1)},
        {"txs": [[0, b"x" * MAX_TX_BYTES]] * (MAX_BATCH_BYTES // MAX_TX_BYTES + 1)},
    ],
    ids=["not-a-map", "empty", "extra-key", "short-entry", "text-tag", "bool-tag", "text-raw", "empty-raw",
         "oversize-tx", "too-many", "too-many-bytes"],
)  # fmt: skip
def test_check_batch_refuses_out_of_bounds(msg: Any) -> None:
    with pytest.raises(BadRequest):
        check_batch(msg)


def test_check_batch_accepts_the_bounds() -> None:
    full = {"txs": [[0, b"x" * (MAX_BATCH_BYTES // MAX_BATCH_TXS)]] * MAX_BATCH_TXS}
    assert len(check_batch(full)) == MAX_BATCH_TXS


def test_malformed_batches_are_refused_and_a_repeat_offender_banned(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        for _ in range(2):
            with pytest.raises(BadRequest):
                await p.request({"txs": [[0, b"x"]] * (MAX_BATCH_TXS + 1)})
        assert p.penalties("txs malformed batch") == 2
        assert len(p.member.core) == 0
        with pytest.raises(NetError):  # the third penalty bans: the connection closes
            await p.request({"txs": "not a list"})
        with pytest.raises(ForwardError):
            await PoolForwarder(p.pools[-1]).forward(p.member_id, [p.transfer().raw])

    run(tmp_path, body)


def test_split_batches_keeps_both_bounds() -> None:
    raws = [b"a" * MAX_TX_BYTES] * 20 + [b"b"] * 600
    batches = split_batches(raws)
    assert [raw for batch in batches for raw in batch] == raws
    assert all(len(b) <= MAX_BATCH_TXS and sum(map(len, b)) <= MAX_BATCH_BYTES for b in batches)
    assert [len(b) for b in batches] == [16, 4 + 252, 256, 92]
    assert split_batches([]) == []


def test_the_forwarder_reports_an_unreachable_node(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        p.net.partition([p.pools[-1].node_id], [p.member_id])
        with pytest.raises(ForwardError):
            await PoolForwarder(p.pools[-1], timeout_s=5).forward(p.member_id, [p.transfer().raw])
        assert len(p.member.core) == 0

    run(tmp_path, body)


def test_the_forward_queue_sends_a_transaction_to_a_node_once(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        first = p.transfer()
        p.edge.submit(first.raw)
        await wait_pending(p.member, first.hash)
        # An epoch change re-forwards everything pending (Mempool._on_commit); within the window what already went
        # to a node does not go again. The queue is FIFO, so once ``second`` arrived a resend of ``first`` would have.
        p.edge._forward(p.edge.core.pending())
        second = p.transfer()
        p.edge.submit(second.raw)
        await wait_pending(p.member, second.hash)
        assert p.received("accepted") == 2 and p.received("duplicate") == 0

    run(tmp_path, body)


def test_a_node_whose_state_is_not_open_yet_refuses_and_the_sender_retries(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        # The pool starts before the state: a batch arriving in between is refused (not_found), not failed.
        keys = p.chain.nodes[0]
        pool = p.net.pool(SigningKey(b"\x07" * 32))
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            state = State(StateConfig(), tmp_path / "late", p.chain.genesis, inline=True)
            mempool = Mempool(state, StateConfig(), node_id=pool.node_id, ordering_nodes=lambda: [keys.node_id])
            TxServer(pool, mempool)
            with pytest.raises(NotHere):
                await p.pools[-1].request(pool.node_id, Scope.TXS, {"txs": [[FORMAT_NATIVE, p.transfer().raw]]})
            with pytest.raises(ForwardError):
                await PoolForwarder(p.pools[-1]).forward(pool.node_id, [p.transfer().raw])
            nursery.cancel_scope.cancel()

    run(tmp_path, body)


def test_a_sync_request_before_the_state_is_open_is_refused_not_failed(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        # Same window on the sync scope: the handler must not touch a state that is not open (it used to crash).
        pool = p.net.pool(SigningKey(b"\x08" * 32))
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            SyncServer(pool, State(StateConfig(), tmp_path / "late-sync", p.chain.genesis, inline=True))
            with pytest.raises(NotHere):
                await p.pools[-1].request(pool.node_id, Scope.SYNC, {"from": 1, "max": 4, "wait_ms": 0})
            nursery.cancel_scope.cancel()

    run(tmp_path, body)


def test_a_peer_flooding_unpaid_transactions_is_penalised_but_a_few_are_tolerated(tmp_path: Path) -> None:
    async def body(p: Pair) -> None:
        # Validly signed transfers from fresh keys with no balance: each refused insufficient_balance, nothing stored.
        def unpaid(i: int) -> bytes:
            key = SigningKey(blake3.blake3(b"unpaid %d" % i).digest())
            return sign_transaction(key, chain_id=p.chain.genesis.chain_id, nonce=1, method="transfer",
                                    to=b"\x42" * 32, amount=1).raw  # fmt: skip

        few = await p.request({"txs": [[FORMAT_NATIVE, unpaid(i)] for i in range(UNPAID_TOLERATED)]})
        assert set(few["results"]) == {"insufficient_balance"}
        assert p.penalties("txs unpaid transactions") == 0  # a lagging honest forwarder may send a few
        more = await p.request({"txs": [[FORMAT_NATIVE, unpaid(UNPAID_TOLERATED + i)] for i in range(8)]})
        assert set(more["results"]) == {"insufficient_balance"}
        assert p.penalties("txs unpaid transactions") == 1
        assert len(p.member.core) == 0

    run(tmp_path, body)
