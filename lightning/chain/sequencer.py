"""The single-node sequencer: the :class:`~lightning.chain.orderer.Orderer` of an epoch whose committee has one member.

``node.py`` runs it on every node, next to ``lightning.consensus.Consensus``: it orders only in epochs whose committee
has exactly one member, and only on that member (the consensus takes the epochs of larger committees). Whenever the
pool holds executable transactions it cuts a block of up to ``max_block_transactions`` on the current head,
timestamped ``max(wall clock, parent timestamp)``, signs a ``kind="sequencer"`` commit proof with its consensus key,
and commits it to the state; then it waits ``block_time_s`` before the next block, so transactions arriving meanwhile
share one. Every other node follows (``follower.py``). When an epoch change makes another node the member, or gives
the epoch a larger committee, this one stops ordering (and follows, or takes part in the consensus), and the other way
round.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

from lightning.chain.component import State
from lightning.chain.mempool import Mempool
from lightning.clock import WallClock
from lightning.home import Keys
from lightning.ids import NodeId
from lightning.state.block import Block, CommitProof

__all__ = ["Sequencer"]

logger = logging.getLogger(__name__)


class Sequencer:
    def __init__(self, state: State, pool: Mempool, keys: Keys, clock: WallClock, *, block_time_s: float) -> None:
        self.state = state
        self.pool = pool
        self.node_id = keys.node_id
        self._consensus_key = keys.consensus
        self._clock = clock
        self._block_time_s = block_time_s

    def ordering_nodes(self) -> Sequence[NodeId]:
        return (self.state.leader(),)

    def is_leader(self) -> bool:
        """Whether this node orders now: the current committee is this node alone."""
        return tuple(self.state.committee().members) == (self.node_id,)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            head = self.state.head()
            if not self.is_leader():
                await self.state.wait_head_change(head.height)
                continue
            await self.pool.wait_ready()
            await self.propose()
            await trio.sleep(self._block_time_s)

    async def propose(self) -> Block | None:
        """Cut, sign and commit one block from the pool's executable transactions (None if there are none)."""
        head = self.state.head()
        with self.state.view() as view:
            limit = view.param("max_block_transactions")
        txs = self.pool.ready(limit)
        if not txs:
            return None
        block = Block.build(
            head=head,
            proposer=self.node_id,
            timestamp_ms=max(self._clock.now_ms(), head.timestamp_ms),
            txs=[t.raw for t in txs],
            epoch=head.epoch,
        )
        proof = CommitProof.sequencer(block, self._consensus_key, chain_id=self.state.genesis.chain_id)
        outcome = await self.state.commit(block, proof)
        logger.info(
            "block %d: %d transactions (%d ok), root %s",
            block.height,
            len(txs),
            sum(r.status == "ok" for r in outcome.receipts),
            outcome.head.state_root.hex()[:16],
        )
        return block
