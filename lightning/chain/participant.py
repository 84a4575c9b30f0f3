"""The epoch driver: a committee member's automatic beacon commit, beacon reveal and ChangeEpoch transactions.

Members of the current committee, signing with their node key, commit to a beacon value during the first half of
the epoch, reveal it during the second half, and vote ChangeEpoch once the planned end has passed on their wall
clock (docs/state.md, "Epochs"). The reveal is ``blake3(sign(node key, BEACON, {chain_id, epoch}))``: unpredictable
to others, and the same after a restart, so a node that restarts mid-epoch can still reveal. An action whose
transaction was sent is not sent again while it is pending here, nor for ``RETRY_S`` (it may have reverted because
the orderer's clock lagged); then it is retried if the state still calls for it. Each send spends one of the node's
``protocol_txs_per_epoch`` free protocol transactions (docs/fees.md), so a stalled chain must not multiply them.
"""

from __future__ import annotations

import logging

import blake3
import trio

from lightning.chain.component import State
from lightning.chain.mempool import Mempool
from lightning.chain.mempool_core import TxRejected
from lightning.clock import WallClock
from lightning.codec import encode
from lightning.crypto import Domain, SigningKey
from lightning.ids import NodeId
from lightning.state.epoch import beacon_commitment
from lightning.state.records import BEACON, EPOCH_VOTES, u64
from lightning.state.tx import sign_transaction

__all__ = ["EpochDriver"]

logger = logging.getLogger(__name__)

RETRY_S = 10.0


class EpochDriver:
    def __init__(self, state: State, pool: Mempool, node_key: SigningKey, clock: WallClock) -> None:
        self.state = state
        self.pool = pool
        self._key = node_key
        self.node_id = NodeId.of(node_key)
        self._clock = clock
        self._sent: dict[tuple[int, str], tuple[float, bytes]] = {}  # (epoch, method) -> (when, transaction hash)

    def reveal(self, epoch: int) -> bytes:
        msg = encode({"chain_id": self.state.genesis.chain_id, "epoch": epoch})
        return blake3.blake3(self._key.sign(Domain.BEACON, msg)).digest()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            head = self.state.head()
            wake_ms = self.step()
            delay = None if wake_ms is None else max(0.0, (wake_ms - self._clock.now_ms()) / 1000)
            with trio.move_on_after(RETRY_S if delay is None else min(delay, RETRY_S)):
                await self.state.wait_head_change(head.height)

    def step(self) -> int | None:
        """Send what the state calls for now; return the wall time (ms) of the next phase boundary, if any."""
        now_ms = self._clock.now_ms()
        with self.state.view() as view:
            epoch = view.epoch
            info = view.epoch_info(epoch)
            committee = view.committee(epoch)
            assert info is not None and committee is not None
            if self.node_id not in committee.members:
                return None
            beacon = view.row(BEACON, u64(epoch) + self.node_id)
            voted = view.kv.get(EPOCH_VOTES, u64(epoch) + self.node_id) is not None
        mid = (info.start_ms + info.end_ms) // 2
        if now_ms < mid:
            if beacon is None:
                self._send(epoch, "beacon_commit", commitment=beacon_commitment(self.reveal(epoch)))
            return mid
        if beacon is not None and beacon["reveal"] is None:
            self._send(epoch, "beacon_reveal", reveal=self.reveal(epoch))
        if now_ms < info.end_ms:
            return info.end_ms
        if not voted:
            self._send(epoch, "change_epoch")
        return None

    def _send(self, epoch: int, method: str, **args: object) -> None:
        now = trio.current_time()
        sent = self._sent.get((epoch, method))
        if sent is not None and (now < sent[0] + RETRY_S or sent[1] in self.pool.core):
            return  # recently sent, or still pending: a resend would spend the epoch's protocol allowance twice
        self._sent = {k: v for k, v in self._sent.items() if k[0] >= epoch}
        stx = sign_transaction(
            self._key,
            chain_id=self.state.genesis.chain_id,
            nonce=self.pool.next_nonce(self.node_id),
            method=method,
            epoch=epoch,
            **args,
        )
        try:
            self.pool.submit(stx.raw)
        except TxRejected as exc:
            logger.warning("epoch %d: %s not accepted by the mempool: %s", epoch, method, exc)
            return
        self._sent[(epoch, method)] = (now, stx.hash)
        logger.info("epoch %d: sent %s", epoch, method)
