"""Committed blocks over broadcast, on real state, consensus and broadcast over the simulated pool (MockClock, seeded).

Four committee members and two edge nodes; the second edge node starts late. Members publish each committed block
with its proof on the consensus topic; edge nodes verify and execute them, and fall back to the sync scope for the
blocks they missed. A forged commit proof is rejected everywhere and changes nothing. Invariants only; the seed is
in every assertion message."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.broadcast import Broadcast, Topic
from lightning.broadcast.config import BroadcastConfig
from lightning.chain import Follower, Mempool, State
from lightning.chain.config import StateConfig
from lightning.chain.forward import decode_block_record
from lightning.clock import TrioWallClock
from lightning.consensus.config import ConsensusConfig
from lightning.consensus.safety import MemorySafetyStore
from lightning.consensus.service import Consensus
from lightning.crypto import Domain
from lightning.home import Keys
from lightning.ids import NodeId
from lightning.net.config import TopologyConfig
from lightning.net.sim import SimNetwork, open_sim
from lightning.net.topology import GenesisNodes, Topology
from lightning.state.block import Block, CommitProof
from lightning.sync import BlockGossip, PoolBlockSource, PoolForwarder, SyncServer, TxServer, encode_block_message
from lightning.testing.devchain import DevChain, derive_key

GENESIS_MS = 1_700_000_000_000


@dataclass
class _Node:
    state: State
    mempool: Mempool
    gossip: BlockGossip
    broadcast: Broadcast


async def _start_node(
    nursery: trio.Nursery,
    net: SimNetwork,
    chain: DevChain,
    keys: Keys,
    path: Path,
) -> _Node:
    config = StateConfig()
    clock = TrioWallClock(GENESIS_MS)
    nid = keys.node.public.raw
    netpool = net.pool(keys.node)
    await nursery.start(netpool.run)
    state = State(config, path / "state", chain.genesis, inline=True)
    await nursery.start(state.run)
    members = lambda: state.committee().members  # noqa: E731
    mempool = Mempool(state, config, node_id=nid, ordering_nodes=members, forwarder=PoolForwarder(netpool))
    await nursery.start(mempool.run)
    SyncServer(netpool, state)
    TxServer(netpool, mempool)
    known = GenesisNodes.from_genesis(chain.genesis)
    epoch = lambda: state.epoch() if state.running else 0  # noqa: E731
    topology = Topology(TopologyConfig(), NodeId.of(keys.node), known, epoch=epoch)
    await nursery.start(topology.run)
    broadcast = Broadcast(
        BroadcastConfig(),
        netpool,
        keys.node,
        chain_id=chain.genesis.chain_id,
        known=known,
        topology=topology,
        wall_clock=clock,
        path=path / "broadcast",
        epoch=epoch,
        inline=True,
    )
    await nursery.start(broadcast.run)
    gossip = BlockGossip(state, broadcast, node_id=nid)
    consensus = Consensus(
        state,
        mempool,
        netpool,
        keys,
        clock,
        MemorySafetyStore(),
        inline=True,
        config=ConsensusConfig(view_timeout_s=1.0, view_timeout_max_s=4.0, empty_block_s=0.5),
        on_decided=gossip.publish,  # as in lightning/node.py: own blocks are published before they execute
    )
    follower = Follower(
        state,
        PoolBlockSource(netpool, members),
        node_id=nid,
        clock=clock,
        orders_here=lambda: nid in state.committee().members,
        quorum_proofs_only=True,
        wait_turn=gossip.wait_turn,
    )
    await nursery.start(consensus.run)
    await nursery.start(gossip.run)
    await nursery.start(follower.run)
    return _Node(state, mempool, gossip, broadcast)


def _forged(chain: DevChain, node: _Node, seed: int) -> tuple[Block, CommitProof]:
    """The next block, proposed by member 0, 'committed' by signatures of keys that are not the committee's."""
    head = node.state.head()
    block = Block.build(
        head=head, proposer=chain.nodes[0].node_id, timestamp_ms=head.timestamp_ms + 1, txs=[], epoch=head.epoch
    )
    msg = CommitProof(block.hash(), block.height, block.epoch, 0, "quorum", ()).message(chain.genesis.chain_id)
    sigs = tuple((i, derive_key(seed, "forger", i).sign(Domain.STATEMENT, msg)) for i in range(3))
    return block, CommitProof(block.hash(), block.height, block.epoch, 0, "quorum", sigs)


