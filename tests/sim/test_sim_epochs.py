"""Roles follow the current epoch (issue 16, item 6), in the whole-node simulation: epoch changes under the BFT
consensus hand the committee to other members, and a committee that shrinks to one member is ordered by the
single-node sequencer and grows back to the consensus — with crashes and partitions on the way. Every node keeps the
simulation's invariants (one block per height, one state root, nothing lost across a restart)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from lightning.ids import NodeId
from lightning.node import Node
from lightning.sim.cluster import SimCluster, open_cluster

EPOCH_MS = 20_000


def _live(cluster: SimCluster) -> list[Node]:
    return [m.node for m in cluster.members if m.node is not None]


async def _wait(cluster: SimCluster, done: object, what: str, limit_s: float = 600.0) -> None:
    """Poll (simulated time) until ``done()`` holds; fail naming ``what`` and the seed."""
    with trio.move_on_after(limit_s):
        while not done():  # type: ignore[operator]
            assert cluster.violation is None, f"seed {cluster.seed}: {cluster.violation}"
            await trio.sleep(0.5)
        return
    raise AssertionError(
        f"seed {cluster.seed}: {what} within {limit_s:g} simulated seconds; heights {cluster.heights()}"
    )


def _epoch(node: Node) -> int:
    return node.state.epoch()


async def _committed_everywhere(cluster: SimCluster, sender_index: int, via: Node) -> None:
    """A transfer sent to ``via`` (through its mempool, as its RPC would) is executed by every running node."""
    key = cluster.chain.accounts[sender_index]
    to = cluster.chain.accounts[(sender_index + 1) % len(cluster.chain.accounts)].public.raw
    sender = key.public.raw
    nonce = via.mempool.next_nonce(sender)
    stx = cluster.chain.sign(key, "transfer", nonce=nonce, to=to, amount=1)
    via.mempool.submit(stx.raw)
    await _wait(
        cluster,
        lambda: all(n.state.account(sender).nonce >= nonce for n in _live(cluster)),
        f"transfer {nonce} from account {sender_index} committed on every node",
    )


def _check_roles(cluster: SimCluster) -> None:
    """Each running node's roles are the current epoch's: members of a committee of several run a consensus core for
    that epoch, everyone else runs none; only a one-member committee's member sequences."""
    for node in _live(cluster):
        committee = node.state.committee().members
        member = node.keys.node_id in committee
        assert node.in_committee == member and node.status().committee == member
        core = node.consensus.core
        if member and len(committee) > 1:
            assert core is not None and core.epoch == _epoch(node), f"seed {cluster.seed}: member without a core"
        else:
            assert core is None, f"seed {cluster.seed}: a core outside a committee of several"
        assert node.sequencer.is_leader() == (member and len(committee) == 1)


@pytest.mark.parametrize("seed", range(2))
async def test_epoch_changes_move_the_committee_to_other_members_through_crashes_and_partitions(
    tmp_path: Path, autojump_clock: object, seed: int
) -> None:
    async with open_cluster(tmp_path, seed=seed, nodes=6, committee=4, epoch_time_ms=EPOCH_MS) as cluster:
        first = cluster.members[0].node
        assert first is not None
        committees: list[tuple[NodeId, ...]] = [tuple(first.state.committee(0).members)]
        await cluster.wait_height(3)
        # a member crashes during epoch 0; a non-member is cut off for a while
        victim = next(m.index for m in cluster.members if m.node_id in committees[0])
        loner = next(m.index for m in cluster.members if m.node_id not in committees[0])
        await cluster.crash(victim)
        cluster.partition([loner])
        others = [m for m in cluster.members if m.index not in (victim, loner)]
        await _wait(cluster, lambda: min(_epoch(m.node) for m in others if m.node) >= 1, "epoch 1 reached")
        cluster.heal()
        await cluster.start(victim)
        first = others[0].node  # a node that ran throughout
        assert first is not None
        for target in (2, 3):
            await _wait(cluster, lambda t=target: min(_epoch(n) for n in _live(cluster)) >= t, f"epoch {target}")
        for epoch in (1, 2, 3):
            committees.append(tuple(first.state.committee(epoch).members))
        assert len(set(committees)) > 1, f"seed {seed}: the committee never changed: {committees}"
        # every live node holds the same committees, and runs the roles of the current one
        for node in _live(cluster):
            assert [tuple(node.state.committee(e).members) for e in range(4)] == committees
        # let the restarted node settle into its role, then check roles and that edge nodes' transactions commit
        await cluster.wait_height(max(cluster.heights().values()) + 2)
        _check_roles(cluster)
        edge = next(n for n in _live(cluster) if not n.in_committee)
        await _committed_everywhere(cluster, 0, edge)
        assert cluster.violation is None, f"seed {seed}: {cluster.violation}"
        await cluster.stop_all()


async def test_a_committee_shrunk_to_one_member_is_sequenced_then_grows_back_to_the_consensus(
    tmp_path: Path, autojump_clock: object
) -> None:
    async with open_cluster(tmp_path, seed=11, nodes=5, committee=4, epoch_time_ms=EPOCH_MS) as cluster:
        chain = cluster.chain
        gov = chain.governance
        first = cluster.members[0].node
        assert first is not None
        await cluster.wait_height(2)

        async def set_committee_size(size: int, via: Node) -> None:
            nonce = via.mempool.next_nonce(gov.public.raw)
            stx = chain.sign(gov, "change_protocol_param", nonce=nonce, name="committee_size", value=size)
            via.mempool.submit(stx.raw)
            await _wait(
                cluster, lambda: all(n.state.account(gov.public.raw).nonce >= nonce for n in _live(cluster)), "param"
            )
            with first.state.view() as view:
                assert view.param("committee_size") == size

        await set_committee_size(1, first)
        start = _epoch(first)
        await _wait(cluster, lambda: min(_epoch(n) for n in _live(cluster)) > start, "the epoch after shrinking")
        single = first.state.committee().members
        assert len(single) == 1
        await cluster.wait_height(first.state.head().height + 1)
        _check_roles(cluster)
        edge = next(n for n in _live(cluster) if not n.in_committee)
        await _committed_everywhere(cluster, 1, edge)
        # blocks of the one-member epoch carry the sequencer's single signature, from that member
        head = first.state.head()
        block, proof, _ = first.state.store.block(head.height)  # type: ignore[misc]
        assert proof.kind == "sequencer" and block.proposer == single[0]

        await set_committee_size(3, edge)
        start = _epoch(first)
        await _wait(cluster, lambda: min(_epoch(n) for n in _live(cluster)) > start, "the epoch after growing")
        assert len(first.state.committee().members) == 3
        await cluster.wait_height(first.state.head().height + 2)
        _check_roles(cluster)
        edge = next(n for n in _live(cluster) if not n.in_committee)
        await _committed_everywhere(cluster, 2, edge)
        head = first.state.head()
        block, proof, _ = first.state.store.block(head.height)  # type: ignore[misc]
        assert proof.kind == "quorum"
        assert cluster.violation is None, f"{cluster.violation}"
        await cluster.stop_all()
