"""Peer admission from a real state: levels before the state loads, per height after, and across an epoch change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from lightning.amounts import UNIT
from lightning.chain import State
from lightning.chain.admission import LEVEL_NEUTRAL_METHODS, StateAdmission
from lightning.chain.config import StateConfig
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net.admission import Access
from lightning.net.wire import Scope
from lightning.state.registry import METHODS
from lightning.state.tx import SignedTransaction
from lightning.testing.devchain import DevChain, derive_key

FLK = UNIT
# Nodes 0 and 1 form the committee; 2 and 3 are staked edge nodes; 4 is listed with no stake.
CHAIN = DevChain.create(nodes=4, committee=2, accounts=2, balance="100000 FLK")


def nid(key: SigningKey) -> NodeId:
    return NodeId.of(key)


N = [nid(k.node) for k in CHAIN.nodes]
STRANGER = nid(derive_key(9, "stranger"))
ALLOWED = nid(derive_key(9, "allowed"))


@pytest.fixture
async def state(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[State]:
    CHAIN.nonces.clear()  # a fresh state per test
    s = State(StateConfig(), tmp_path / "state", CHAIN.genesis, inline=True)
    await nursery.start(s.run)
    yield s


async def commit(state: State, txs: list[SignedTransaction], ts: int | None = None) -> None:
    committee = state.committee()
    proposer = next(i for i, k in enumerate(CHAIN.nodes) if k.node_id == committee.members[0])
    block, proof = CHAIN.block(state.head(), txs, timestamp_ms=ts, proposer=proposer)
    outcome = await state.commit(block, proof)
    assert all(r.status == "ok" for r in outcome.receipts), [r.reason for r in outcome.receipts]


async def end_epoch(state: State) -> None:
    info, committee = state.epoch_info(), state.committee()
    assert info is not None
    voters = [k for k in CHAIN.nodes if k.node_id in committee.members]
    await commit(state, [CHAIN.sign(k.node, "change_epoch", epoch=state.epoch()) for k in voters], info.end_ms)


def test_levels_from_the_genesis_file_until_the_state_loads(tmp_path: Path) -> None:
    state = State(StateConfig(), tmp_path / "state", CHAIN.genesis, inline=True)  # not running
    adm = StateAdmission(state, CHAIN.genesis, allow=[ALLOWED.hex()])
    assert [adm.access(n) for n in N] == [Access.CONSENSUS, Access.CONSENSUS, Access.FULL, Access.FULL]
    assert adm.access(ALLOWED) is Access.FULL and adm.access(STRANGER) is Access.LIMITED
    assert adm.statistics().height == -1


async def test_roles_follow_stakes_and_the_committee(state: State) -> None:
    adm = StateAdmission(state, CHAIN.genesis, allow=[ALLOWED.hex()])
    assert [adm.access(n) for n in N] == [Access.CONSENSUS, Access.CONSENSUS, Access.FULL, Access.FULL]
    assert adm.statistics() == type(adm.statistics())(height=0, consensus=2, full=5)

    # unknown authenticated node: transactions and sync reads only; the allow-list: every scope but consensus
    assert adm.admits(STRANGER) and adm.access(STRANGER) is Access.LIMITED
    assert [s for s in Scope if adm.allows(STRANGER, s)] == [Scope.SYNC, Scope.TXS]
    assert [s for s in Scope if adm.allows(ALLOWED, s)] == [Scope.BROADCAST, Scope.BLOCKS, Scope.SYNC, Scope.TXS]
    assert all(adm.allows(N[0], s) for s in Scope) and not adm.allows(N[2], Scope.CONSENSUS)

    # a new node stakes min_stake: full at the next block, before it opts in (so it can sync first)
    newcomer, newcomer_consensus, owner = derive_key(9, "new"), derive_key(9, "new-c"), CHAIN.accounts[0]
    reg = CHAIN.registration(newcomer, newcomer_consensus, owner)
    await commit(state, [CHAIN.sign(owner, "stake", node=newcomer.public.raw, amount=999 * FLK, registration=reg)])
    assert adm.access(nid(newcomer)) is Access.LIMITED  # registered, below min_stake
    await commit(state, [CHAIN.sign(owner, "stake", node=newcomer.public.raw, amount=1 * FLK)])
    assert adm.access(nid(newcomer)) is Access.FULL
    assert state.node(nid(newcomer)).participation == "false"  # type: ignore[union-attr]

    # a staked node unstakes below min_stake: limited at once (the pool closes its connection at the epoch change)
    owner2 = CHAIN.nodes[2].account
    await commit(state, [CHAIN.sign(owner2, "unstake", node=N[2], amount=1 * FLK)])
    assert adm.access(N[2]) is Access.LIMITED

    # committee member 1 opts out: still consensus until the epoch changes, then full (it keeps its stake)
    await commit(state, [CHAIN.sign(CHAIN.nodes[1].account, "opt_out", node=N[1])])
    assert adm.access(N[1]) is Access.CONSENSUS
    await end_epoch(state)
    assert set(state.committee().members) == {N[0], N[3]}  # the only eligible nodes left for two seats
    assert [adm.access(n) for n in N] == [Access.CONSENSUS, Access.FULL, Access.LIMITED, Access.CONSENSUS]
    assert adm.access(ALLOWED) is Access.FULL and adm.access(STRANGER) is Access.LIMITED


async def test_a_genesis_node_keeps_full_scopes_while_it_keeps_its_listed_stake(tmp_path: Path) -> None:
    chain = DevChain.create(nodes=3, committee=1, balance="100000 FLK")
    g = chain.genesis
    # node 1 is listed with 400 FLK (below min_stake), node 2 with nothing
    listed = {g.nodes[1].node_id: 400 * FLK, g.nodes[2].node_id: 0}
    genesis = replace(g, stakes={**g.stakes, **listed})
    one, two = NodeId.parse(g.nodes[1].node_key), NodeId.parse(g.nodes[2].node_key)
    state = State(StateConfig(), tmp_path / "state", genesis, inline=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        adm = StateAdmission(state, genesis)
        assert adm.access(one) is Access.FULL and adm.access(two) is Access.FULL
        unstake = chain.sign(chain.nodes[1].account, "unstake", node=one, amount=1)
        block, proof = chain.block(state.head(), [unstake])
        outcome = await state.commit(block, proof)
        assert [r.status for r in outcome.receipts] == ["ok"]
        assert adm.access(one) is Access.LIMITED and adm.access(two) is Access.FULL
        nursery.cancel_scope.cancel()


async def test_levels_are_read_once_per_block_that_may_change_them(state: State) -> None:
    adm = StateAdmission(state, CHAIN.genesis)
    reads = 0
    view = state.view

    def counting_view():  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return view()

    state.view = counting_view  # type: ignore[method-assign]
    for _ in range(1000):  # the per-message question: a dictionary lookup
        adm.access(N[2])
        adm.access(STRANGER)
    assert reads == 1

    async def commit_counted(txs: list[SignedTransaction]) -> int:
        nonlocal reads
        state.view = view  # type: ignore[method-assign]
        await commit(state, txs)
        state.view = counting_view  # type: ignore[method-assign]
        before = reads
        adm.access(N[0])
        adm.access(N[1])
        return reads - before

    a, b = CHAIN.accounts[0], CHAIN.accounts[1]
    assert await commit_counted([]) == 0
    assert await commit_counted([CHAIN.sign(a, "transfer", to=b.public.raw, amount=5)]) == 0
    assert await commit_counted([CHAIN.sign(CHAIN.nodes[3].account, "stake", node=N[3], amount=1)]) == 1
    assert adm.statistics().height == state.head().height
    state.view = view  # type: ignore[method-assign]
    await end_epoch(state)  # an epoch change always re-reads
    state.view = counting_view  # type: ignore[method-assign]
    before = reads
    adm.access(N[0])
    assert reads == before + 1
    state.view = view  # type: ignore[method-assign]


def test_level_neutral_methods_are_transaction_methods() -> None:
    assert set(METHODS) > LEVEL_NEUTRAL_METHODS
    assert not {"stake", "unstake", "slash", "change_protocol_param", "withdraw_unstaked"} & LEVEL_NEUTRAL_METHODS
