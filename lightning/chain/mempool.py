"""The transaction pool as a node component: the mempool core, wake-ups for the orderer, and forwarding.

Every node admits transactions (``flk_send_txn``) into its own mempool. If this node orders blocks now, the orderer
takes them from here; and each transaction a client sent here is also forwarded to the ordering nodes other than this
one through the :class:`~lightning.chain.forward.TxForwarder` (in a node: ``lightning.sync.PoolForwarder``, the pool's
TXS scope), which admit it with ``forward=False``. Each
target has its own bounded queue and, while it holds anything, its own worker sending batches, so an unreachable
member retrying never delays the others; a (target, transaction) pair queued once is not queued again for
``FORWARD_DEDUP_S`` unless its forward failed; a full queue or a failed forward (after ``FORWARD_ATTEMPTS``) is logged
and the transaction stays pending here, where it still counts for ``next_nonce``. When the ordering nodes change (an
epoch change), everything pending here is forwarded to the new ones. Executed blocks prune the pool on every node,
because every node executes every block.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

import trio
from prometheus_client import CollectorRegistry, Gauge

from lightning.chain.component import State
from lightning.chain.config import StateConfig
from lightning.chain.forward import ForwardError, TxForwarder
from lightning.chain.mempool_core import MempoolCore, MempoolLimits, MempoolStatistics, TxRejected
from lightning.ids import NodeId
from lightning.state.fees import Costs, FeeRules
from lightning.state.records import StateView
from lightning.state.store import BlockOutcome
from lightning.state.tx import SignedTransaction, TxMalformed, decode_transaction
from lightning.sync.txs import MAX_BATCH_TXS

__all__ = ["Mempool"]

logger = logging.getLogger(__name__)

FORWARD_QUEUE = 1024
FORWARD_BATCH = MAX_BATCH_TXS  # one TXS request (lightning/sync/txs.py; the forwarder also splits by bytes)
FORWARD_ATTEMPTS = 3
FORWARD_BACKOFF_S = 0.5
FORWARD_DEDUP_S = 30.0  # a transaction queued for a target is not queued for it again within this window
FORWARD_DEDUP_MAX = 16_384  # (target, hash) pairs remembered for that


class Mempool:
    def __init__(
        self,
        state: State,
        config: StateConfig,
        *,
        node_id: NodeId,
        ordering_nodes: Callable[[], Sequence[NodeId]],
        forwarder: TxForwarder | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.state = state
        self.node_id = node_id
        self.core = MempoolCore(
            state.genesis.chain_id,
            MempoolLimits(
                config.mempool_max_txs,
                config.mempool_max_per_sender,
                config.mempool_tx_ttl_s,
                config.mempool_max_per_peer,
                config.mempool_max_bytes,
            ),
        )
        self._rules: tuple[int, FeeRules] | None = None  # (head height, the fee rules read at it)
        self._ordering_nodes = ordering_nodes
        self._forwarder = forwarder
        self._changed = trio.Event()
        # One queue and (while it holds anything) one worker task per target: an unreachable member retrying its
        # forwards never delays the others.
        self._outbox: dict[NodeId, deque[tuple[bytes, bytes]]] = {}
        self._workers: set[NodeId] = set()
        self._nursery: trio.Nursery | None = None
        self._queued: OrderedDict[tuple[NodeId, bytes], float] = OrderedDict()  # (target, hash) -> when queued
        self._last_ordering: tuple[NodeId, ...] = ()
        state.add_commit_listener(self._on_commit)
        if registry is not None:
            Gauge("lightning_mempool_pending", "Transactions waiting in the mempool", registry=registry).set_function(
                lambda: len(self.core)
            )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._last_ordering = tuple(self._ordering_nodes())
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for target in list(self._outbox):  # queued before the node started
                self._start_worker(target)
            nursery.start_soon(self._expire_loop)
            task_status.started()

    # -- acceptance -----------------------------------------------------------------------------------------------
    def orders_here(self) -> bool:
        return self.node_id in self._ordering_nodes()

    def submit(
        self, raw: bytes, *, forward: bool = True, origin: NodeId | None = None
    ) -> tuple[SignedTransaction, bool]:
        """Admit a signed transaction and (unless it was itself forwarded to us) forward it to the ordering nodes
        other than us, so whichever leads next can include it. Returns it and whether it was new. ``origin`` is the
        peer that forwarded it (None: a local client), for per-peer limits.

        Raises :class:`TxRejected`."""
        try:
            stx = decode_transaction(raw)
        except TxMalformed as exc:
            raise TxRejected("malformed", str(exc)) from None
        with self.state.view() as view:
            try:
                new = self.core.add(stx, Costs(view, self._fee_rules(view)), trio.current_time(), origin=origin)
            except TxRejected as exc:
                if origin is not None:
                    logger.debug("transaction %s from peer %s refused: %s", stx.hash.hex()[:16], origin.short(), exc)
                raise
        if new:
            self._wake()
            if forward:
                self._forward([stx])
        return stx, new

    def _fee_rules(self, view: StateView) -> FeeRules:
        """The fee params, epoch and committee, read once per head (they change only with a block)."""
        height = self.state.head().height
        if self._rules is None or self._rules[0] != height:
            self._rules = (height, FeeRules.of(view))
        return self._rules[1]

    def _settle(self, outcome: BlockOutcome) -> None:
        """Drop what the block made stale: used nonces, and transactions now unpaid (of the block's senders, or of
        every sender when the fee rules changed: new params, or an epoch change that moved the roles)."""
        senders = {r.sender for r in outcome.receipts if r.sender} | {s.sender for s in outcome.skipped}
        with self.state.view() as view:
            rules = FeeRules.of(view)
            if self._rules is None or self._rules[1] != rules:
                senders.update(self.core.senders())
            self._rules = (outcome.head.height, rules)
            if senders:
                self.core.settle(sorted(senders), Costs(view, rules))

    def _forward(self, txs: list[SignedTransaction]) -> None:
        targets = [n for n in self._ordering_nodes() if n != self.node_id]
        now = trio.current_time()
        while self._queued and (
            len(self._queued) > FORWARD_DEDUP_MAX or next(iter(self._queued.values())) < now - FORWARD_DEDUP_S
        ):
            self._queued.popitem(last=False)
        for target in targets:
            queue = self._outbox.setdefault(target, deque())
            for stx in txs:
                if (target, stx.hash) in self._queued:
                    continue  # on its way to that node already, or delivered moments ago
                if len(queue) >= FORWARD_QUEUE:
                    logger.warning("forward queue to %s… full; %d transactions stay local", target.short(), len(txs))
                    break
                queue.append((stx.hash, stx.raw))
                self._queued[(target, stx.hash)] = now
            self._start_worker(target)

    def next_nonce(self, sender: bytes) -> int:
        """The nonce a new transaction from ``sender`` should carry (after its pending ones)."""
        return self.core.pending_nonce(sender, self.state.account(sender).nonce) + 1

    def statistics(self) -> MempoolStatistics:
        return self.core.statistics()

    # -- for the orderer ------------------------------------------------------------------------------------------
    def ready(self, max_txs: int) -> list[SignedTransaction]:
        with self.state.view() as view:
            return self.core.ready(max_txs, lambda s: view.account(s).nonce)

    async def wait_ready(self) -> None:
        """Return once at least one transaction is executable."""
        while True:
            with self.state.view() as view:
                if self.core.has_ready(lambda s: view.account(s).nonce):
                    return
            await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _on_commit(self, outcome: BlockOutcome) -> None:
        self._settle(outcome)
        ordering = tuple(self._ordering_nodes())
        if ordering != self._last_ordering:
            # Another node orders from now on (an epoch change): what waits here must reach it.
            self._last_ordering = ordering
            self._forward(self.core.pending())
        self._wake()

    # -- background -----------------------------------------------------------------------------------------------
    def _start_worker(self, target: NodeId) -> None:
        if self._nursery is None or target in self._workers or not self._outbox.get(target):
            return
        self._workers.add(target)
        self._nursery.start_soon(self._forward_worker, target)

    async def _forward_worker(self, target: NodeId) -> None:
        """Send ``target``'s queue, FORWARD_BATCH transactions per request, until it is empty."""
        try:
            queue = self._outbox[target]
            while queue:
                items = [queue.popleft() for _ in range(min(len(queue), FORWARD_BATCH))]
                if self._forwarder is None:
                    continue
                await self._forward_batch(target, items)
        finally:
            self._workers.discard(target)
            if not self._outbox.get(target):
                self._outbox.pop(target, None)

    async def _forward_batch(self, target: NodeId, items: list[tuple[bytes, bytes]]) -> None:
        assert self._forwarder is not None
        for attempt in range(1, FORWARD_ATTEMPTS + 1):
            try:
                await self._forwarder.forward(target, [raw for _, raw in items])
                return
            except ForwardError as exc:
                logger.warning("forward attempt %d/%d failed: %s", attempt, FORWARD_ATTEMPTS, exc)
                if attempt < FORWARD_ATTEMPTS:
                    await trio.sleep(FORWARD_BACKOFF_S * attempt)
        for tx_hash, _ in items:  # never delivered: a later re-forward (an epoch change) may try again
            self._queued.pop((target, tx_hash), None)

    async def _expire_loop(self) -> None:
        while True:
            deadline = self.core.next_expiry()
            if deadline is None:
                await self._changed.wait()
                continue
            await trio.sleep_until(deadline)
            dropped = self.core.expire(trio.current_time())
            if dropped:
                logger.info("mempool: %d transactions expired unordered", dropped)
