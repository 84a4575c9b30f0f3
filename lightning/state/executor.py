"""The executor: a pure function of (state, chain head, block) -> (changed rows, receipts).

Theory of operation
-------------------
Every node runs the same blocks through :func:`execute_block` and must reach the same state, so the function reads
nothing but its arguments: no clock (the block's ``timestamp_ms`` is the only time), no randomness (the committee
beacon comes from transactions), no floats, no iteration over unordered containers (table scans are in key order),
and every stored value is canonical msgpack. The caller (``store.py``) runs it inside one LMDB write transaction,
writes the returned rows and the new state root in that same transaction, and commits: a block is applied entirely
or not at all.

1. The block header is checked against the head and the state (height, parent, previous state root, epoch,
   proposer in the epoch's committee, timestamp not below the parent's, size, transactions root). Any mismatch raises
   :class:`InvalidBlock` and nothing is written.
2. Each transaction then goes through these stages; the first failure decides its receipt:

   ==========  =========================================================  ===================  ===========
   stage       failure                                                    receipt status       nonce bumps
   ==========  =========================================================  ===================  ===========
   decode      not canonical, unknown method, bad argument types          ``invalid``          no
   chain       ``chain_id`` differs from the state's                      ``invalid``          no
   signature   does not verify under ``Domain.TRANSACTION``               ``invalid``          no
   nonce       ``nonce != account nonce + 1`` (replays, gaps)             ``invalid``          no
   payment     unpaid: balance < fee, or a protocol transaction from      none (skipped)       no
               outside its role or over its per-epoch count (fees.py)
   method      a rule of the method (balance, owner, epoch, limits …)     ``reverted`` +reason yes
   ==========  =========================================================  ===================  ===========

   An ``invalid`` transaction changes nothing: no one can be charged for bytes they may not have signed. An unpaid
   one changes nothing and leaves no receipt either (it is listed in :attr:`Execution.skipped`, which is not
   stored): whoever put it in the block pays for its bytes, not the state. Past the payment stage the sender has
   provably authorised this exact transaction and paid for it (the fee goes to the protocol fund; a protocol
   transaction is counted against its node's allowance), so its nonce is consumed and the fee kept even if the
   method reverts (a reverted transaction cannot be replayed later, when the rules might let it pass). A method
   runs against a child overlay: on :class:`Revert` the overlay is dropped, leaving only the nonce bump and fee.
3. The executor returns the overlay's writes (``(table, key) -> bytes | None``), the receipts and the skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import blake3

from lightning.state.block import Block, ChainHead
from lightning.state.errors import StateError
from lightning.state.fees import Costs, FeeRules, add_to_fund, count_protocol_tx
from lightning.state.method import Revert, TxContext
from lightning.state.records import KV, MISSING, Account, StateView, encode_record
from lightning.state.registry import METHODS
from lightning.state.tx import SignedTransaction, TxMalformed, check_signature, decode_transaction

__all__ = [
    "Execution",
    "InvalidBlock",
    "Overlay",
    "Receipt",
    "Skipped",
    "execute_block",
]


class InvalidBlock(StateError):
    """A block that does not extend the current head or breaks a block-level rule; nothing was applied."""


class _Record:
    """A typed row written to an overlay, encoded only when its bytes are needed (once per block at most)."""

    __slots__ = ("obj", "raw")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.raw: bytes | None = None

    def encoded(self) -> bytes:
        if self.raw is None:
            self.raw = encode_record(self.obj)
        return self.raw


class Overlay:
    """Writes layered over a base :class:`KV`. ``child()`` gives a layer that ``merge()`` folds back in, or that
    is simply dropped (a reverted transaction). Typed rows (``put_record``) stay objects until their bytes are
    needed, so a row written several times in a block is encoded once."""

    def __init__(self, base: KV) -> None:
        self.base = base
        self._writes: dict[tuple[str, bytes], bytes | _Record | None] = {}

    def get(self, table: str, key: bytes) -> bytes | None:
        hit = self._writes.get((table, key), self)
        if hit is self:
            return self.base.get(table, key)
        return hit.encoded() if isinstance(hit, _Record) else hit  # type: ignore[return-value]  # bytes | None

    def get_record(self, table: str, key: bytes) -> Any:
        """The typed row written here or below, or ``MISSING`` if the row must be read as bytes."""
        hit = self._writes.get((table, key), self)
        if hit is self:
            get_record = getattr(self.base, "get_record", None)
            return MISSING if get_record is None else get_record(table, key)
        return hit.obj if isinstance(hit, _Record) else MISSING

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._writes[(table, key)] = value

    def put_record(self, table: str, key: bytes, obj: Any) -> None:
        self._writes[(table, key)] = _Record(obj)

    def delete(self, table: str, key: bytes) -> None:
        self._writes[(table, key)] = None

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        rows = dict(self.base.scan(table, prefix))
        for (t, k), v in self._writes.items():
            if t == table and k.startswith(prefix):
                if v is None:
                    rows.pop(k, None)
                else:
                    rows[k] = v.encoded() if isinstance(v, _Record) else v
        yield from sorted(rows.items())

    @property
    def writes(self) -> dict[tuple[str, bytes], bytes | None]:
        """Every row written, as bytes (``None``: deleted)."""
        return {k: v.encoded() if isinstance(v, _Record) else v for k, v in self._writes.items()}

    def child(self) -> Overlay:
        return Overlay(self)

    def merge(self) -> None:
        assert isinstance(self.base, Overlay)
        self.base._writes.update(self._writes)


@dataclass(frozen=True)
class Receipt:
    tx_hash: bytes
    height: int
    index: int
    sender: bytes  # empty for an undecodable transaction
    nonce: int
    method: str
    status: str  # "ok" | "reverted" | "invalid"
    reason: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash,
            "height": self.height,
            "index": self.index,
            "sender": self.sender,
            "nonce": self.nonce,
            "method": self.method,
            "status": self.status,
            "reason": self.reason,
        }

    @classmethod
    def from_wire(cls, v: Any) -> Receipt:
        return cls(**v)


@dataclass(frozen=True)
class Skipped:
    """An unpaid transaction in a block: it wrote nothing and has no receipt (kept in memory only, for the mempool
    and logs)."""

    tx_hash: bytes
    index: int
    sender: bytes
    nonce: int
    method: str
    code: str  # a mempool rejection code: insufficient_balance | not_authorized | protocol_limit
    reason: str


@dataclass(frozen=True)
class Execution:
    writes: dict[tuple[str, bytes], bytes | None]
    receipts: tuple[Receipt, ...]
    epoch: int  # the state's epoch after the block
    skipped: tuple[Skipped, ...] = ()


def check_header(view: StateView, head: ChainHead, block: Block) -> None:
    """Block-level rules. Raises :class:`InvalidBlock`."""
    if block.height != head.height + 1:
        raise InvalidBlock(f"block {block.height} does not follow the head at height {head.height}")
    if block.parent != head.block_hash:
        raise InvalidBlock(f"block {block.height}: parent {block.parent.hex()[:16]}… is not the head")
    if block.prev_state_root != head.state_root:
        raise InvalidBlock(f"block {block.height}: previous state root differs from this node's (diverged state?)")
    if block.epoch != view.epoch:
        raise InvalidBlock(f"block {block.height}: epoch {block.epoch}, the state is in epoch {view.epoch}")
    if block.timestamp_ms < head.timestamp_ms:
        raise InvalidBlock(f"block {block.height}: timestamp is below the parent's")
    limit = view.param("max_block_transactions")
    if len(block.txs) > limit:
        raise InvalidBlock(f"block {block.height}: {len(block.txs)} transactions, the limit is {limit}")
    committee = view.committee(view.epoch)
    if committee is None or block.proposer not in committee.members:
        raise InvalidBlock(f"block {block.height}: proposer {block.proposer.short()}… is not in the committee")
    if block.computed_txs_root != block.txs_root:
        raise InvalidBlock(f"block {block.height}: transactions root does not match")


def execute_block(base: KV, head: ChainHead, block: Block, *, on_tx: Callable[[int], None] | None = None) -> Execution:
    """Execute ``block`` on the state in ``base`` (which it never writes). Raises :class:`InvalidBlock`.

    ``on_tx(index)`` is called after each transaction (test hook: a crash point inside a block)."""
    overlay = Overlay(base)
    view = StateView(overlay)
    check_header(view, head, block)
    run = _Run(overlay, view, view.meta("chain_id"), block)
    for index, raw in enumerate(block.txs):
        run.apply(index, raw)
        if on_tx is not None:
            on_tx(index)
    return Execution(overlay.writes, tuple(run.receipts), view.epoch, tuple(run.skipped))


class _Run:
    """One block's execution: the receipts and skipped so far, and the fee rules (re-read only after a transaction
    that may change them)."""

    def __init__(self, overlay: Overlay, view: StateView, chain_id: int, block: Block) -> None:
        self.overlay = overlay
        self.view = view
        self.chain_id = chain_id
        self.block = block
        self.costs = Costs(view)
        self.receipts: list[Receipt] = []
        self.skipped: list[Skipped] = []

    def apply(self, index: int, raw: bytes) -> None:
        block = self.block
        try:
            stx = decode_transaction(raw)
        except TxMalformed as exc:
            self.receipts.append(
                Receipt(blake3.blake3(raw).digest(), block.height, index, b"", 0, "", "invalid", str(exc))
            )
            return

        def invalid(reason: str) -> None:
            self.receipts.append(
                Receipt(stx.hash, block.height, index, stx.sender, stx.nonce, stx.tx.method, "invalid", reason)
            )

        if stx.tx.chain_id != self.chain_id:
            return invalid(f"signed for chain {stx.tx.chain_id}, this is chain {self.chain_id}")
        bad = check_signature(stx)
        if bad is not None:
            return invalid(bad)
        view = self.view
        acct = view.account(stx.sender)
        if stx.nonce != acct.nonce + 1:
            return invalid(f"nonce {stx.nonce}, expected {acct.nonce + 1}")
        m = METHODS[stx.tx.method]
        costs = self.costs
        if m.protocol:
            refusal = costs.refusal(stx, m)
            if refusal is not None:
                return self._skip(index, stx, refusal.code, refusal.message)
            count_protocol_tx(view, costs.rules.epoch, stx.sender)
            view.set_account(stx.sender, Account(acct.balance, stx.nonce))
        else:
            fee = costs.fee(stx, m)
            if acct.balance < fee:
                return self._skip(index, stx, "insufficient_balance", f"balance {acct.balance} < fee {fee}")
            view.set_account(stx.sender, Account(acct.balance - fee, stx.nonce))
            add_to_fund(view, fee)
        self.receipts.append(self._run_method(index, stx))

    def _skip(self, index: int, stx: SignedTransaction, code: str, reason: str) -> None:
        self.skipped.append(Skipped(stx.hash, index, stx.sender, stx.nonce, stx.tx.method, code, reason))

    def _run_method(self, index: int, stx: SignedTransaction) -> Receipt:
        block = self.block
        child = self.overlay.child()
        ctx = TxContext(StateView(child), stx.sender, block.timestamp_ms, block.height)
        status, reason = "ok", ""
        try:
            METHODS[stx.tx.method].handler(ctx, stx.tx.args)
        except Revert as r:
            status, reason = "reverted", r.reason
        else:
            stale = FeeRules.stale_after(child._writes)
            child.merge()
            if stale:
                self.costs = Costs(self.view)
        return Receipt(stx.hash, block.height, index, stx.sender, stx.nonce, stx.tx.method, status, reason)
