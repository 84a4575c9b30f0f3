"""Two nodes in one process under a mock clock: sequencer, follower, forwarding, mempools and the epoch driver.

Clients submit transfers to either node; the non-ordering node forwards them; both nodes execute every block and
must agree on every head and every row. Epochs are short, so the epoch driver changes them; with the seeds of the
default run the committee beacon hands the sequencer role to the other node mid-run. Invariants only (trio's
scheduler is not deterministic); the seed is printed on failure.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.amounts import UNIT
from lightning.chain import EpochDriver, Follower, Mempool, Sequencer, State
from lightning.chain.config import StateConfig
from lightning.chain.mempool_core import TxRejected
from lightning.clock import TrioWallClock
from lightning.state.records import TABLES
from lightning.state.store import StateStore
from lightning.state.tx import sign_transaction
from lightning.testing.chain import LocalBlockSource, LocalForwarder
from lightning.testing.devchain import DevChain

EPOCH_MS = 20_000
GENESIS_MS = 1_700_000_000_000


async def _simulate(tmp_path: Path, seed: int, clients: int, transfers: int, *, handoff: bool = True) -> None:
    rng = random.Random(seed)
    chain = DevChain.create(
        seed=seed, nodes=2, committee=1, accounts=clients, epoch_time_ms=EPOCH_MS, genesis_time_ms=GENESIS_MS
    )
    config = StateConfig(block_time_s=0.3)
    clock = TrioWallClock(GENESIS_MS)
    states: dict[bytes, State] = {}
    pools: dict[bytes, Mempool] = {}
    submitters: dict[bytes, Callable[[bytes], object]] = {}
    components = []
    for i, keys in enumerate(chain.nodes):
        nid = keys.node.public.raw
        state = State(config, tmp_path / f"n{i}", chain.genesis, inline=True)
        pool = Mempool(
            state,
            config,
            node_id=nid,
            ordering_nodes=lambda s=state: (s.leader(),),
            forwarder=LocalForwarder(submitters),
        )
        states[nid], pools[nid], submitters[nid] = state, pool, pool.submit
        components.append(
            (
                state,
                pool,
                Sequencer(state, pool, keys, clock, block_time_s=config.block_time_s),
                Follower(state, LocalBlockSource(states), node_id=nid, clock=clock),
                EpochDriver(state, pool, keys.node, clock),
            )
        )

    node_ids = list(states)
    receipts = []

    async def client(key_index: int) -> None:
        key = chain.accounts[key_index]
        for _ in range(transfers):
            await trio.sleep(rng.uniform(0, 5))
            nid = rng.choice(node_ids)
            pool, state = pools[nid], states[nid]
            to = rng.choice(chain.accounts).public.raw
            stx = sign_transaction(
                key,
                chain_id=chain.genesis.chain_id,
                nonce=pool.next_nonce(key.public.raw),
                method="transfer",
                to=to,
                amount=rng.randint(1, 50) * UNIT,
            )
            try:
                pool.submit(stx.raw)
            except TxRejected as exc:
                raise AssertionError(f"seed {seed}: rejected {exc.code}: {exc}") from None
            receipt = await state.wait_receipt(stx.hash, 60)
            assert receipt is not None, f"seed {seed}: no receipt for a transfer within 60 s"
            receipts.append(receipt)

    async with trio.open_nursery() as nursery:
        for parts in components:
            for part in parts:
                await nursery.start(part.run)
        async with trio.open_nursery() as clients_nursery:
            for i in range(clients):
                clients_nursery.start_soon(client, i)
        await trio.sleep(3 * EPOCH_MS / 1000)  # let the epoch driver change epochs a few times
        target = max(s.head().height for s in states.values())
        for s in states.values():
            with trio.fail_after(60):
                await s.wait_head_change(target - 1)
        any_state = next(iter(states.values()))
        proposers = {any_state.store.block(h)[0].proposer for h in range(1, target + 1)}  # type: ignore[index]
        nursery.cancel_scope.cancel()

    assert len(receipts) == clients * transfers
    assert all(r.status == "ok" for r in receipts), [r.reason for r in receipts if r.status != "ok"]
    heads = {s.head() for s in states.values()}
    assert len(heads) == 1, f"seed {seed}: nodes disagree: {heads}"
    (head,) = heads
    assert head.epoch >= 3, f"seed {seed}: epochs did not advance ({head.epoch})"
    # The committee sequence is a function of the seed (beacon reveals derive from the keys): with these seeds the
    # sequencer role moves to the other node at some epoch change, so the handoff is exercised.
    assert len(proposers) == 2 or not handoff, f"seed {seed}: only one node ever ordered"


async def _check_rows_equal(tmp_path: Path) -> None:
    a, b = StateStore(tmp_path / "n0", map_size=1 << 30), StateStore(tmp_path / "n1", map_size=1 << 30)
    with a, b, a.view() as va, b.view() as vb:
        for t in TABLES:
            assert list(va.kv.scan(t)) == list(vb.kv.scan(t)), t


@pytest.mark.parametrize("seed", [1, 3])  # seeds whose committee sequence hands the sequencer over (see above)
async def test_two_nodes_agree(tmp_path: Path, autojump_clock: trio.testing.MockClock, seed: int) -> None:
    try:
        await _simulate(tmp_path, seed, clients=4, transfers=5)
        await _check_rows_equal(tmp_path)
    except BaseException:
        print(f"state simulation failed with seed {seed}")
        raise


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 20))
async def test_two_nodes_agree_long(tmp_path: Path, autojump_clock: trio.testing.MockClock, seed: int) -> None:
    try:
        await _simulate(tmp_path, seed, clients=10, transfers=20, handoff=False)
    except BaseException:
        print(f"state simulation failed with seed {seed}")
        raise
