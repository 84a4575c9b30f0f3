"""The Lightning-named state methods (``flk_get_total_supply``, ``flk_get_staking_amount``, ``net_version`` …) through
the dispatcher, over a real state with no sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from lightning.chain import Mempool, State, register_state_rpc
from lightning.chain.config import StateConfig
from lightning.rpc import Dispatcher
from lightning.testing.devchain import CHAIN_ID, DevChain

CHAIN = DevChain.create(nodes=3, committee=2, accounts=2)


@pytest.fixture
async def rpc(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Any]:
    state = State(StateConfig(), tmp_path / "state", CHAIN.genesis, inline=True)
    await nursery.start(state.run)
    leader = CHAIN.nodes[0].node.public.raw
    pool = Mempool(state, StateConfig(), node_id=leader, ordering_nodes=lambda: (leader,))
    await nursery.start(pool.run)
    d = Dispatcher()
    register_state_rpc(d, state, pool)

    async def call(method: str, *params: Any) -> dict[str, Any]:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        answer = await d.handle(body, "127.0.0.1")
        assert answer is not None
        return dict(json.loads(answer))

    yield call


async def test_supply_stake_and_chain(rpc: Any) -> None:
    async def result(method: str, *params: Any) -> Any:
        answer = await rpc(method, *params)
        assert "result" in answer, answer
        return answer["result"]

    g = CHAIN.genesis
    assert await result("flk_get_total_supply") == str(sum(g.balances.values()) + sum(g.stakes.values()))
    assert await result("flk_get_total_supply", None) == await result("flk_get_total_supply", 0)
    params = await result("flk_get_protocol_params")
    assert await result("flk_get_staking_amount") == params["min_stake"]
    assert await result("flk_get_protocol_params", "MinimumNodeStake") == params["min_stake"]
    assert await result("flk_get_protocol_params", "committee_size") == 2
    assert await result("flk_get_protocol_params", "EpochTime") == params["epoch_time_ms"] == 60_000
    assert await result("flk_get_chain_id") == CHAIN_ID
    assert await result("net_version") == str(CHAIN_ID)

    n0, n2 = (str(CHAIN.nodes[i].node_id) for i in (0, 2))
    info = await result("flk_get_node_info", n0, None)
    assert info["public_key"] == info["node_id"] == n0 and info["domain"] == info["host"] == "127.0.0.1"
    assert await result("flk_get_node_info_epoch", n0) == [info, 0]
    assert await result("flk_get_node_info_epoch", "ab" * 32) == [None, 0]
    assert await result("flk_node_has_sufficient_stake", n0) is (int(info["stake"]) >= int(params["min_stake"]))
    assert await result("flk_node_has_sufficient_stake", "ab" * 32) is False
    assert await result("flk_get_stake_locked_until", n0) == 0 and await result("flk_get_locked_time", n0) == 0
    genesis = await result("flk_get_genesis_committee")
    assert [[i, n["node_id"], n["committee"]] for i, n in genesis] == [
        [0, str(CHAIN.nodes[0].node_id), True],
        [1, str(CHAIN.nodes[1].node_id), True],
    ]
    assert (await result("flk_get_node_info", n2))["committee"] is False
    epoch = await result("flk_get_epoch_info")
    assert epoch["epoch_end"] == epoch["end_ms"]

    account = CHAIN.accounts[0].public.hex
    info = await result("flk_get_account_info", account, 0)
    assert info["flk_balance"] == info["balance"] == await result("flk_get_flk_balance", account, None)


async def test_another_epoch_is_refused_naming_the_current_one(rpc: Any) -> None:
    n0 = str(CHAIN.nodes[0].node_id)
    for method, params in [
        ("flk_get_staked", [n0, 3]),
        ("flk_get_total_supply", [1]),
        ("flk_get_account_info", [CHAIN.accounts[0].public.hex, 2]),
        ("flk_get_reputation", [n0, 5]),
    ]:
        err = (await rpc(method, *params))["error"]
        assert err["code"] == -32602 and err["data"] == {"param": "epoch"}, method
        assert "this node keeps the current state only (epoch 0)" in err["message"]


async def test_bad_values_name_the_parameter(rpc: Any) -> None:
    cases = [
        (("flk_get_protocol_params", "NoSuchParam"), "protocol_params", "unknown param 'NoSuchParam' (params: "),
        (("flk_get_staked", "zz"), "node_id", "node_id: "),
        (("flk_get_account_info", "12"), "address", "address: "),
        (("flk_get_txn_receipt", "00"), "hash", "hash: expected 32 bytes, got 1"),
        (("flk_get_committee_members", 9), "epoch", "epoch 9 has no committee (the current epoch is 0)"),
        (("flk_get_blocks", "1"), "start", "param 'start' must be an integer, got the string \"1\""),
        (("flk_get_flk_balance",), "address", "missing param 'address' (flk_get_flk_balance takes address, epoch?)"),
    ]
    for (method, *params), param, message in cases:
        err = (await rpc(method, *params))["error"]
        assert err["code"] == -32602 and err["data"] == {"param": param}, (method, err)
        assert message in err["message"], (method, err)
