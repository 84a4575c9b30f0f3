"""The mempool core (sans-IO): transaction acceptance, a bounded pool with per-sender and per-peer limits, ready
transactions in order.

Acceptance (:meth:`MempoolCore.add`) checks what can be checked against the current state without executing, with the
rules the executor applies (``lightning.state.fees.Costs``), so nothing unpaid is ever ordered (docs/fees.md):

====  ===========================================================================  ======================
step  check (against)                                                              code
====  ===========================================================================  ======================
1     chain id; nonce window ``(state nonce, state nonce + max_per_sender]``        ``wrong_chain``,
      (state)                                                                      ``nonce_too_low/high``
2     paid: balance ≥ fee + what the method spends; protocol: the signer's role    ``insufficient_balance``,
      and its per-epoch count in the state (state)                                 ``not_authorized``,
                                                                                   ``protocol_limit``
3     the signature                                                                ``bad_signature``
4     nonce not pending; the sender's pending count (pool)                         ``nonce_pending``,
                                                                                   ``sender_full``
5     paid: balance ≥ the sender's *total* pending cost + this one; protocol: the   ``insufficient_balance``,
      state count + pending protocol transactions < the limit (pool)               ``protocol_limit``
6     the forwarding peer's pending count (``origin``; local clients are exempt);  ``peer_full``,
      the pool's count and bytes (pool)                                            ``pool_full``
====  ===========================================================================  ======================

Steps 1–2 read only public state, so an unpaid transaction is refused before the signature is verified (the
expensive step: refusing junk costs less than checking it) and a forged signature learns nothing that the state's
JSON-RPC would not tell; nothing about the pool is revealed, and nothing is stored, before step 3 passes. A
transaction identical to a pending one (same hash and signature) is accepted once, without checks.

:meth:`MempoolCore.ready` yields, for each sender, the run of consecutive nonces that starts right after its state
nonce, merged across senders in arrival order; a transaction behind a nonce gap waits (until it expires). After a
block executes, :meth:`MempoolCore.settle` drops what the new state made stale: used nonces, and pending transactions
their senders can no longer pay for (or whose role was lost). Time is passed in (``now``), never read.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lightning.chain.errors import ChainError
from lightning.state.fees import Costs
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
    max_per_peer: int = 2_048  # pending transactions that arrived from one forwarding peer
    max_bytes: int = 32 * 1024 * 1024  # signed bytes of all pending transactions


@dataclass(frozen=True)
class MempoolStatistics:
    pending: int
    senders: int
    added: int
    rejected: int
    expired: int
    pending_bytes: int = 0
    dropped_unpaid: int = 0  # dropped by settle(): no longer payable, or the role was lost


@dataclass
class _Entry:
    stx: SignedTransaction
    added_at: float
    seq: int
    cost: int  # fee + what the method spends (0 for a free protocol transaction)
    protocol: bool
    origin: bytes | None


class MempoolCore:
    def __init__(self, chain_id: int, limits: MempoolLimits = MempoolLimits()) -> None:
        self.chain_id = chain_id
        self.limits = limits
        self._by_sender: dict[bytes, dict[int, _Entry]] = {}
        self._hashes: dict[bytes, tuple[bytes, int]] = {}
        self._cost: dict[bytes, int] = {}  # sender -> total pending cost
        self._protocol: dict[bytes, int] = {}  # sender -> pending protocol transactions
        self._by_origin: dict[bytes, int] = {}  # forwarding peer -> pending transactions it brought
        self._bytes = 0
        self._seq = itertools.count()
        self._added = self._rejected = self._expired = self._dropped_unpaid = 0

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._hashes

    def statistics(self) -> MempoolStatistics:
        return MempoolStatistics(
            len(self._hashes),
            len(self._by_sender),
            self._added,
            self._rejected,
            self._expired,
            self._bytes,
            self._dropped_unpaid,
        )

    def pending_cost(self, sender: bytes) -> int:
        """What ``sender``'s pending transactions cost in total (fees + amounts spent)."""
        return self._cost.get(sender, 0)

    def pending_from(self, origin: bytes) -> int:
        """Pending transactions that arrived from forwarding peer ``origin``."""
        return self._by_origin.get(origin, 0)

    def add(self, stx: SignedTransaction, costs: Costs, now: float, *, origin: bytes | None = None) -> bool:
        """Accept ``stx`` against the state read by ``costs``. ``origin`` is the peer that forwarded it (None: a
        local client, not peer-limited). Returns False if it is already pending.

        Raises :class:`TxRejected`."""
        try:
            return self._add(stx, costs, now, origin)
        except TxRejected:
            self._rejected += 1
            raise

    def _add(self, stx: SignedTransaction, costs: Costs, now: float, origin: bytes | None) -> bool:
        known = self._hashes.get(stx.hash)
        if known is not None and self._by_sender[known[0]][known[1]].stx.signature == stx.signature:
            return False
        tx, sender = stx.tx, stx.sender
        limits = self.limits
        # 1-2: public state only; nothing about the pool is revealed before the signature verifies.
        if tx.chain_id != self.chain_id:
            raise TxRejected("wrong_chain", f"signed for chain {tx.chain_id}; this node is on chain {self.chain_id}")
        account = costs.account(sender)
        if stx.nonce <= account.nonce:
            raise TxRejected("nonce_too_low", f"nonce {stx.nonce} was already used (account nonce is {account.nonce})")
        window = limits.max_per_sender
        if stx.nonce > account.nonce + window:
            raise TxRejected(
                "nonce_too_high", f"nonce {stx.nonce} is beyond the window: at most {account.nonce + window} accepted"
            )
        m = METHODS[tx.method]
        cost = 0
        if m.protocol:
            refusal = costs.refusal(stx, m)
            if refusal is not None:
                raise TxRejected(refusal.code, refusal.message)
        else:
            fee = costs.fee(stx, m)
            cost = fee + m.spent(tx.args)
            if cost > account.balance:
                raise TxRejected(
                    "insufficient_balance",
                    f"insufficient balance: {account.balance} does not cover the fee {fee} + {cost - fee} spent",
                )
        # 3
        bad = check_signature(stx)
        if bad is not None:
            raise TxRejected("bad_signature", bad)
        if m.precheck is not None:
            problem = m.precheck(tx.args, sender, self.chain_id)
            if problem is not None:
                raise TxRejected("bad_arguments", problem)
        # 4-6: the pool.
        mine = self._by_sender.get(sender, {})
        if stx.nonce in mine:
            raise TxRejected("nonce_pending", f"another transaction with nonce {stx.nonce} is already pending")
        if len(mine) >= window:
            raise TxRejected("sender_full", f"sender already has {len(mine)} pending transactions")
        if m.protocol:
            refusal = costs.refusal(stx, m, pending=self._protocol.get(sender, 0))
            if refusal is not None:
                raise TxRejected(refusal.code, refusal.message)
        else:
            pending = self._cost.get(sender, 0)
            if pending + cost > account.balance:
                raise TxRejected(  # not the state's verdict: this mempool's own pending transactions (docs/fees.md)
                    "pending_exceeds_balance",
                    f"insufficient balance: {account.balance} does not cover {pending} pending + {cost} for this one",
                )
        if origin is not None and self._by_origin.get(origin, 0) >= limits.max_per_peer:
            raise TxRejected(
                "peer_full", f"the forwarding peer already has {limits.max_per_peer} transactions pending here"
            )
        if len(self._hashes) >= limits.max_txs:
            raise TxRejected("pool_full", f"the mempool is full ({limits.max_txs} transactions); retry later")
        if self._bytes + len(stx.raw) > limits.max_bytes:
            raise TxRejected("pool_full", f"the mempool is full ({limits.max_bytes} bytes); retry later")
        self._insert(_Entry(stx, now, next(self._seq), cost, m.protocol, origin))
        self._added += 1
        return True

    def _insert(self, e: _Entry) -> None:
        sender = e.stx.sender
        self._by_sender.setdefault(sender, {})[e.stx.nonce] = e
        self._hashes[e.stx.hash] = (sender, e.stx.nonce)
        if e.cost:
            self._cost[sender] = self._cost.get(sender, 0) + e.cost
        if e.protocol:
            self._protocol[sender] = self._protocol.get(sender, 0) + 1
        if e.origin is not None:
            self._by_origin[e.origin] = self._by_origin.get(e.origin, 0) + 1
        self._bytes += len(e.stx.raw)

    def _remove(self, sender: bytes, nonce: int) -> None:
        mine = self._by_sender[sender]
        e = mine.pop(nonce)
        del self._hashes[e.stx.hash]
        _decrement(self._cost, sender, e.cost)
        if e.protocol:
            _decrement(self._protocol, sender, 1)
        if e.origin is not None:
            _decrement(self._by_origin, e.origin, 1)
        self._bytes -= len(e.stx.raw)
        if not mine:
            del self._by_sender[sender]

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

    def senders(self) -> list[bytes]:
        """Every sender with pending transactions."""
        return list(self._by_sender)

    def prune(self, nonces: dict[bytes, int]) -> int:
        """Drop transactions of these senders whose nonce is now used (sender -> state nonce). Returns how many."""
        dropped = 0
        for sender, nonce in nonces.items():
            mine = self._by_sender.get(sender)
            if not mine:
                continue
            for n in [n for n in mine if n <= nonce]:
                self._remove(sender, n)
                dropped += 1
        return dropped

    def settle(self, senders: Iterable[bytes], costs: Costs) -> int:
        """After a block: for each of ``senders``, drop the transactions whose nonce the state (read by ``costs``)
        has used, then, walking the rest in nonce order, those it can no longer pay for with what is left of its
        balance after the earlier ones (or, for protocol transactions, whose role or allowance is gone), with the
        fee params now in force. Returns how many were dropped."""
        dropped = 0
        for sender in senders:
            mine = self._by_sender.get(sender)
            if not mine:
                continue
            account = costs.account(sender)
            budget, protocol = account.balance, 0
            for n in sorted(mine):
                e = mine[n]
                if n <= account.nonce:
                    self._remove(sender, n)
                    dropped += 1
                    continue
                m = METHODS[e.stx.tx.method]
                if m.protocol:
                    keep = costs.refusal(e.stx, m, pending=protocol) is None
                    protocol += keep
                else:
                    cost = costs.fee(e.stx, m) + m.spent(e.stx.tx.args)
                    keep = cost <= budget
                    if keep:
                        budget -= cost
                        if cost != e.cost:  # the fee params changed
                            _decrement(self._cost, sender, e.cost - cost)
                            e.cost = cost
                if not keep:
                    self._remove(sender, n)
                    self._dropped_unpaid += 1
                    dropped += 1
        return dropped

    def expire(self, now: float) -> int:
        """Drop transactions older than the TTL. Returns how many."""
        cutoff = now - self.limits.ttl_s
        dropped = 0
        for sender in list(self._by_sender):
            mine = self._by_sender[sender]
            for n in [n for n, e in mine.items() if e.added_at <= cutoff]:
                self._remove(sender, n)
                dropped += 1
        self._expired += dropped
        return dropped

    def next_expiry(self) -> float | None:
        oldest = min((e.added_at for mine in self._by_sender.values() for e in mine.values()), default=None)
        return None if oldest is None else oldest + self.limits.ttl_s


def _decrement(counts: dict[bytes, int], key: bytes, by: int) -> None:
    if not by:
        return
    left = counts.get(key, 0) - by
    if left:
        counts[key] = left
    else:
        del counts[key]
