"""The consensus service (trio adapter) and signed statements, on real state over the simulated pool: a member's
message signed for another chain is refused, logged with the member named, and the member penalised; two different
valid votes of one member in one view are kept as evidence, logged and counted in
``lightning_consensus_equivocations_total``. Only member 0 runs its service; the test speaks for the others."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from lightning.chain import Mempool, State
from lightning.chain.config import StateConfig
from lightning.clock import TrioWallClock
from lightning.consensus.config import ConsensusConfig
from lightning.consensus.messages import Vote
from lightning.consensus.safety import MemorySafetyStore
from lightning.consensus.service import Consensus
from lightning.net import Scope
from lightning.net.sim import open_sim
from lightning.sync import PoolForwarder
from lightning.testing.devchain import DevChain

GENESIS_MS = 1_700_000_000_000


async def _wait_until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(60):
        while not condition():  # noqa: ASYNC110 (the service has no event for what it logged and counted)
            await trio.sleep(0.01)


async def test_bad_statements_are_penalised_and_equivocations_kept(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain = DevChain.create(seed=3, nodes=4, committee=4, accounts=2, genesis_time_ms=GENESIS_MS)
    chain_id = chain.genesis.chain_id
    registry = CollectorRegistry()
    async with open_sim(3, nodes=0) as (net, _), trio.open_nursery() as nursery:
        pools = [net.pool(keys.node) for keys in chain.nodes]
        for pool in pools:
            await nursery.start(pool.run)
        state = State(StateConfig(), tmp_path / "n0", chain.genesis, inline=True)
        await nursery.start(state.run)
        members = state.committee().members
        me = chain.nodes[0].node_id
        mempool = Mempool(
            state, StateConfig(), node_id=me, ordering_nodes=lambda: members, forwarder=PoolForwarder(pools[0])
        )
        await nursery.start(mempool.run)
        consensus = Consensus(
            state,
            mempool,
            pools[0],
            chain.nodes[0],
            TrioWallClock(GENESIS_MS),
            MemorySafetyStore(),
            inline=True,
            registry=registry,
            config=ConsensusConfig(view_timeout_s=5.0, view_timeout_max_s=5.0, empty_block_s=0.5),
        )
        await nursery.start(consensus.run)
        await _wait_until(lambda: consensus.core is not None)
        core = consensus.core
        assert core is not None and core.chain_id == chain_id
        index = {bytes(nid): i for i, nid in enumerate(members)}
        liar = next(k for k in chain.nodes if index[k.node.public.raw] == 2)
        liar_pool = pools[chain.nodes.index(liar)]

        def sample(name: str, labels: dict[str, str] | None = None) -> float:
            return registry.get_sample_value(name, labels or {}) or 0.0

        def penalties() -> float:
            value = pools[0].metrics.registry.get_sample_value(
                "lightning_net_penalties_total", {"reason": "consensus invalid message"}
            )
            return value or 0.0

        # a vote signed for another chain: refused, the member named in the log, its sender penalised
        foreign = Vote.sign(liar.consensus, chain_id + 1, 0, core.view, 1, b"\x0a" * 32)
        await liar_pool.send(me, Scope.CONSENSUS, foreign.to_wire(0))
        await _wait_until(lambda: penalties() == 1)
        assert sample("lightning_consensus_rejected_messages_total") == 1
        assert any("member 2" in r.getMessage() and "signature" in r.getMessage() for r in caplog.records)
        assert core.evidence() == ()

        # two different votes of member 2 in one view, both validly signed: evidence, a warning, the counter
        view = core.view
        for block in (b"\x0a" * 32, b"\x0b" * 32):
            vote = Vote.sign(liar.consensus, chain_id, 0, view, 1, block)
            await liar_pool.send(me, Scope.CONSENSUS, vote.to_wire(0))
        await _wait_until(lambda: sample("lightning_consensus_equivocations_total") == 1)
        (evidence,) = core.evidence()
        evidence.verify(chain_id=chain_id)
        assert evidence.key == liar.consensus.public.raw and evidence.first.statement.seq == view
        assert any("equivocated" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
        assert penalties() == 1  # evidence is not a malformed message: the slashing path deals with it
        nursery.cancel_scope.cancel()
