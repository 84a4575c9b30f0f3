"""The consensus service (trio adapter) on real state over the simulated pool: four committee members and one edge
node, under a mock clock. Transfers sent to any node commit; one member is stopped and the rest continue; the edge
node follows over the sync scope; every node ends with the same head. Invariants only; the seed is printed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.chain import Follower, Mempool, State
from lightning.chain.config import StateConfig
from lightning.chain.forward import decode_block_record
from lightning.clock import TrioWallClock
from lightning.consensus.config import ConsensusConfig
from lightning.consensus.safety import MemorySafetyStore
from lightning.consensus.service import Consensus
from lightning.net.sim import open_sim
from lightning.sync import PoolBlockSource, PoolForwarder, SyncServer, TxServer
from lightning.testing.devchain import DevChain

GENESIS_MS = 1_700_000_000_000


async def _run(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    chain = DevChain.create(seed=seed, nodes=5, committee=4, accounts=6, genesis_time_ms=GENESIS_MS)
    config = StateConfig()
    clock = TrioWallClock(GENESIS_MS)
    async with open_sim(seed, nodes=0) as (net, _), trio.open_nursery() as nursery:
        states, pools, scopes = [], [], []
        for i, keys in enumerate(chain.nodes):
            nid = keys.node.public.raw
            netpool = net.pool(keys.node)
            await nursery.start(netpool.run)
            state = State(config, tmp_path / f"n{i}", chain.genesis, inline=True)
            await nursery.start(state.run)
            members = lambda s=state: s.committee().members  # noqa: E731
            mempool = Mempool(state, config, node_id=nid, ordering_nodes=members, forwarder=PoolForwarder(netpool))
            await nursery.start(mempool.run)
            SyncServer(netpool, state)
            TxServer(netpool, mempool)
            consensus = Consensus(
                state,
                mempool,
                netpool,
                keys,
                clock,
                MemorySafetyStore(),
                inline=True,
                config=ConsensusConfig(view_timeout_s=1.0, view_timeout_max_s=4.0, empty_block_s=0.5),
            )
            follower = Follower(
                state,
                PoolBlockSource(netpool, members),
                node_id=nid,
                clock=clock,
                orders_here=lambda s=state, n=nid: n in s.committee().members,
                quorum_proofs_only=True,
            )
            scope = trio.CancelScope()
            scopes.append(scope)

            async def member(c: Consensus = consensus, f: Follower = follower, sc: trio.CancelScope = scope) -> None:
                with sc:
                    async with trio.open_nursery() as inner:
                        await inner.start(c.run)
                        await inner.start(f.run)

            nursery.start_soon(member)
            states.append(state)
            pools.append(mempool)

        async def send(count: int, targets: list[int]) -> list[bytes]:
            hashes = []
            for _ in range(count):
                acct = rng.randrange(len(chain.accounts))
                stx = chain.sign(chain.accounts[acct], "transfer", to=b"\x33" * 32, amount=1)
                pools[rng.choice(targets)].submit(stx.raw)
                hashes.append(stx.hash)
                await trio.sleep(rng.uniform(0, 0.05))
            return hashes

        async def all_executed(hashes: list[bytes], nodes: list[int]) -> None:
            for i in nodes:
                for h in hashes:
                    assert await states[i].wait_receipt(h, 120.0) is not None, f"seed {seed}: node {i} lacks {h.hex()}"

        first = await send(12, [0, 1, 2, 3, 4])
        await all_executed(first, [0, 1, 2, 3, 4])
        scopes[3].cancel()  # member 3 stops: three of four still make a quorum
        second = await send(12, [0, 1, 2, 4])
        await all_executed(second, [0, 1, 2, 4])
        target = max(s.head().height for s in states[:3])
        for i in (0, 1, 2, 4):
            await states[i].wait_head_change(target - 1)
        heads = {states[i].store.block_record(target) is not None for i in (0, 1, 2, 4)}
        assert heads == {True}, f"seed {seed}"
        records = [states[i].store.block_record(target) for i in (0, 1, 2, 4)]
        blocks = {decode_block_record(r)[0].hash() for r in records if r is not None}
        assert len(blocks) == 1, f"seed {seed}: nodes hold different blocks at {target}"
        assert target >= 3 and states[4].head().height >= target - 1
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("seed", [1, 2])
def test_consensus_service_over_sim_pool(tmp_path: Path, seed: int) -> None:
    trio.run(_run, tmp_path, seed, clock=trio.testing.MockClock(autojump_threshold=0))
