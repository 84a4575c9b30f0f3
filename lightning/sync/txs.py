"""Client transactions forwarded between nodes over the pool's TXS scope (request/response).

Any node admits a client's transaction into its own mempool and forwards it to every ordering node other than
itself (``lightning.chain.Mempool``: a bounded queue, batches, retries); the committee members do the same with what
clients send them, which is how members share their mempools. A node that receives a forwarded transaction does not
forward it again.

Wire format (docs/wire.md, "Transactions over the pool")::

    request = {"txs": [[format, raw], ...]}     1 <= entries <= MAX_BATCH_TXS, sum of raw <= MAX_BATCH_BYTES
    reply   = {"results": [result, ...]}        one per entry, in order

``format`` is an integer tag: :data:`FORMAT_NATIVE` (0) is a signed lightning transaction (``lightning.state.tx``);
other tags are reserved (Ethereum raw transactions later), and an entry with a tag this node does not know gets the
result ``unknown_format``. ``raw`` is at most ``MAX_TX_BYTES``. ``result`` is ``accepted`` (new in the mempool),
``duplicate`` (already pending there) or the mempool's rejection code (docs/state.md: ``bad_signature``,
``nonce_too_low`` …). The shape and the bounds are checked before any transaction is decoded; a batch that breaks them
is refused with ``bad_request`` and the peer is penalised. Within a window of ``TALLY_WINDOW_S`` per peer: more than
``DISHONEST_TOLERATED`` transactions no honest node forwards (malformed, badly signed, for another chain: an honest
node forwards only what its own mempool accepted) penalise it, and the rest of that batch is answered
``not_processed`` without checking another signature; more than ``UNPAID_TOLERATED`` transactions whose senders cannot
pay (or may not send a free protocol transaction), if they are most of what it forwarded, penalise it too (an honest
node's state may lag by a block, so a few are tolerated; ``pending_exceeds_balance`` is this node's pool's verdict and
never counts); transactions beyond this node's limits (``peer_full``, ``sender_full``, ``pool_full``) are logged once
per window. A batch that arrives before this node's state is open (the pool starts first) is refused with
``not_found``; the sender retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio
from prometheus_client import CollectorRegistry, Counter

from lightning.chain.forward import ForwardError
from lightning.chain.mempool_core import TxRejected
from lightning.ids import NodeId
from lightning.logs import peer_log
from lightning.net import BadRequest, NetError, NotHere, Pool, Scope
from lightning.state.tx import MAX_TX_BYTES

if TYPE_CHECKING:
    from lightning.chain.mempool import Mempool

__all__ = [
    "ACCEPTED",
    "DUPLICATE",
    "FORMAT_NATIVE",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_TXS",
    "UNKNOWN_FORMAT",
    "PoolForwarder",
    "TxServer",
    "check_batch",
    "split_batches",
]

logger = logging.getLogger(__name__)

FORMAT_NATIVE: Final = 0
FORMATS: Final = frozenset({FORMAT_NATIVE})  # 1: Ethereum raw transactions (reserved)

MAX_BATCH_TXS: Final = 256
MAX_BATCH_BYTES: Final = 16 * MAX_TX_BYTES  # 1 MiB, well under the pool's 4 MiB frame

ACCEPTED: Final = "accepted"
DUPLICATE: Final = "duplicate"
UNKNOWN_FORMAT: Final = "unknown_format"
# Results no honest forwarder causes: it forwards only what its own mempool accepted.
_DISHONEST: Final = frozenset({"malformed", "bad_signature", "wrong_chain", "bad_arguments"})
# Results an honest forwarder causes only now and then (its state may lag ours by a block or two): it judged the sender
# able to pay. Many of them from one peer, most of what it forwards, is a flood of unpaid writes.
_UNPAID: Final = frozenset({"insufficient_balance", "not_authorized", "protocol_limit"})
# Results of one peer or one account filling this node's pool: refused and logged, never penalised.
_FLOOD: Final = frozenset({"peer_full", "sender_full", "pool_full"})
NOT_PROCESSED: Final = "not_processed"  # the rest of a batch from a peer just caught forwarding invalid ones
TALLY_WINDOW_S: Final = 30.0
DISHONEST_TOLERATED: Final = 4  # invalid transactions per peer and window (an honest forwarder sends none)
UNPAID_TOLERATED: Final = 64  # unpaid transactions per peer and window before the majority rule applies
_TALLY_PEERS_MAX: Final = 4096


@dataclass
class _Tally:
    """What one peer forwarded in its current window."""

    since: float
    dishonest: int = 0
    unpaid: int = 0
    forwarded: int = 0
    floods: int = 0
    flood_logged: bool = False

    def reset(self) -> None:
        self.dishonest = self.unpaid = self.forwarded = 0


_MAX_RESULT_CHARS: Final = 64


def check_batch(msg: Any) -> list[tuple[int, bytes]]:
    """The entries of a TXS request, after checking its shape and bounds (nothing is decoded).

    Raises :class:`~lightning.net.BadRequest`."""
    if not isinstance(msg, dict) or set(msg) != {"txs"} or not isinstance(msg["txs"], list):
        raise BadRequest("expected {txs: [[format, raw], ...]}")
    entries = msg["txs"]
    if not 1 <= len(entries) <= MAX_BATCH_TXS:
        raise BadRequest(f"a batch holds 1 to {MAX_BATCH_TXS} transactions, not {len(entries)}")
    out: list[tuple[int, bytes]] = []
    total = 0
    for i, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 2):
            raise BadRequest(f"txs[{i}]: expected [format, raw]")
        tag, raw = entry
        if not isinstance(tag, int) or isinstance(tag, bool) or not 0 <= tag < 2**16:
            raise BadRequest(f"txs[{i}]: the format is an integer tag")
        if not isinstance(raw, bytes) or not 0 < len(raw) <= MAX_TX_BYTES:
            raise BadRequest(f"txs[{i}]: raw is 1 to {MAX_TX_BYTES} bytes")
        total += len(raw)
        if total > MAX_BATCH_BYTES:
            raise BadRequest(f"a batch holds at most {MAX_BATCH_BYTES} bytes of transactions")
        out.append((tag, raw))
    return out


def split_batches(raws: list[bytes]) -> list[list[bytes]]:
    """``raws`` cut into consecutive batches within the TXS scope's bounds (an oversize transaction goes alone and
    the receiver refuses it; the mempool never admits one)."""
    batches: list[list[bytes]] = []
    size = 0
    for raw in raws:
        if not batches or len(batches[-1]) >= MAX_BATCH_TXS or size + len(raw) > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(raw)
        size += len(raw)
    return batches


class _ServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "lightning_txs_received",
            "Transactions peers forwarded to this node over the TXS scope, by result",
            ["result"],
            registry=registry,
        )
        self.refused = Counter(
            "lightning_txs_batches_refused", "TXS batches refused whole (malformed or out of bounds)", registry=registry
        )


class TxServer:
    """Answers TXS requests: each transaction goes into the local mempool (not forwarded again)."""

    def __init__(self, pool: Pool, mempool: Mempool, *, registry: CollectorRegistry | None = None) -> None:
        self.pool = pool
        self.mempool = mempool
        self._metrics = _ServerMetrics(registry) if registry is not None else None
        self._tallies: dict[NodeId, _Tally] = {}
        pool.on_request(Scope.TXS, self._handle)

    async def _handle(self, peer: NodeId, msg: Any) -> dict[str, list[str]]:
        try:
            entries = check_batch(msg)
        except BadRequest as exc:
            if self._metrics is not None:
                self._metrics.refused.inc()
            peer_log(logger, peer).warning("refused a malformed transaction batch: %s", exc)
            self.pool.penalize(peer, "txs malformed batch")  # the reason is a metric label: fixed text
            raise
        if not self.mempool.state.running:  # the pool starts before the state: the forwarder retries
            raise NotHere("this node's state is not open yet")
        tally = self._tally(peer)
        results: list[str] = []
        for i, (tag, raw) in enumerate(entries):
            if i and i % 16 == 0:
                await trio.lowlevel.checkpoint()  # a full batch is ~256 signature checks: let others run between
            result = self._submit(peer, tag, raw)
            results.append(result)
            if result in _DISHONEST:
                tally.dishonest += 1
                if tally.dishonest > DISHONEST_TOLERATED:
                    # No honest forwarder sends even one: stop checking signatures for this peer at once.
                    results += [NOT_PROCESSED] * (len(entries) - len(results))
                    break
        if self._metrics is not None:
            for result in results:
                self._metrics.received.labels(result).inc()
        self._judge(peer, tally, results)
        await trio.lowlevel.checkpoint()
        return {"results": results}

    def _tally(self, peer: NodeId) -> _Tally:
        """``peer``'s counts in its current window (a new window every TALLY_WINDOW_S; bounded table)."""
        now = trio.current_time()
        tally = self._tallies.get(peer)
        if tally is None or now - tally.since >= TALLY_WINDOW_S:
            if tally is None and len(self._tallies) >= _TALLY_PEERS_MAX:
                self._tallies = {p: t for p, t in self._tallies.items() if now - t.since < TALLY_WINDOW_S}
                if len(self._tallies) >= _TALLY_PEERS_MAX:
                    self._tallies.pop(next(iter(self._tallies)))
            tally = self._tallies[peer] = _Tally(now)
        return tally

    def _judge(self, peer: NodeId, tally: _Tally, results: list[str]) -> None:
        """Penalise what no honest forwarder does; tolerate what a lagging one may (docs/wire.md)."""
        tally.forwarded += len(results)
        tally.unpaid += sum(1 for r in results if r in _UNPAID)
        tally.floods += sum(1 for r in results if r in _FLOOD)
        window = trio.current_time() - tally.since
        if tally.dishonest > DISHONEST_TOLERATED:
            peer_log(logger, peer).warning(
                "forwarded %d invalid transactions within %.0f s (malformed, badly signed or for another chain)",
                tally.dishonest,
                window,
            )
            self.pool.penalize(peer, "txs invalid transactions")
            tally.reset()
        elif tally.unpaid > UNPAID_TOLERATED and 2 * tally.unpaid > tally.forwarded:
            peer_log(logger, peer).warning(
                "forwarded %d transactions whose senders cannot pay (of %d) within %.0f s",
                tally.unpaid,
                tally.forwarded,
                window,
            )
            self.pool.penalize(peer, "txs unpaid transactions")
            tally.reset()
        if tally.floods and not tally.flood_logged:
            # One peer or one account filling our pool: refused (peer_full, sender_full, pool_full), logged once per
            # window; not penalised, since these limits are this node's own and an honest busy forwarder meets them.
            peer_log(logger, peer).info(
                "forwarded transactions beyond this node's limits (peer_full, sender_full or pool_full): %d refused",
                tally.floods,
            )
            tally.flood_logged = True

    def _submit(self, peer: NodeId, tag: int, raw: bytes) -> str:
        if tag not in FORMATS:
            return UNKNOWN_FORMAT
        try:
            _, new = self.mempool.submit(raw, forward=False, origin=peer)
        except TxRejected as exc:
            peer_log(logger, peer).debug("forwarded transaction refused: %s", exc)
            return exc.code
        return ACCEPTED if new else DUPLICATE