async def _run(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    chain = DevChain.create(seed=seed, nodes=6, committee=4, accounts=6, genesis_time_ms=GENESIS_MS)
    async with open_sim(seed, nodes=0) as (net, _), trio.open_nursery() as nursery:
        nodes = [await _start_node(nursery, net, chain, chain.nodes[i], tmp_path / f"n{i}") for i in range(5)]
        members, edge = nodes[:4], nodes[4]
        assert all(chain.nodes[i].node.public.raw in edge.state.committee().members for i in range(4))

        async def send(count: int, targets: list[_Node]) -> list[bytes]:
            hashes = []
            for _ in range(count):
                stx = chain.sign(chain.accounts[rng.randrange(6)], "transfer", to=b"\x33" * 32, amount=1)
                rng.choice(targets).mempool.submit(stx.raw)
                hashes.append(stx.hash)
                await trio.sleep(rng.uniform(0, 0.05))
            return hashes

        async def all_executed(hashes: list[bytes], on: list[_Node]) -> None:
            for n in on:
                for h in hashes:
                    assert await n.state.wait_receipt(h, 120.0) is not None, f"seed {seed}: {h.hex()} not executed"

        first = await send(10, nodes)
        await all_executed(first, nodes)
        assert edge.gossip.statistics().applied > 0, f"seed {seed}: the edge node got no block over broadcast"
        assert sum(m.gossip.statistics().published for m in members) > 0, f"seed {seed}"
        assert all(m.gossip.statistics().applied == 0 for m in members), f"seed {seed}: members order, not follow"

        # A forged proof from a known node: every receiver rejects it; the edge's chain is unchanged.
        forged, proof = _forged(chain, members[0], seed)
        await members[0].broadcast.send(Topic.CONSENSUS, encode_block_message(forged, proof))
        while edge.gossip.statistics().rejected == 0:
            await edge.state.wait_head_change(edge.state.head().height)  # blocks keep coming (empty ones too)

        # A late edge node: 20+ blocks behind, it catches up over the sync scope, then follows over broadcast.
        while members[0].state.head().height < 20:
            await members[0].state.wait_head_change(members[0].state.head().height)
        late = await _start_node(nursery, net, chain, chain.nodes[5], tmp_path / "n5")
        second = await send(10, [*nodes, late])
        await all_executed(second, [*nodes, late])
        applied_before = late.gossip.statistics().applied
        target = late.state.head().height + 5
        for n in [*nodes, late]:
            await n.state.wait_head_change(target)
        assert late.gossip.statistics().applied > applied_before, f"seed {seed}: late node not following broadcast"

        everyone = [*nodes, late]
        for height in range(1, target + 1):
            records = [n.state.store.block_record(height) for n in everyone]
            assert all(r is not None for r in records), f"seed {seed}: height {height} missing"
            hashes_at = {decode_block_record(r)[0].hash() for r in records if r is not None}
            assert len(hashes_at) == 1, f"seed {seed}: different blocks at height {height}"
        at_forged = edge.state.store.block_record(forged.height)
        assert at_forged is not None and decode_block_record(at_forged)[0].hash() != forged.hash(), f"seed {seed}"
        assert all(m.gossip.statistics().rejected > 0 for m in members[1:]), f"seed {seed}: members judge too"
        # Each member published its own blocks once (handed over when decided; not again when executed).
        for m in members:
            own = sum(
                1
                for height in range(1, m.state.head().height + 1)
                if decode_block_record(m.state.store.block_record(height) or b"")[0].proposer == m.gossip.node_id
            )
            assert 0 < m.gossip.statistics().published <= own, f"seed {seed}: {m.gossip.statistics()} of {own}"
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_edge_nodes_follow_committed_blocks_over_broadcast(tmp_path: Path, seed: int) -> None:
    trio.run(_run, tmp_path, seed, clock=trio.testing.MockClock(autojump_threshold=0))
