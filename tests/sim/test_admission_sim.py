"""Peer admission in the pool, on the simulated network, from a real state: every transition.

An unknown authenticated node gets transactions and sync reads only, rate-limited and capped in number; a staked node,
the allow-list and the committee get their scopes; at an epoch change the pool closes the connections of peers that
lost a role, and they reconnect at the level they hold now. The server's admission is ``StateAdmission`` over a
``State`` the test commits blocks to; its epoch hook calls ``PeerPool.recheck`` as ``node.py`` wires it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from lightning.amounts import UNIT
from lightning.chain import State
from lightning.chain.admission import StateAdmission
from lightning.chain.config import StateConfig
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net import TooManyRequests, Unauthorized
from lightning.net.config import NetConfig
from lightning.net.sim import SimNetwork, SimPool
from lightning.net.wire import Scope
from lightning.state.tx import SignedTransaction
from lightning.testing.devchain import DevChain, derive_key

FLK = UNIT
# Nodes 0 and 1 form the committee; 2 and 3 are staked edge nodes. Node 0 runs the pool under test.
CHAIN = DevChain.create(nodes=4, committee=2, accounts=1, balance="100000 FLK")
N = [NodeId.of(k.node) for k in CHAIN.nodes]
ALLOWED = derive_key(8, "allowed")
BURST = 5
# A rate so small that no token comes back during a test: what passes is exactly the burst.
CONFIG = NetConfig(limited_rate_per_s=1e-6, limited_burst=BURST, max_limited_peers=2)
NON_CONSENSUS = [Scope.BROADCAST, Scope.BLOCKS, Scope.SYNC, Scope.TXS]


@pytest.fixture(params=[1, 2], ids=lambda s: f"seed={s}")
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)


async def echo(peer: NodeId, msg: Any) -> Any:
    return msg


class Cluster:
    def __init__(self, net: SimNetwork, state: State, server: SimPool, nursery: trio.Nursery) -> None:
        self.net, self.state, self.server, self._nursery = net, state, server, nursery
        self.inbox: list[tuple[NodeId, Any]] = []

    async def client(self, key: SigningKey) -> SimPool:
        pool = self.net.pool(key)
        await self._nursery.start(pool.run)
        return pool

    async def commit(self, txs: list[SignedTransaction], ts: int | None = None) -> None:
        committee = self.state.committee()
        proposer = next(i for i, k in enumerate(CHAIN.nodes) if k.node_id == committee.members[0])
        block, proof = CHAIN.block(self.state.head(), txs, timestamp_ms=ts, proposer=proposer)
        outcome = await self.state.commit(block, proof)
        assert all(r.status == "ok" for r in outcome.receipts), [r.reason for r in outcome.receipts]

    async def end_epoch(self) -> None:
        info, committee = self.state.epoch_info(), self.state.committee()
        assert info is not None
        voters = [k for k in CHAIN.nodes if k.node_id in committee.members]
        await self.commit([CHAIN.sign(k.node, "change_epoch", epoch=self.state.epoch()) for k in voters], info.end_ms)

    def metric(self, name: str, **labels: str) -> float:
        return self.server.metrics.registry.get_sample_value(f"lightning_net_{name}", labels) or 0.0

    async def allowed_scopes(self, pool: SimPool) -> list[Scope]:
        out = []
        for scope in Scope:
            try:
                assert await pool.request(self.server.node_id, scope, scope.name) == scope.name
                out.append(scope)
            except Unauthorized:
                pass
        return out


async def wait_until(condition: Callable[[], bool]) -> None:
    """Wait (in simulated time) for ``condition``; fail if a simulated minute passes without it."""
    with trio.fail_after(60):
        while not condition():  # noqa: ASYNC110 (the pool has no event for these conditions)
            await trio.sleep(0.01)


@pytest.fixture
async def cluster(
    seed: int, tmp_path: Path, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> AsyncIterator[Cluster]:
    print(f"seed={seed}")
    CHAIN.nonces.clear()  # a fresh state per test
    net = SimNetwork(seed, config=CONFIG)
    await nursery.start(net.run)
    state = State(StateConfig(), tmp_path / "state", CHAIN.genesis, inline=True)
    await nursery.start(state.run)
    server = net.pool(CHAIN.nodes[0].node, admission=StateAdmission(state, CHAIN.genesis, allow=[ALLOWED.public.hex]))
    state.epoch_hooks.add("admission", lambda change: server.recheck())  # as node.py wires it
    for scope in Scope:
        server.on_request(scope, echo)
    c = Cluster(net, state, server, nursery)

    async def collect(peer: NodeId, msg: Any) -> None:
        c.inbox.append((peer, msg))

    server.on_message(Scope.TXS, collect)
    await nursery.start(server.run)
    yield c


async def test_an_unknown_node_gets_transactions_and_sync_reads_within_its_rate(cluster: Cluster) -> None:
    stranger = await cluster.client(derive_key(8, "stranger"))
    # five requests: the two limited scopes answered, the other three refused as unauthorized
    assert await cluster.allowed_scopes(stranger) == [Scope.SYNC, Scope.TXS]
    assert cluster.metric("limited_peers") == 1
    # the bucket is empty now: requests, streams and messages of every scope are refused
    with pytest.raises(TooManyRequests, match="rate limit"):
        await stranger.request(cluster.server.node_id, Scope.TXS, "one more")
    with pytest.raises(TooManyRequests, match="rate limit"):
        async with stranger.open_stream(cluster.server.node_id, Scope.SYNC, "a stream"):
            pass
    assert cluster.metric("rate_limited_total", scope="txs") == cluster.metric("rate_limited_total", scope="sync") == 1


async def test_a_flood_from_an_unknown_key_is_cut_to_its_rate_and_logged_once(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lightning.net.pool")
    key = derive_key(8, "flooder")
    flooder = await cluster.client(key)
    for i in range(200):
        await flooder.send(cluster.server.node_id, Scope.TXS, i)
    await flooder.send(cluster.server.node_id, Scope.BROADCAST, "not its scope")
    await wait_until(
        lambda: (
            cluster.metric("rate_limited_total", scope="txs") + cluster.metric("rate_limited_total", scope="broadcast")
            == 201 - BURST
        )
    )
    assert cluster.inbox == [(NodeId.of(key), i) for i in range(BURST)]  # in order, then nothing
    lines = [r for r in caplog.records if "over its rate" in r.getMessage()]
    assert len(lines) == 1 and NodeId.of(key).short() in lines[0].getMessage()
    # the pool is fine: a staked node is served as before
    staked = await cluster.client(CHAIN.nodes[2].node)
    assert await cluster.allowed_scopes(staked) == NON_CONSENSUS


async def test_unstaked_peers_are_capped_in_number(cluster: Cluster) -> None:
    first, second, third = [await cluster.client(derive_key(8, "capped", i)) for i in range(3)]
    for pool in (first, second):
        assert await pool.request(cluster.server.node_id, Scope.TXS, "hi") == "hi"
    with pytest.raises(Unauthorized, match="unstaked peers are connected already"):
        await third.request(cluster.server.node_id, Scope.TXS, "hi")
    # staked nodes are not counted, nor refused
    staked = await cluster.client(CHAIN.nodes[3].node)
    assert await staked.request(cluster.server.node_id, Scope.BLOCKS, "hi") == "hi"


async def test_staked_allow_listed_and_committee_nodes_get_their_scopes(cluster: Cluster) -> None:
    staked, allowed, member = [await cluster.client(k) for k in (CHAIN.nodes[2].node, ALLOWED, CHAIN.nodes[1].node)]
    assert await cluster.allowed_scopes(staked) == NON_CONSENSUS
    assert await cluster.allowed_scopes(allowed) == NON_CONSENSUS
    assert await cluster.allowed_scopes(member) == list(Scope)
    for i in range(4 * BURST):  # not rate-limited
        assert await staked.request(cluster.server.node_id, Scope.TXS, i) == i
    # a node that stakes min_stake gets full scopes at the next block, on the connection it has
    newcomer_key = derive_key(8, "newcomer")
    newcomer = await cluster.client(newcomer_key)
    assert await newcomer.request(cluster.server.node_id, Scope.SYNC, "sync first") == "sync first"
    owner = CHAIN.accounts[0]
    reg = CHAIN.registration(newcomer_key, derive_key(8, "newcomer-consensus"), owner)
    await cluster.commit(
        [CHAIN.sign(owner, "stake", node=newcomer_key.public.raw, amount=1000 * FLK, registration=reg)]
    )
    assert await newcomer.request(cluster.server.node_id, Scope.BLOCKS, "blocks") == "blocks"


async def test_roles_lost_at_an_epoch_change_close_the_connection(cluster: Cluster) -> None:
    server = cluster.server.node_id
    leaver, unstaker, joiner = [await cluster.client(CHAIN.nodes[i].node) for i in (1, 2, 3)]
    assert await cluster.allowed_scopes(leaver) == list(Scope)
    assert await cluster.allowed_scopes(unstaker) == NON_CONSENSUS
    assert await cluster.allowed_scopes(joiner) == NON_CONSENSUS

    # node 1 opts out of the committee; node 2 unstakes below min_stake: at once, it may only sync and submit
    await cluster.commit(
        [
            CHAIN.sign(CHAIN.nodes[1].account, "opt_out", node=N[1]),
            CHAIN.sign(CHAIN.nodes[2].account, "unstake", node=N[2], amount=1 * FLK),
        ]
    )
    with pytest.raises(Unauthorized):
        await unstaker.request(server, Scope.BLOCKS, "blocks")
    assert await leaver.request(server, Scope.CONSENSUS, "still a member") == "still a member"
    assert set(cluster.server.peers()) == {N[1], N[2], N[3]}

    await cluster.end_epoch()  # the committee of epoch 1: nodes 0 and 3, the only eligible ones
    assert set(cluster.state.committee().members) == {N[0], N[3]}
    assert set(cluster.server.peers()) == {N[3]}  # closed by the epoch hook; node 3 only gained
    assert cluster.metric("roles_lost_total") == 2
    await wait_until(lambda: server not in leaver.peers() and server not in unstaker.peers())

    # they reconnect and get what they hold now
    assert await cluster.allowed_scopes(leaver) == NON_CONSENSUS
    assert await unstaker.request(server, Scope.SYNC, "sync") == "sync"  # its bucket: 2 of 5 tokens spent
    for scope in (Scope.BLOCKS, Scope.BROADCAST):
        with pytest.raises(Unauthorized):
            await unstaker.request(server, scope, "no")
    assert await cluster.allowed_scopes(joiner) == list(Scope)
    assert cluster.server.recheck() == 0  # nothing changed since
