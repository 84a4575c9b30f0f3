"""Committed blocks over broadcast: committee members publish, edge nodes verify and execute.

Theory of operation
-------------------
Each committed block is published once, by its proposer, on the broadcast ``consensus`` topic as the payload
``{"block": block, "proof": commit proof}`` (canonical msgpack). A consensus proposer hands it over (:meth:`publish`)
the moment its commit proof is formed, before executing it: the proof alone makes it final, and edge nodes then
execute it while the committee does, instead of after the proposer's execution and write. Blocks nobody handed over
(a one-member committee's sequencer) and blocks that may end the epoch (their message is stamped with the epoch after
them) are published once executed here. Every node that receives it judges it against its own state before relaying
it:

=================================================  ==========================================================
what                                               verdict
=================================================  ==========================================================
does not decode, or the proof does not verify      ``reject`` (not relayed; the sending peer is penalised)
against the committee this node's state records
for the block's epoch (2f+1 distinct members)
the block's epoch is after ours (we lag)           not judged (dropped unrelayed after the validation timeout;
                                                   nobody is penalised), and a gap is noted
verifies, height = head + 1                        ``propagate``; an edge node executes it
verifies, higher (a gap: lost or reordered)        ``propagate``; an edge node keeps it (at most
                                                   ``PENDING_MAX`` heights ahead) and notes a gap
verifies, at or below our head                     ``propagate`` (others may still need it)
=================================================  ==========================================================

Committee members of the current epoch only judge and relay; their blocks come from the consensus. An edge node
executes kept blocks as soon as they connect to its head. The proof is the only thing trusted: 2f+1 members checked
the header (and its timestamp) before signing, and the executor checks parent, height and state root again.

Catch-up stays with the sync scope (``blocks.py``, through :class:`lightning.state.Follower`): :meth:`wait_turn`
returns when the follower should fetch — a gap that broadcast has not filled within ``gap_grace_s`` (a message was
lost, or this node started late), or no new block for ``idle_s`` (broadcast is not reaching us, or the chain is
quiet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio
from prometheus_client import CollectorRegistry, Counter

from lightning.broadcast import Broadcast, BroadcastError, Received, Subscription, Topic
from lightning.chain.component import State
from lightning.chain.forward import BlockSourceError, decode_block_record
from lightning.codec import encode
from lightning.ids import NodeId
from lightning.state.block import Block, BlockMalformed, CommitProof
from lightning.state.executor import InvalidBlock
from lightning.state.store import BlockOutcome

__all__ = ["BlockGossip", "GossipStatistics", "encode_block_message"]

logger = logging.getLogger(__name__)

PENDING_MAX = 256
PUBLISH_QUEUE = 64
EARLY_MAX = 64  # heights handed over by publish() and not yet executed here, remembered to publish them only once
IDLE_S = 3.0
GAP_GRACE_S = 1.0


def encode_block_message(block: Block, proof: CommitProof) -> bytes:
    return encode({"block": block.to_wire(), "proof": proof.to_wire()})


@dataclass(frozen=True)
class GossipStatistics:
    published: int
    applied: int
    rejected: int
    pending: int


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "lightning_gossip_blocks_published", "Committed blocks this node published on broadcast", registry=registry
        )
        self.applied = Counter(
            "lightning_gossip_blocks_applied", "Blocks this node executed as received over broadcast", registry=registry
        )
        self.rejected = Counter(
            "lightning_gossip_blocks_rejected", "Block messages rejected (bad payload or proof)", registry=registry
        )


class BlockGossip:
    """Node component (every node; blocks of one-member committees too). See the module docstring. ``on_verified``
    hears the height of every block whose proof verified here (the follower's view of the chain's tip)."""

    def __init__(
        self,
        state: State,
        broadcast: Broadcast,
        *,
        node_id: NodeId,
        idle_s: float = IDLE_S,
        gap_grace_s: float = GAP_GRACE_S,
        registry: CollectorRegistry | None = None,
        on_verified: Callable[[int], None] | None = None,
    ) -> None:
        self.state = state
        self.broadcast = broadcast
        self._on_verified = on_verified
        self.node_id = node_id
        self.idle_s = idle_s
        self.gap_grace_s = gap_grace_s
        self._metrics = _Metrics(registry) if registry is not None else None
        self._pending: dict[int, tuple[Block, CommitProof]] = {}
        self._publish_send, self._publish_recv = trio.open_memory_channel[tuple[Block, CommitProof | None]](
            PUBLISH_QUEUE
        )
        self._early: set[int] = set()  # heights publish() queued, until executed here
        self._progress_at = 0.0
        self._gap_since: float | None = None
        self._wake = trio.Event()
        self._published = self._applied = self._rejected = 0

    def statistics(self) -> GossipStatistics:
        return GossipStatistics(self._published, self._applied, self._rejected, len(self._pending))

    # -- lifecycle ----------------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        sub = self.broadcast.subscribe(Topic.CONSENSUS)
        self._progress_at = trio.current_time()
        self.state.add_commit_listener(self._on_commit)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._publish_loop)
                nursery.start_soon(self._receive_loop, sub)
                task_status.started()
        finally:
            sub.close()

    # -- the follower's gate ------------------------------------------------------------------------------------
    async def wait_turn(self) -> None:
        """Return when the follower should fetch over the sync scope (see the module docstring)."""
        while True:
            now = trio.current_time()
            deadline = self._progress_at + self.idle_s
            if self._gap_since is not None:
                deadline = min(deadline, self._gap_since + self.gap_grace_s)
            if now >= deadline:
                # Restart both clocks: a fetch that brings nothing must not be retried at once.
                self._progress_at = now
                if self._gap_since is not None:
                    self._gap_since = now
                return
            with trio.move_on_at(deadline):
                await self._wake.wait()

    def _poke(self) -> None:
        self._wake.set()
        self._wake = trio.Event()

    def _note_gap(self) -> None:
        if self._gap_since is None:
            self._gap_since = trio.current_time()
            self._poke()

    # -- publishing ---------------------------------------------------------------------------------------------
    def publish(self, block: Block, proof: CommitProof) -> None:
        """A block the consensus just decided (its commit proof is formed), before it executes here: published now
        if this node proposed it, and not again when it executes."""
        if block.proposer != self.node_id or block.height in self._early:
            return
        info = self.state.epoch_info(block.epoch)
        if info is None or block.timestamp_ms >= info.end_ms:
            # It may end the epoch: published once executed, stamped with the next epoch (nodes that executed it
            # already would drop a message stamped with the epoch before as past_epoch).
            return
        if len(self._early) >= EARLY_MAX:
            self._early.discard(min(self._early))
        if self._queue_publish(block, proof):
            self._early.add(block.height)

    def _queue_publish(self, block: Block, proof: CommitProof | None) -> bool:
        try:
            self._publish_send.send_nowait((block, proof))
        except trio.WouldBlock:
            logger.debug("gossip: publish queue full, block %d not published", block.height)
            return False
        return True

    def _on_commit(self, outcome: BlockOutcome) -> None:
        self._progress_at = trio.current_time()
        height = outcome.head.height
        self._pending = {h: v for h, v in self._pending.items() if h > height}
        if not self._pending or min(self._pending) == height + 1:
            self._gap_since = None
        self._poke()
        early = height in self._early
        self._early = {h for h in self._early if h > height}
        if outcome.block.proposer == self.node_id and not early:
            self._queue_publish(outcome.block, None)

    async def _publish_loop(self) -> None:
        async for block, proof in self._publish_recv:
            if proof is None:  # executed here: the stored record
                raw = self.state.store.block_record(block.height)
                if raw is None:
                    continue
                try:
                    block, proof = decode_block_record(raw)
                except BlockSourceError as exc:  # our own store: a broken invariant, but never crash over gossip
                    logger.error("gossip: stored block %d: %s", block.height, exc)
                    continue
            try:
                # pushed: every node needs it now, and an edge node's clients wait on it (a round trip sooner)
                await self.broadcast.send(Topic.CONSENSUS, encode_block_message(block, proof), push=True)
            except BroadcastError as exc:
                logger.info("gossip: block %d not published: %s", block.height, exc)
                continue
            self._published += 1
            if self._metrics is not None:
                self._metrics.published.inc()

    # -- receiving ----------------------------------------------------------------------------------------------
    async def _receive_loop(self, sub: Subscription) -> None:
        async for received in sub:
            await self.handle(sub, received)

    async def handle(self, sub: Subscription, received: Received) -> None:
        """Judge one message and, on an edge node, execute what connects to the head."""
        sender = received.sender.short()
        try:
            block, proof = decode_block_record(received.message.payload)
        except BlockSourceError as exc:
            self._reject(sub, received, f"from {sender}…: {exc}")
            return
        head = self.state.head()
        if block.epoch > head.epoch:
            self._note_gap()  # we lag: the sync scope catches us up; we cannot judge this one
            return
        keys = self.state.consensus_keys(block.epoch)
        try:
            if proof.kind != "quorum" and len(keys) > 1:
                raise BlockMalformed(f"a {proof.kind} proof; this chain needs a quorum")
            proof.verify(block, keys, chain_id=self.state.genesis.chain_id)
        except BlockMalformed as exc:
            origin = received.message.origin.short()
            self._reject(sub, received, f"block {block.height} from {sender}… (origin {origin}…): {exc}")
            return
        sub.propagate(received)
        if self._on_verified is not None:
            self._on_verified(block.height)
        if block.height <= head.height or self.node_id in self.state.committee(head.epoch).members:
            return
        if block.height > head.height + PENDING_MAX:
            self._note_gap()
            return
        self._pending[block.height] = (block, proof)
        await self._apply_pending()
        if self._pending and min(self._pending) > self.state.head().height + 1:
            self._note_gap()

    async def _apply_pending(self) -> None:
        while True:
            head = self.state.head()
            item = self._pending.pop(head.height + 1, None)
            if item is None or self.node_id in self.state.committee(head.epoch).members:
                return
            block, proof = item
            if block.epoch != head.epoch:
                continue  # judged against an older epoch's committee; the sync scope brings the real one
            try:
                outcome = await self.state.commit_new(block, proof)
            except InvalidBlock as exc:
                # 2f+1 members executed this block on the same state: our state has diverged.
                logger.error("gossip: committed block %d does not execute here: %s", block.height, exc)
                return
            if outcome is not None:
                self._applied += 1
                if self._metrics is not None:
                    self._metrics.applied.inc()

    def _reject(self, sub: Subscription, received: Received, why: str) -> None:
        logger.warning("gossip: rejected %s", why)
        sub.reject(received)
        self._rejected += 1
        if self._metrics is not None:
            self._metrics.rejected.inc()
