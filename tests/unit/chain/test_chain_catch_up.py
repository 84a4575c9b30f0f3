"""The follower's catch-up status (``flk_get_node_status``'s ``syncing``, which ``lightning opt in`` waits for): blocks
come from a leader's real state through a scripted block source, the wall clock follows trio's mock clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
import trio.testing

from lightning.chain import Follower, State
from lightning.chain.config import StateConfig
from lightning.chain.follower import BATCH, CatchUpStatus
from lightning.clock import TrioWallClock
from lightning.ids import NodeId
from lightning.state.block import Block, CommitProof
from lightning.testing.devchain import DevChain

GENESIS_MS = 1_700_000_000_000
CHAIN = DevChain.create(nodes=2, committee=1, genesis_time_ms=GENESIS_MS)


class Replies:
    """A block source that answers each fetch with the next queued reply."""

    def __init__(self) -> None:
        self.queue: list[list[tuple[Block, CommitProof]]] = []

    async def fetch_blocks(
        self, node_id: bytes, start: int, max_blocks: int, wait_s: float
    ) -> list[tuple[Block, CommitProof]]:
        await trio.lowlevel.checkpoint()
        return self.queue.pop(0)


@asynccontextmanager
async def two_states(tmp_path: Path) -> AsyncIterator[tuple[State, State]]:
    """A leader's state (blocks are made on it) and the follower's, both running."""
    leader_state = State(StateConfig(), tmp_path / "leader", CHAIN.genesis, inline=True)
    state = State(StateConfig(), tmp_path / "follower", CHAIN.genesis, inline=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(leader_state.run)
        await nursery.start(state.run)
        yield leader_state, state
        nursery.cancel_scope.cancel()


async def _run(tmp_path: Path) -> None:
    async with two_states(tmp_path) as (leader_state, state):
        blocks = []
        for _ in range(BATCH + 6):  # 10 ms apart, from the genesis time on
            block, proof = CHAIN.block(leader_state.head(), [], timestamp_ms=leader_state.head().timestamp_ms + 10)
            await leader_state.commit(block, proof)
            blocks.append((block, proof))
        leader = NodeId.of(CHAIN.nodes[0].node)
        replies = Replies()
        clock = TrioWallClock(GENESIS_MS + 1000)  # one second after genesis: every block is recent
        follower = Follower(state, replies, node_id=NodeId.of(CHAIN.nodes[1].node), clock=clock)
        assert follower.catch_up() == CatchUpStatus(syncing=True, head_height=0, best_known_height=0)

        replies.queue.append(blocks[:BATCH])  # a full batch: the peer has more
        assert await follower.follow_once(leader, 0) == BATCH
        assert follower.catch_up() == CatchUpStatus(True, BATCH, BATCH + 1)
        replies.queue.append(blocks[BATCH:])  # the rest: less than a batch, and recent
        await follower.follow_once(leader, 0)
        assert follower.catch_up() == CatchUpStatus(False, BATCH + 6, BATCH + 6)

        # an hour without blocks: still caught up once a fetch finds nothing new
        await trio.sleep(3600)
        replies.queue.append([])
        assert await follower.follow_once(leader, 10) == 0
        assert not follower.catch_up().syncing
        # a peer shows a block far ahead (gossip): syncing again until it catches up
        follower.observe_height(BATCH + 20)
        assert follower.catch_up() == CatchUpStatus(True, BATCH + 6, BATCH + 20)


async def _stale(tmp_path: Path) -> None:
    """A short reply of old blocks (cut by the server's byte limit while far behind) is not the chain's tip."""
    async with two_states(tmp_path) as (leader_state, state):
        block, proof = CHAIN.block(leader_state.head(), [], timestamp_ms=GENESIS_MS + 10)
        await leader_state.commit(block, proof)
        replies = Replies()
        clock = TrioWallClock(GENESIS_MS + 3_600_000)  # the block is an hour old
        follower = Follower(state, replies, node_id=NodeId.of(CHAIN.nodes[1].node), clock=clock)
        replies.queue.append([(block, proof)])
        assert await follower.follow_once(NodeId.of(CHAIN.nodes[0].node), 0) == 1
        assert follower.catch_up() == CatchUpStatus(True, 1, 1)


def test_catch_up_status_follows_what_the_fetches_show(tmp_path: Path) -> None:
    trio.run(_run, tmp_path, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_short_reply_of_old_blocks_is_not_the_tip(tmp_path: Path) -> None:
    trio.run(_stale, tmp_path, clock=trio.testing.MockClock(autojump_threshold=0))
