"""The trio adapter: runs a :class:`~lightning.consensus.core.Core` for each epoch this node is a committee member
of, over the pool's consensus scope. It is the node's :class:`~lightning.chain.Orderer`.

One task owns the core: it takes events from a bounded inbox (messages from members, proposal batches) or the core's
timer, and carries out the outputs in order — persist the safety state (fsync, on a thread) *before* sending anything
that depends on it; execute committed blocks through the state; catch up from a peer over the sync scope when the
core says it lags. Sending never blocks the core: each member has a bounded outbox drained by its own task (a full
outbox drops; lost messages are covered by the timeouts' retransmission). When an epoch change leaves this node out
of the committee, the core stops and the follower takes over; when it joins one, a new core starts.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lightning.chain import BlockSourceError, Mempool, State
from lightning.clock import WallClock
from lightning.consensus.config import ConsensusConfig
from lightning.consensus.core import (
    Commit,
    Core,
    CoreConfig,
    CoreStatistics,
    EvidenceFound,
    Member,
    Output,
    Persist,
    ProposeReady,
    Send,
    SyncNeeded,
)
from lightning.consensus.messages import MessageInvalid
from lightning.consensus.safety import SafetyStore
from lightning.home import Keys
from lightning.ids import NodeId
from lightning.net import NetError, Pool, Scope
from lightning.state.block import Block, BlockMalformed, CommitProof, check_timestamp
from lightning.state.executor import InvalidBlock, check_header
from lightning.sync.blocks import PoolBlockSource

__all__ = ["Consensus", "core_config"]

logger = logging.getLogger(__name__)

INBOX = 4096
OUTBOX = 1024


def core_config(config: ConsensusConfig) -> CoreConfig:
    """The core's part of ``[consensus]``, field by field: every :class:`CoreConfig` field by its own name."""
    return CoreConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(CoreConfig)})


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.view = Gauge("lightning_consensus_view", "Current consensus view", registry=registry)
        self.height = Gauge("lightning_consensus_height", "Height of the last block committed", registry=registry)
        self.committee = Gauge("lightning_consensus_committee_size", "Members of the committee", registry=registry)
        self.timeouts = Counter("lightning_consensus_timeouts", "Views this member timed out of", registry=registry)
        self.view_changes = Counter("lightning_consensus_view_changes", "Views entered", registry=registry)
        self.proposals = Counter(
            "lightning_consensus_proposals", "Blocks this member proposed as leader", registry=registry
        )
        self.votes = Counter("lightning_consensus_votes", "Prepare votes this member cast", registry=registry)
        self.rejected = Counter(
            "lightning_consensus_rejected_messages", "Members' messages this member refused", registry=registry
        )
        self.equivocations = Counter(
            "lightning_consensus_equivocations",
            "Members' conflicting signed statements (proposals, votes, commit votes) this member kept as evidence",
            registry=registry,
        )
        self.latency = Histogram(
            "lightning_consensus_commit_latency_seconds",
            "From proposing a block (as leader) to executing it",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self._core: Core | None = None
        self._seen = CoreStatistics()

    def follow(self, core: Core) -> None:
        """Add what ``core``'s counters gained since the last call (one core per epoch, each counted from zero)."""
        now = core.statistics()
        base = self._seen if core is self._core else CoreStatistics()
        self.view.set(core.view)
        if now is base:
            return
        for counter, field in (
            (self.timeouts, "timeouts"),
            (self.view_changes, "view_changes"),
            (self.proposals, "proposals"),
            (self.votes, "votes"),
            (self.rejected, "rejected"),
            (self.equivocations, "equivocations"),
        ):
            gained = getattr(now, field) - getattr(base, field)
            if gained > 0:
                counter.inc(gained)
        self._core, self._seen = core, now


class Consensus:
    def __init__(
        self,
        state: State,
        mempool: Mempool,
        pool: Pool,
        keys: Keys,
        clock: WallClock,
        safety: SafetyStore,
        *,
        config: ConsensusConfig,
        registry: CollectorRegistry | None = None,
        inline: bool = False,
        on_decided: Callable[[Block, CommitProof], None] | None = None,
    ) -> None:
        self.state = state
        self.mempool = mempool
        self.pool = pool
        self.node_id = keys.node_id
        self._key = keys.consensus
        self._clock = clock
        self._safety = safety
        self.config = config
        self._metrics = _Metrics(registry) if registry is not None else None
        self._inline = inline  # simulation: persist on the trio thread (a worker thread would let MockClock jump)
        # hears each block at head + 1 the moment its commit proof is formed, before it executes here (the gossip
        # publishes its own proposals then: edge nodes need not wait for this node's execution)
        self.on_decided = on_decided
        self._sync = PoolBlockSource(pool, lambda: self.ordering_nodes())
        self._inbox_send, self._inbox = trio.open_memory_channel[tuple[str, Any]](INBOX)
        self._members: dict[bytes, int] = {}
        self._epoch = -1
        self._proposed_at: dict[int, float] = {}
        self.core: Core | None = None
        pool.on_message(Scope.CONSENSUS, self._on_message)

    def ordering_nodes(self) -> Sequence[NodeId]:
        return self.state.committee().members

    async def _on_message(self, peer: NodeId, msg: Any) -> None:
        index = self._members.get(peer)
        if index is None:
            logger.debug("consensus message from %s…, not a member of epoch %d", peer.short(), self._epoch)
            return
        try:
            self._inbox_send.send_nowait(("msg", (index, msg)))
        except trio.WouldBlock:
            logger.warning("consensus inbox full: dropped a message from %s…", peer.short())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            head = self.state.head()
            committee = self.state.committee(head.epoch)
            if self.node_id not in committee.members or len(committee.members) < 2:
                # not a member, or a one-member committee (lightning/chain/sequencer.py orders those epochs)
                self._members = {}
                await self.state.wait_head_change(head.height)
                continue
            await self._run_epoch(head.epoch, committee.members)

    async def _run_epoch(self, epoch: int, member_ids: Sequence[NodeId]) -> None:
        keys = self.state.consensus_keys(epoch)
        members = [Member(nid, key) for nid, key in zip(member_ids, keys, strict=True)]
        saved = self._safety.load() if self._inline else await trio.to_thread.run_sync(self._safety.load)
        core = Core(
            chain_id=self.state.genesis.chain_id,
            epoch=epoch,
            members=members,
            me=list(member_ids).index(self.node_id),
            key=self._key,
            head=self.state.head(),
            saved=saved,
            check_block=self._check_block,
            now=trio.current_time(),
            config=core_config(self.config),
        )
        self.core, self._epoch = core, epoch
        self._members = {nid: i for i, nid in enumerate(member_ids)}
        if self._metrics is not None:
            self._metrics.committee.set(len(members))
        logger.info("consensus: epoch %d, member %d of %d, view %d", epoch, core.me, len(members), core.view)
        outboxes = [trio.open_memory_channel[dict[str, Any]](OUTBOX) for _ in members]
        async with trio.open_nursery() as nursery:
            for i, (_, receive) in enumerate(outboxes):
                if i != core.me:
                    nursery.start_soon(self._sender, members[i].node_id, receive)
            try:
                await self._loop(core, [send for send, _ in outboxes], nursery)
            finally:
                nursery.cancel_scope.cancel()
                self.core = None

    async def _sender(self, node_id: NodeId, receive: trio.MemoryReceiveChannel[dict[str, Any]]) -> None:
        peer = NodeId(node_id)
        async for msg in receive:
            try:
                await self.pool.send(peer, Scope.CONSENSUS, msg)
            except NetError as exc:
                logger.debug("consensus send to %s… failed: %s", node_id.short(), exc)

    async def _loop(
        self, core: Core, outboxes: list[trio.MemorySendChannel[dict[str, Any]]], nursery: trio.Nursery
    ) -> None:
        await self._carry_out(core, core.start(trio.current_time()), outboxes, nursery)
        while self.state.head().epoch == core.epoch:
            outs: list[Output] = []
            with trio.move_on_at(core.deadline()) as timer:
                kind, payload = await self._inbox.receive()
            now = trio.current_time()
            if timer.cancelled_caught:
                outs = core.on_timer(now)
            elif kind == "msg":
                sender, msg = payload
                try:
                    outs = core.on_message(sender, msg, now)
                except MessageInvalid as exc:
                    logger.warning("consensus: member %d (%s…): %s", sender, core.members[sender].node_id.short(), exc)
                    # a bad signature (another chain, key or domain), a wrong leader, a malformed message: honest
                    # members never send one
                    self.pool.penalize(core.members[sender].node_id, "consensus invalid message")
                    if self._metrics is not None:
                        self._metrics.rejected.inc()
            elif kind == "propose":
                outs = self._propose(core, payload, now)
            await self._carry_out(core, outs, outboxes, nursery)

    def _propose(self, core: Core, view: int, now: float) -> list[Output]:
        with self.state.view() as v:
            limit = v.param("max_block_transactions")
        txs = [t.raw for t in self.mempool.ready(limit)]
        outs = core.propose(view, txs, self._clock.now_ms(), now)
        if outs:
            self._proposed_at[self.state.head().height + 1] = now
        return outs

    async def _carry_out(
        self,
        core: Core,
        outs: list[Output],
        outboxes: list[trio.MemorySendChannel[dict[str, Any]]],
        nursery: trio.Nursery,
    ) -> None:
        while outs:
            more: list[Output] = []
            for o in outs:
                if isinstance(o, Persist):
                    if self._inline:
                        self._safety.save(o.state)
                    else:
                        await trio.to_thread.run_sync(self._safety.save, o.state)
                elif isinstance(o, Send):
                    for i in range(len(outboxes)) if o.to is None else (o.to,):
                        if i != core.me:
                            try:
                                outboxes[i].send_nowait(o.msg)
                            except trio.WouldBlock:
                                logger.debug("consensus outbox to member %d full: dropped", i)
                elif isinstance(o, Commit):
                    more += await self._commit(core, o)
                elif isinstance(o, ProposeReady):
                    nursery.start_soon(self._wait_batch, o.view)
                elif isinstance(o, SyncNeeded):
                    more += await self._catch_up(core, o.peer)
                elif isinstance(o, EvidenceFound):
                    first, second = o.evidence.first.statement, o.evidence.second.statement
                    logger.warning(
                        "consensus: member %d (%s…) equivocated: two %s statements in epoch %d view %d (payloads %s…, "
                        "%s…); kept as evidence",
                        o.member,
                        core.members[o.member].node_id.short(),
                        first.kind.value,
                        first.epoch,
                        first.seq,
                        first.payload_hash.hex()[:12],
                        second.payload_hash.hex()[:12],
                    )
            if self._metrics is not None:
                self._metrics.follow(core)
            outs = more

    async def _commit(self, core: Core, c: Commit) -> list[Output]:
        now = trio.current_time()
        try:
            if c.block.height == self.state.head().height + 1:
                if self.on_decided is not None:
                    self.on_decided(c.block, c.proof)
                await self.state.commit(c.block, c.proof)
                started = self._proposed_at.pop(c.block.height, None)
                if self._metrics is not None:
                    self._metrics.height.set(c.block.height)
                    if started is not None:
                        self._metrics.latency.observe(now - started)
                return core.on_head(self.state.head(), c.proof, trio.current_time())
        except InvalidBlock as exc:
            # 2f+1 members checked this block against the same state: this node's state has diverged.
            logger.error("consensus: committed block %d does not execute here: %s", c.block.height, exc)
        return core.on_head(self.state.head(), None, trio.current_time())

    async def _catch_up(self, core: Core, peer: int) -> list[Output]:
        """Fetch and execute the blocks after our head from member ``peer``, checking each commit proof."""
        start = self.state.head().height + 1
        with trio.move_on_after(self.config.view_timeout_s * 2):
            try:
                blocks = await self._sync.fetch_from(core.members[peer].node_id, start, 64, 0.0)
            except BlockSourceError as exc:
                logger.info("consensus: catching up from member %d: %s", peer, exc)
                return []
            last = None
            for block, proof in blocks:
                head = self.state.head()
                if block.epoch != head.epoch or block.height != head.height + 1:
                    break
                try:
                    keys = self.state.consensus_keys(block.epoch)
                    if proof.kind != "quorum" and len(keys) > 1:
                        raise BlockMalformed("not a quorum proof")
                    proof.verify(block, keys, chain_id=self.state.genesis.chain_id)
                    await self.state.commit(block, proof)
                except (BlockMalformed, InvalidBlock) as exc:
                    logger.warning("consensus: block %d from member %d: %s", block.height, peer, exc)
                    break
                last = proof
            if last is not None:
                logger.info("consensus: caught up to %d from member %d", self.state.head().height, peer)
                return core.on_head(self.state.head(), last, trio.current_time())
        return []

    async def _wait_batch(self, view: int) -> None:
        with trio.move_on_after(self.config.empty_block_s):
            await self.mempool.wait_ready()
        try:
            self._inbox_send.send_nowait(("propose", view))
        except trio.WouldBlock:
            logger.warning("consensus inbox full: could not propose in view %d", view)

    def _check_block(self, block: Block) -> str | None:
        head = self.state.head()
        try:
            with self.state.view() as view:
                check_header(view, head, block)
                window = view.param("block_time_window_ms")
        except InvalidBlock as exc:
            return str(exc)
        return check_timestamp(block.timestamp_ms, head.timestamp_ms, self._clock.now_ms(), window)
