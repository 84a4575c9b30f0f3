"""The epoch driver does not resend a protocol transaction while it is still pending: each send spends one of the
node's free protocol transactions for the epoch (docs/fees.md), so a stalled chain must not multiply them."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from lightning.chain.component import State
from lightning.chain.config import StateConfig
from lightning.chain.mempool import Mempool
from lightning.chain.participant import RETRY_S, EpochDriver
from lightning.clock import TrioWallClock
from lightning.ids import NodeId
from lightning.testing.devchain import DevChain

GENESIS_MS = 1_700_000_000_000
EPOCH_MS = 60_000


async def _run(tmp_path: Path) -> None:
    chain = DevChain.create(nodes=1, committee=1, epoch_time_ms=EPOCH_MS, genesis_time_ms=GENESIS_MS)
    keys = chain.nodes[0]
    state = State(StateConfig(), tmp_path / "state", chain.genesis, inline=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        # nothing orders here: whatever the driver sends stays pending
        pool = Mempool(state, StateConfig(), node_id=keys.node_id, ordering_nodes=lambda: [NodeId(b"\x01" * 32)])
        clock = TrioWallClock(GENESIS_MS + EPOCH_MS + 1)  # past the planned end: the driver votes ChangeEpoch
        driver = EpochDriver(state, pool, keys.node, clock)
        sender = NodeId.of(keys.node)

        def pending_votes() -> int:
            return sum(1 for stx in pool.core.pending() if stx.tx.method == "change_epoch" and stx.sender == sender)

        driver.step()
        assert pending_votes() == 1
        await trio.sleep(3 * RETRY_S)
        driver.step()
        assert pending_votes() == 1  # still pending: not sent again
        # once it is gone (here: expired unordered), the driver sends it again
        pool.core.expire(trio.current_time() + pool.core.limits.ttl_s)
        assert pending_votes() == 0
        driver.step()
        assert pending_votes() == 1
        nursery.cancel_scope.cancel()


def test_a_pending_epoch_vote_is_not_sent_again(tmp_path: Path) -> None:
    trio.run(_run, tmp_path, clock=trio.testing.MockClock(autojump_threshold=0))
