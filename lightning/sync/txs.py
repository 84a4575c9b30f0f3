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
is refused with ``bad_request`` and the peer is penalised, as is a peer whose batch is mostly transactions no honest
node forwards (malformed, badly signed, for another chain: an honest node forwards only what its own mempool
accepted), and a peer that forwards more than ``UNPAID_TOLERATED`` transactions whose senders cannot pay (or may not
send a free protocol transaction) within ``UNPAID_WINDOW_S``, if they are most of what it forwarded there (an honest
node's state may lag by a block, so a few are tolerated). A batch that arrives before this node's state is open (the
pool starts first) is refused with
``not_found``; the sender retries.
"""

from __future__ import annotations

import logging
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
_DISHONEST: Final = frozenset({"malformed", "bad_signature", "wrong_chain"})
# Results an honest forwarder causes only now and then (its state may lag ours by a block or two): it judged the sender
# able to pay. Many of them from one peer, most of what it forwards, is a flood of unpaid writes.
_UNPAID: Final = frozenset({"insufficient_balance", "not_authorized", "protocol_limit"})
UNPAID_WINDOW_S: Final = 30.0
UNPAID_TOLERATED: Final = 64  # unpaid transactions per peer and window before the majority rule applies
_UNPAID_PEERS_MAX: Final = 4096
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
        self._unpaid: dict[NodeId, list[float]] = {}  # peer -> [window start, unpaid, forwarded] in its window
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
        results: list[str] = []
        for i, (tag, raw) in enumerate(entries):
            if i and i % 16 == 0:
                await trio.lowlevel.checkpoint()  # a full batch is ~256 signature checks: let others run between
            results.append(self._submit(peer, tag, raw))
        if self._metrics is not None:
            for result in results:
                self._metrics.received.labels(result).inc()
        dishonest = sum(1 for r in results if r in _DISHONEST)
        if 2 * dishonest > len(results):
            peer_log(logger, peer).warning(
                "forwarded %d invalid transactions in a batch of %d (malformed, badly signed or for another chain)",
                dishonest,
                len(results),
            )
            self.pool.penalize(peer, "txs invalid transactions")
        else:
            self._judge_unpaid(peer, results)
        await trio.lowlevel.checkpoint()
        return {"results": results}

    def _judge_unpaid(self, peer: NodeId, results: list[str]) -> None:
        """Penalise a peer that forwards many unpaid transactions, most of what it forwards, within a window."""
        now = trio.current_time()
        row = self._unpaid.get(peer)
        if row is None or now - row[0] >= UNPAID_WINDOW_S:
            if row is None and len(self._unpaid) >= _UNPAID_PEERS_MAX:
                self._unpaid = {p: r for p, r in self._unpaid.items() if now - r[0] < UNPAID_WINDOW_S}
                if len(self._unpaid) >= _UNPAID_PEERS_MAX:
                    self._unpaid.pop(next(iter(self._unpaid)))
            row = self._unpaid[peer] = [now, 0.0, 0.0]
        row[1] += sum(1 for r in results if r in _UNPAID)
        row[2] += len(results)
        if row[1] > UNPAID_TOLERATED and 2 * row[1] > row[2]:
            peer_log(logger, peer).warning(
                "forwarded %d transactions whose senders cannot pay (of %d) within %.0f s",
                int(row[1]),
                int(row[2]),
                now - row[0],
            )
            self.pool.penalize(peer, "txs unpaid transactions")
            self._unpaid[peer] = [now, 0.0, 0.0]

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
