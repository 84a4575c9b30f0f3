"""The state as a node component: the store behind one writer thread, inline reads, commits for the orderers.

Blocks are executed and committed on the writer thread (``lightning.writer``; inline in simulation); reads run on
the caller's thread in their own LMDB read transactions. After each commit the in-memory head is replaced, commit
listeners run (the mempool prunes), and tasks waiting for a new head or a receipt wake up.

Test hook: ``LIGHTNING_TEST_STATE_PAUSE=HEIGHT:INDEX:PATH`` makes the executor, inside block ``HEIGHT``'s write
transaction and right after transaction ``INDEX``, create the file ``PATH`` and block forever, so a test can SIGKILL
the process mid-block deterministically. It is read once, by :func:`pause_hook_from_env`, and never set in production.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge

from lightning.chain.config import StateConfig
from lightning.chain.hooks import EpochChange, EpochHooks
from lightning.genesis import Genesis
from lightning.ids import NodeId
from lightning.state.block import Block, ChainHead, CommitProof
from lightning.state.executor import Receipt
from lightning.state.records import Account, Committee, EpochInfo, NodeInfo, StateView
from lightning.state.store import BlockOutcome, StateStore
from lightning.writer import WriterThread

__all__ = ["State", "pause_hook_from_env"]

logger = logging.getLogger(__name__)

PAUSE_ENV = "LIGHTNING_TEST_STATE_PAUSE"
PauseHook = Callable[[Block], Callable[[int], None] | None]


def pause_hook_from_env() -> PauseHook | None:
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return None
    height_s, index_s, path = spec.split(":", 2)
    height, index = int(height_s), int(index_s)

    def for_block(block: Block) -> Callable[[int], None] | None:
        if block.height != height:
            return None

        def on_tx(i: int) -> None:
            if i == index:
                Path(path).write_text(f"paused in block {height} after transaction {index}\n")
                logger.warning("test hook: paused mid-block %d after transaction %d", height, index)
                threading.Event().wait()

        return on_tx

    return for_block


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.height = Gauge("lightning_state_height", "Height of the last executed block", registry=registry)
        self.epoch = Gauge("lightning_state_epoch", "Current epoch", registry=registry)
        self.txs = Counter(
            "lightning_state_transactions", "Executed transactions by outcome", ["status"], registry=registry
        )
        self.block_seconds = Gauge(
            "lightning_state_last_block_seconds", "Time to execute and commit the last block", registry=registry
        )


class State:
    """Node component. Raises StateError subclasses (and InvalidBlock from :meth:`commit`)."""

    def __init__(
        self,
        config: StateConfig,
        path: Path,
        genesis: Genesis,
        *,
        inline: bool = False,
        durable: bool = True,
        registry: CollectorRegistry | None = None,
        pause_hook: PauseHook | None = None,
    ) -> None:
        self.config = config
        self.path = path
        self.genesis = genesis
        self._writer = WriterThread(f"state-writer:{path}", inline=inline)
        self._durable = durable  # fsync each commit (off only where a crash cannot lose the OS's page cache)
        self._store: StateStore | None = None
        self._head: ChainHead | None = None
        self._changed = trio.Event()
        self._listeners: list[Callable[[BlockOutcome], None]] = []
        self._metrics = _Metrics(registry) if registry is not None else None
        self._pause_hook = pause_hook
        self.epoch_hooks = EpochHooks()  # fired after a block that changed the epoch (hooks.py)
        self._commit_lock = trio.Lock()  # one block at a time, whichever path (consensus, broadcast, sync) brings it

    @property
    def store(self) -> StateStore:
        assert self._store is not None, "state is not running"
        return self._store

    @property
    def running(self) -> bool:
        """True once the genesis state is loaded, until the component stops."""
        return self._store is not None and self._head is not None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._store = StateStore(self.path, map_size=self.config.map_size_bytes, sync=self._durable)
        self._writer.start()
        try:
            self._head = await self._writer.call(self._store.initialize, self.genesis)
            self._update_metrics()
            logger.info(
                "state %s: height %d, epoch %d, root %s",
                self.path,
                self._head.height,
                self._head.epoch,
                self._head.state_root.hex()[:16],
            )
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._writer.stop()
            self._store.close()
            self._store = None

    # -- the Ledger -----------------------------------------------------------------------------------------------
    def head(self) -> ChainHead:
        assert self._head is not None, "state is not running"
        return self._head

    async def commit(self, block: Block, proof: CommitProof) -> BlockOutcome:
        """Execute and persist a committed block. Raises InvalidBlock (nothing applied), StateFull."""
        async with self._commit_lock:
            return await self._commit(block, proof)

    async def commit_new(self, block: Block, proof: CommitProof) -> BlockOutcome | None:
        """Like :meth:`commit`, but a block at or below the head is skipped (None): two paths (broadcast and sync)
        may bring the same block at the same time."""
        async with self._commit_lock:
            if block.height <= self.head().height:
                return None
            return await self._commit(block, proof)

    async def _commit(self, block: Block, proof: CommitProof) -> BlockOutcome:
        on_tx = self._pause_hook(block) if self._pause_hook is not None else None
        started = trio.current_time()
        previous = self.head().epoch
        outcome: BlockOutcome = await self._writer.call(self._apply, block, proof, on_tx)
        self._head = outcome.head
        if self._metrics is not None:
            self._metrics.block_seconds.set(trio.current_time() - started)
            for r in outcome.receipts:
                self._metrics.txs.labels(r.status).inc()
            if outcome.skipped:
                self._metrics.txs.labels("skipped").inc(len(outcome.skipped))
        if outcome.skipped:  # unpaid transactions a proposer included anyway: no receipt, nothing written
            logger.info(
                "block %d (proposer %s): %d unpaid transactions skipped, e.g. %s from %s: %s",
                block.height,
                block.proposer.short(),
                len(outcome.skipped),
                outcome.skipped[0].method,
                outcome.skipped[0].sender.hex()[:16],
                outcome.skipped[0].reason,
            )
        self._update_metrics()
        logger.debug("block %d: %d transactions, root %s", block.height, len(block.txs), outcome.head.state_root.hex())
        for listener in self._listeners:
            listener(outcome)
        if outcome.head.epoch != previous:
            members = self.committee(outcome.head.epoch).members
            self.epoch_hooks.fire(EpochChange(previous, outcome.head.epoch, block.height, tuple(members)))
        self._changed.set()
        self._changed = trio.Event()
        return outcome

    def _apply(self, block: Block, proof: CommitProof, on_tx: Callable[[int], None] | None) -> BlockOutcome:
        return self.store.apply_block(block, proof, on_tx=on_tx)

    def add_commit_listener(self, fn: Callable[[BlockOutcome], None]) -> None:
        """``fn(outcome)`` runs on the trio thread after every commit (it must not block)."""
        self._listeners.append(fn)

    async def wait_head_change(self, height: int) -> ChainHead:
        """Wait until the head is above ``height``; return it."""
        while self.head().height <= height:
            await self._changed.wait()
        return self.head()

    async def wait_receipt(self, tx_hash: bytes, timeout_s: float) -> Receipt | None:
        """The receipt of ``tx_hash``, waiting up to ``timeout_s`` for it to be executed."""
        with trio.move_on_after(timeout_s):
            while True:
                receipt = self.store.receipt(tx_hash)
                if receipt is not None:
                    return receipt
                await self.wait_head_change(self.head().height)
        return self.store.receipt(tx_hash)

    def _update_metrics(self) -> None:
        if self._metrics is not None and self._head is not None:
            self._metrics.height.set(self._head.height)
            self._metrics.epoch.set(self._head.epoch)

    # -- reads ----------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def view(self) -> Iterator[StateView]:
        with self.store.view() as view:
            yield view

    def epoch(self) -> int:
        return self.head().epoch

    def account(self, address: bytes) -> Account:
        with self.view() as v:
            return v.account(address)

    def node(self, node_id: NodeId) -> NodeInfo | None:
        with self.view() as v:
            return v.node(node_id)

    def committee(self, epoch: int | None = None) -> Committee:
        with self.view() as v:
            c = v.committee(v.epoch if epoch is None else epoch)
        if c is None:
            raise LookupError(f"no committee for epoch {epoch}")
        return c

    def epoch_info(self, epoch: int | None = None) -> EpochInfo | None:
        with self.view() as v:
            return v.epoch_info(v.epoch if epoch is None else epoch)

    def leader(self) -> NodeId:
        """Committee member 0 of the current epoch: the single-node sequencer's orderer, and the node an edge node
        following a one-member committee fetches blocks from."""
        return self.committee().members[0]

    def consensus_keys(self, epoch: int) -> list[bytes]:
        """Consensus keys of the epoch's committee, in committee order."""
        with self.view() as v:
            c = v.committee(epoch)
            if c is None:
                return []
            keys = []
            for m in c.members:
                n = v.node(m)
                assert n is not None, "committee members are registered"
                keys.append(n.consensus_key)
            return keys

