"""Epoch-change hooks fire once per change, in order, after the block is committed; the node's wiring — the registry's
node set, then the topology recomputed from it — picks up a node that registered and staked during the epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.amounts import UNIT
from lightning.chain import EpochChange, RegistryNodes, State
from lightning.chain.config import StateConfig
from lightning.ids import NodeId
from lightning.net.config import TopologyConfig
from lightning.net.topology import Topology
from lightning.state.tx import SignedTransaction
from lightning.testing.devchain import DevChain, derive_key

FLK = UNIT


async def _commit(chain: DevChain, state: State, txs: list[SignedTransaction], ts: int | None = None) -> None:
    with state.view() as v:
        committee = v.committee(v.epoch)
    assert committee is not None
    proposer = next(i for i, k in enumerate(chain.nodes) if k.node.public.raw == committee.members[0])
    block, proof = chain.block(state.head(), txs, timestamp_ms=ts, proposer=proposer)
    outcome = await state.commit(block, proof)
    assert all(r.status == "ok" for r in outcome.receipts), [r.reason for r in outcome.receipts]


async def _end_epoch(chain: DevChain, state: State) -> None:
    info, committee = state.epoch_info(), state.committee()
    assert info is not None
    voters = [k for k in chain.nodes if k.node.public.raw in committee.members][:3]
    await _commit(chain, state, [chain.sign(k.node, "change_epoch", epoch=state.epoch()) for k in voters], info.end_ms)


async def _run(tmp_path: Path) -> None:
    chain = DevChain.create(nodes=5, committee=4, accounts=2, epoch_time_ms=60_000, balance="2000 FLK")  # + fees
    state = State(StateConfig(), tmp_path / "state", chain.genesis, inline=True)
    me = NodeId.of(chain.nodes[0].node)
    known = RegistryNodes(state, chain.genesis)
    topology = Topology(TopologyConfig(), me, known, epoch=lambda: state.epoch() if state.running else 0)
    seen: list[tuple[str, EpochChange]] = []
    state.epoch_hooks.add("first", lambda c: seen.append(("first", c)))
    state.epoch_hooks.add("topology", lambda c: (known.refresh(), topology.recompute(c.epoch)))
    state.epoch_hooks.add("last", lambda c: seen.append(("last", c)))
    with pytest.raises(ValueError):
        state.epoch_hooks.add("first", lambda c: None)

    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        await nursery.start(topology.run)
        genesis_nodes = {NodeId.of(k.node) for k in chain.nodes}
        assert known.nodes() == genesis_nodes and topology.peers() == genesis_nodes - {me}

        # A new node registers and stakes enough during epoch 0: not known before the epoch changes.
        newcomer = derive_key(3, "newcomer")
        reg = chain.registration(newcomer, derive_key(3, "newcomer-consensus"), chain.accounts[0], host="10.0.0.9")
        stake = chain.sign(chain.accounts[0], "stake", node=newcomer.public.raw, amount=1000 * FLK, registration=reg)
        await _commit(chain, state, [stake])
        await _commit(chain, state, [])
        assert seen == [] and NodeId(newcomer.public.raw) not in topology.peers()

        await _end_epoch(chain, state)
        height = state.head().height
        assert [name for name, _ in seen] == ["first", "last"]
        change = seen[0][1]
        assert change == EpochChange(0, 1, height, tuple(state.committee(1).members))
        assert NodeId(newcomer.public.raw) in known and NodeId(newcomer.public.raw) in topology.peers()
        assert topology.statistics().epoch == 1

        await _commit(chain, state, [])
        assert len(seen) == 2  # nothing more until the next change
        await _end_epoch(chain, state)
        assert [(n, c.previous, c.epoch) for n, c in seen[2:]] == [("first", 1, 2), ("last", 1, 2)]
        nursery.cancel_scope.cancel()


def test_epoch_hooks_fire_once_per_change_and_recompute_the_topology(tmp_path: Path) -> None:
    trio.run(_run, tmp_path, clock=trio.testing.MockClock(autojump_threshold=0))