class PoolForwarder:
    """A :class:`~lightning.chain.forward.TxForwarder` over the TXS scope."""

    def __init__(self, pool: Pool, *, timeout_s: float = 10.0, registry: CollectorRegistry | None = None) -> None:
        self.pool = pool
        self._timeout_s = timeout_s
        self._forwarded = (
            Counter(
                "lightning_txs_forwarded",
                "Transactions this node forwarded to ordering nodes over the TXS scope (delivered)",
                registry=registry,
            )
            if registry is not None
            else None
        )

    async def forward(self, node_id: NodeId, raw_txs: list[bytes]) -> None:
        """Raises :class:`~lightning.chain.forward.ForwardError` if ``node_id`` could not be reached or broke the
        protocol; transactions it refuses are logged (debug) and dropped."""
        for batch in split_batches(raw_txs):
            results = await self._request(node_id, batch)
            if self._forwarded is not None:
                self._forwarded.inc(len(batch))
            refused = [r for r in results if r not in (ACCEPTED, DUPLICATE)]
            if refused:
                peer_log(logger, node_id).debug("refused %d forwarded transactions: %s", len(refused), refused[:8])

    async def _request(self, node_id: NodeId, batch: list[bytes]) -> list[str]:
        msg = {"txs": [[FORMAT_NATIVE, raw] for raw in batch]}
        try:
            reply = await self.pool.request(node_id, Scope.TXS, msg, timeout_s=self._timeout_s)
        except NetError as exc:
            raise ForwardError(f"forwarding to {node_id.short()}…: {exc}") from None
        results = reply.get("results") if isinstance(reply, dict) else None
        if (
            not isinstance(results, list)
            or len(results) != len(batch)
            or not all(isinstance(r, str) and len(r) <= _MAX_RESULT_CHARS for r in results)
        ):
            raise ForwardError(f"forwarding to {node_id.short()}…: the reply is not one result per transaction")
        return results
