"""The mempool core (sans-IO): admission checks, a bounded pool with per-sender limits, ready transactions in order.

Admission (:meth:`MempoolCore.add`) checks what can be checked against the current state without executing: structure,
chain id, signature, the nonce window ``(state nonce, state nonce + max_per_sender]``, and that the sender's
balance covers the amount the method spends (``Method.spends`` in the state's registry). The executor re-checks
everything; admission only keeps junk out.

:meth:`MempoolCore.ready` yields, for each sender, the run of consecutive nonces that starts right after its state
nonce, merged across senders in arrival order; a transaction behind a nonce gap waits (until it expires). After a
block executes, :meth:`MempoolCore.prune` drops what the new nonces made stale. Time is passed in (``now``), never read.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from lightning.chain.errors import ChainError
from lightning.state.records import Account
from lightning.state.registry import METHODS
from lightning.state.tx import SignedTransaction, check_signature

__all__ = ["MempoolCore", "MempoolLimits", "MempoolStatistics", "TxRejected"]


class TxRejected(ChainError):
    """A transaction the mempool refuses; ``code`` is a stable identifier (docs/state.md lists them)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class MempoolLimits:
    max_txs: int = 10_000
    max_per_sender: int = 64
    ttl_s: float = 600.0


@dataclass(frozen=True)
class MempoolStatistics:
    pending: int
    senders: int
    added: int
    rejected: int
    expired: int


@dataclass
class _Entry:
    stx: SignedTransaction
    added_at: float
    seq: int


class MempoolCore:
    def __init__(self, chain_id: int, limits: MempoolLimits = MempoolLimits()) -> None:
        self.chain_id = chain_id
        self.limits = limits
        self._by_sender: dict[bytes, dict[int, _Entry]] = {}
        self._hashes: dict[bytes, tuple[bytes, int]] = {}
        self._seq = itertools.count()
        self._added = self._rejected = self._expired = 0

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._hashes

    def statistics(self) -> MempoolStatistics:
        return MempoolStatistics(len(self._hashes), len(self._by_sender), self._added, self._rejected, self._expired)

    def add(self, stx: SignedTransaction, account: Account, now: float) -> bool:
        """Admit ``stx`` given its sender's current ``account``. Returns False if it is already pending.

        Raises :class:`TxRejected`."""
        try:
            return self._add(stx, account, now)
        except TxRejected:
            self._rejected += 1
            raise

    def _add(self, stx: SignedTransaction, account: Account, now: float) -> bool:
        if stx.hash in self._hashes:
            return False
        tx = stx.tx
        if tx.chain_id != self.chain_id:
            raise TxRejected("wrong_chain", f"signed for chain {tx.chain_id}; this node is on chain {self.chain_id}")
        if stx.nonce <= account.nonce:
            raise TxRejected("nonce_too_low", f"nonce {stx.nonce} was already used (account nonce is {account.nonce})")
        window = self.limits.max_per_sender
        if stx.nonce > account.nonce + window:
            raise TxRejected(
                "nonce_too_high", f"nonce {stx.nonce} is beyond the window: at most {account.nonce + window} accepted"
            )
        amount = METHODS[tx.method].spent(tx.args)
        if amount > account.balance:
            raise TxRejected("insufficient_balance", f"insufficient balance: {account.balance} does not cover {amount}")
        bad = check_signature(stx)
        if bad is not None:
            raise TxRejected("bad_signature", bad)
        mine = self._by_sender.get(stx.sender, {})
        if stx.nonce in mine:
            raise TxRejected("nonce_pending", f"another transaction with nonce {stx.nonce} is already pending")
        if len(mine) >= window:
            raise TxRejected("sender_full", f"sender already has {len(mine)} pending transactions")
        if len(self._hashes) >= self.limits.max_txs:
            raise TxRejected("pool_full", f"the mempool is full ({self.limits.max_txs} transactions); retry later")
        self._by_sender.setdefault(stx.sender, {})[stx.nonce] = _Entry(stx, now, next(self._seq))
        self._hashes[stx.hash] = (stx.sender, stx.nonce)
        self._added += 1
        return True

    def pending_nonce(self, sender: bytes, state_nonce: int) -> int:
        """The last nonce of the consecutive run pending after ``state_nonce`` (``state_nonce`` if none)."""
        mine = self._by_sender.get(sender, {})
        n = state_nonce
        while n + 1 in mine:
            n += 1
        return n

    def ready(self, max_txs: int, nonce_of: Callable[[bytes], int]) -> list[SignedTransaction]:
        """Up to ``max_txs`` executable transactions: per sender in nonce order, across senders by arrival."""
        heads: list[tuple[int, bytes, int]] = []  # (seq, sender, nonce)
        for sender, mine in self._by_sender.items():
            n = nonce_of(sender) + 1
            if n in mine:
                heads.append((mine[n].seq, sender, n))
        heapq.heapify(heads)
        out: list[SignedTransaction] = []
        while heads and len(out) < max_txs:
            _, sender, n = heapq.heappop(heads)
            mine = self._by_sender[sender]
            out.append(mine[n].stx)
            if n + 1 in mine:
                heapq.heappush(heads, (mine[n + 1].seq, sender, n + 1))
        return out

    def has_ready(self, nonce_of: Callable[[bytes], int]) -> bool:
        return any(nonce_of(s) + 1 in mine for s, mine in self._by_sender.items())

    def pending(self) -> list[SignedTransaction]:
        """Every pending transaction, in arrival order."""
        entries = [e for mine in self._by_sender.values() for e in mine.values()]
        return [e.stx for e in sorted(entries, key=lambda e: e.seq)]

    def prune(self, nonces: dict[bytes, int]) -> int:
        """Drop transactions of these senders whose nonce is now used (sender -> state nonce). Returns how many."""
        dropped = 0
        for sender, nonce in nonces.items():
            mine = self._by_sender.get(sender)
            if not mine:
                continue
            for n in [n for n in mine if n <= nonce]:
                del self._hashes[mine.pop(n).stx.hash]
                dropped += 1
            if not mine:
                del self._by_sender[sender]
        return dropped

    def expire(self, now: float) -> int:
        """Drop transactions older than the TTL. Returns how many."""
        cutoff = now - self.limits.ttl_s
        dropped = 0
        for sender in list(self._by_sender):
            mine = self._by_sender[sender]
            for n in [n for n, e in mine.items() if e.added_at <= cutoff]:
                del self._hashes[mine.pop(n).stx.hash]
                dropped += 1
            if not mine:
                del self._by_sender[sender]
        self._expired += dropped
        return dropped

    def next_expiry(self) -> float | None:
        oldest = min((e.added_at for mine in self._by_sender.values() for e in mine.values()), default=None)
        return None if oldest is None else oldest + self.limits.ttl_s
