"""The follower: executes blocks ordered by another node, after checking their commit proofs.

While this node is not the orderer, it asks the ordering node (committee member 0 of the current epoch) for the
blocks after its head through a :class:`~lightning.chain.forward.BlockSource` (a long poll), and for each one checks
the commit proof against the epoch's committee, the timestamp window against its own wall clock, and then executes
it (the executor checks parent, height, previous state root and the rest). A peer that sends a bad block is logged
by node id and retried after a back-off; nothing from it is applied.

With ``wait_turn`` (under the BFT consensus: ``lightning.sync.BlockGossip.wait_turn``) blocks normally arrive over
broadcast and the follower is the fallback: it fetches once at start (without waiting), then only when ``wait_turn``
returns (a gap in what broadcast delivered, or no new block for a while), and keeps fetching without waiting while
that brings new blocks.

Catch-up status (:meth:`Follower.catch_up`, shown by ``flk_get_node_status``; ``lightning opt in`` refuses while
``syncing``). A node has caught up once a fetch found nothing beyond its head, or brought less than a full batch
whose last block is at most ``CAUGHT_UP_LAG_MS`` older than the wall clock (a reply cut short by its byte limit while
far behind carries old blocks); a full batch, or a peer's block more than ``CAUGHT_UP_BLOCKS`` ahead
(:meth:`Follower.observe_height`), means it is syncing again. A node that orders has caught up by definition.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from lightning.chain.component import State
from lightning.chain.forward import BlockSource, BlockSourceError
from lightning.clock import WallClock
from lightning.ids import NodeId
from lightning.state.block import BlockMalformed, check_timestamp
from lightning.state.executor import InvalidBlock

__all__ = ["CatchUpStatus", "Follower"]

logger = logging.getLogger(__name__)

BATCH = 64
LONG_POLL_S = 10.0
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0
CAUGHT_UP_BLOCKS = 4
CAUGHT_UP_LAG_MS = 30_000


@dataclass(frozen=True)
class CatchUpStatus:
    syncing: bool
    head_height: int
    best_known_height: int  # the highest block height a peer has shown us (at least the head)


class Follower:
    def __init__(
        self,
        state: State,
        source: BlockSource,
        *,
        node_id: NodeId,
        clock: WallClock,
        orders_here: Callable[[], bool] | None = None,
        quorum_proofs_only: bool = False,
        wait_turn: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.state = state
        self.source = source
        self.node_id = node_id
        self._clock = clock
        # Whether this node takes part in ordering (then it does not follow): by default, when it is the sequencer;
        # with the BFT consensus, when it is in the current committee.
        self._orders_here = orders_here or (lambda: self.state.leader() == self.node_id)
        self._quorum_only = quorum_proofs_only  # under the BFT consensus one member's signature proves nothing
        self._wait_turn = wait_turn
        self._at_tip = False  # see "Catch-up status" in the module docstring
        self._best_known = 0

    def observe_height(self, height: int) -> None:
        """A peer showed us a (verified) block at ``height``."""
        self._best_known = max(self._best_known, height)

    def catch_up(self) -> CatchUpStatus:
        head = self.state.head().height
        best = max(head, self._best_known)
        at_tip = self._at_tip or self._orders_here()
        return CatchUpStatus(not at_tip or best - head > CAUGHT_UP_BLOCKS, head, best)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        backoff = BACKOFF_MIN_S
        catching_up = True  # fetch once at start: a node that was down or starts late is behind
        while True:
            head = self.state.head()
            leader = self.state.leader()
            if self._orders_here():
                await self.state.wait_head_change(head.height)
                continue
            wait_s = LONG_POLL_S
            if self._wait_turn is not None:
                if not catching_up:
                    await self._wait_turn()
                    leader = self.state.leader()
                else:
                    wait_s = 0.0
            try:
                catching_up = await self.follow_once(leader, wait_s) > 0
                backoff = BACKOFF_MIN_S
            except (BlockSourceError, BlockMalformed, InvalidBlock) as exc:
                logger.warning("following %s…: %s (retrying in %.1f s)", leader.short(), exc, backoff)
                await trio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def follow_once(self, leader: NodeId, wait_s: float = LONG_POLL_S) -> int:
        """Fetch and apply the next blocks from ``leader``; return how many were applied."""
        head = self.state.head()
        blocks = await self.source.fetch_blocks(leader, head.height + 1, BATCH, wait_s)
        applied = 0
        for block, proof in blocks:
            head = self.state.head()
            if block.height <= head.height:
                continue  # meanwhile applied from broadcast
            if block.epoch != head.epoch:
                raise InvalidBlock(f"block {block.height} is for epoch {block.epoch}; this node is in {head.epoch}")
            keys = self.state.consensus_keys(block.epoch)
            if self._quorum_only and proof.kind != "quorum" and len(keys) > 1:
                raise BlockMalformed(f"block {block.height}: a {proof.kind} proof; this chain needs a quorum")
            proof.verify(block, keys, chain_id=self.state.genesis.chain_id)
            if proof.kind == "sequencer" and block.proposer != self.state.leader():
                raise BlockMalformed(f"block {block.height} was not proposed by this epoch's sequencer")
            window = self._window_ms()
            problem = check_timestamp(block.timestamp_ms, head.timestamp_ms, self._clock.now_ms(), window)
            if problem is not None:
                raise InvalidBlock(f"block {block.height}: {problem}")
            if await self.state.commit_new(block, proof) is not None:
                applied += 1
        if blocks:  # all verified (or already applied): a full batch means the peer has more
            self.observe_height(blocks[-1][0].height + (1 if len(blocks) >= BATCH else 0))
        head = self.state.head()
        self._at_tip = len(blocks) < BATCH and (
            not blocks or self._clock.now_ms() - head.timestamp_ms <= CAUGHT_UP_LAG_MS
        )
        return applied

    def _window_ms(self) -> int:
        with self.state.view() as view:
            return view.param("block_time_window_ms")
