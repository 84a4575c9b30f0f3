"""The async layer without sockets: follower checks and the JSON-RPC methods through the Dispatcher (peer admission:
tests/unit/chain/test_chain_admission.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from lightning.chain import Follower, Mempool, State, register_state_rpc
from lightning.chain.config import StateConfig
from lightning.chain.forward import BlockSourceError
from lightning.clock import TrioWallClock
from lightning.rpc import Dispatcher
from lightning.state.block import Block, BlockMalformed, CommitProof
from lightning.state.executor import InvalidBlock
from lightning.testing.devchain import DevChain

GENESIS_MS = 1_700_000_000_000
CHAIN = DevChain.create(nodes=3, committee=1, accounts=2, genesis_time_ms=GENESIS_MS)


@pytest.fixture
async def state(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[State]:
    s = State(StateConfig(), tmp_path / "state", CHAIN.genesis, inline=True)
    await nursery.start(s.run)
    yield s


class ScriptedSource:
    """A BlockSource serving whatever the test queued (a Byzantine orderer, when the test says so)."""

    def __init__(self) -> None:
        self.queue: list[list[tuple[Block, CommitProof]]] = []

    async def fetch_blocks(
        self, node_id: bytes, start: int, max_blocks: int, wait_s: float
    ) -> list[tuple[Block, CommitProof]]:
        await trio.lowlevel.checkpoint()
        if not self.queue:
            raise BlockSourceError("nothing queued")
        return self.queue.pop(0)


async def test_follower_applies_good_blocks_and_refuses_bad_ones(
    state: State, autojump_clock: trio.testing.MockClock
) -> None:
    clock = TrioWallClock(GENESIS_MS)
    me = CHAIN.nodes[1].node.public.raw  # not the sequencer
    source = ScriptedSource()
    follower = Follower(state, source, node_id=me, clock=clock)
    leader = CHAIN.nodes[0]
    tx = CHAIN.sign(CHAIN.accounts[0], "transfer", nonce=1, to=b"\x01" * 32, amount=5)
    block, proof = CHAIN.block(state.head(), [tx], timestamp_ms=GENESIS_MS + 10)

    # signed by a non-member
    forged = CommitProof.sequencer(block, CHAIN.nodes[1].consensus, chain_id=CHAIN.genesis.chain_id)
    with pytest.raises(BlockMalformed, match="bad signature"):
        source.queue.append([(block, forged)])
        await follower.follow_once(leader.node.public.raw)
    future, future_proof = CHAIN.block(state.head(), [tx], timestamp_ms=GENESIS_MS + 3_600_000)
    with pytest.raises(InvalidBlock, match="ahead"):
        source.queue.append([(future, future_proof)])
        await follower.follow_once(leader.node.public.raw)
    other = replace(block, proposer=CHAIN.nodes[2].node_id)
    with pytest.raises(BlockMalformed):
        source.queue.append([(other, CommitProof.sequencer(other, leader.consensus, chain_id=CHAIN.genesis.chain_id))])
        await follower.follow_once(leader.node.public.raw)
    assert state.head().height == 0

    source.queue.append([(block, proof)])
    assert await follower.follow_once(leader.node.public.raw) == 1
    assert state.head().height == 1 and state.account(b"\x01" * 32).balance == 5


async def test_rpc_methods_through_the_dispatcher(state: State, nursery: trio.Nursery) -> None:
    config = StateConfig()
    leader = CHAIN.nodes[0].node.public.raw
    pool = Mempool(state, config, node_id=leader, ordering_nodes=lambda: (leader,))
    await nursery.start(pool.run)
    d = Dispatcher()
    register_state_rpc(d, state, pool)

    async def call(method: str, *params: Any) -> dict[str, Any]:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        answer = await d.handle(body, "127.0.0.1")
        assert answer is not None
        return dict(json.loads(answer))

    a = CHAIN.accounts[0]
    info = (await call("flk_get_account_info", "0x" + a.public.hex))["result"]
    balance = str(1000 * 10**18)
    assert info == {"address": a.public.hex, "balance": balance, "flk_balance": balance, "nonce": 0, "next_nonce": 1}
    stx = CHAIN.sign(a, "transfer", nonce=1, to=b"\x01" * 32, amount=5)
    assert (await call("flk_send_txn", stx.raw.hex()))["result"] == {"hash": stx.hash.hex(), "new": True}
    assert (await call("flk_get_account_info", a.public.hex))["result"]["next_nonce"] == 2
    assert (await call("flk_get_txn_receipt", stx.hash.hex()))["result"] is None  # nobody orders in this test
    errors = [
        await call("flk_get_flk_balance", 5),
        await call("flk_get_committee_members", 9),
        await call("flk_get_epoch_info", -1),
        await call("flk_get_state_proof", "accounts", "xyz"),
        await call("flk_get_txn_receipt", "00" * 32, 10**9),
        await call("flk_get_node_registry", 0, 0),
        await call("flk_get_blocks", 0),
        await call("flk_get_flk_balance"),
    ]
    assert [e["error"]["code"] for e in errors] == [-32602] * len(errors)
    assert "epoch 9 has no committee" in errors[1]["error"]["message"]
    rejected = await call("flk_send_txn", stx.raw.hex().replace("a", "b", 1))
    assert rejected["error"]["code"] == -32010
