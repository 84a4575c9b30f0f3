"""Who pays what for a transaction: the fee of a paid transaction, and which protocol transactions run free.

Theory of operation (docs/fees.md)
----------------------------------
Every transaction is one of two kinds, named by its method's ``fee`` (``method.py``):

==========  ==========================================================  =========================================
kind        price                                                       who may send it
==========  ==========================================================  =========================================
paid        ``base_fee + fee_per_byte * len(signed bytes)``, from the   anyone whose balance covers the fee
            sender's balance to the protocol fund (``meta.protocol_fund``)
protocol    free                                                        its ``role`` only (``committee``: a
                                                                        member of the current committee;
                                                                        ``node``: a registered node with stake
                                                                        ≥ ``min_stake``), signing with its node
                                                                        key, at most ``protocol_txs_per_epoch``
                                                                        per node per epoch (``protocol_txs``)
==========  ==========================================================  =========================================

A transaction that fails its kind's condition is **unpaid**. The mempool refuses it at acceptance (``Costs`` here is
what it reads: the same rules the executor applies), and if one reaches a block anyway (a faulty leader, a balance
spent by an earlier transaction, a role lost at an epoch change) the executor skips it: no state, no receipt, no nonce
bump. A paid transaction whose method then reverts still pays: the fee buys the receipt.

Fees move FLK from balances to the fund, so ``supply`` (balances + stakes + unstaking + fund) does not change; the
rewards issue distributes the fund. Nothing here reads a clock or iterates an unordered container.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from lightning.state.method import Method
from lightning.state.records import META, PARAMS, PROTOCOL_TXS, Account, StateView, u64
from lightning.state.tx import SignedTransaction

__all__ = [
    "FEE_PARAMS",
    "FUND",
    "Costs",
    "FeeRules",
    "Refusal",
    "add_to_fund",
    "count_protocol_tx",
    "protocol_count",
]

FUND = "protocol_fund"  # meta key: base units collected from fees, not yet distributed
FEE_PARAMS = ("base_fee", "fee_per_byte", "protocol_txs_per_epoch")


@dataclass(frozen=True)
class Refusal:
    """Why a transaction is unpaid: ``code`` is a stable mempool rejection code (docs/state.md)."""

    code: str
    message: str


@dataclass(frozen=True)
class FeeRules:
    """The params, epoch and committee that price and authorise transactions, read once per state (they change only
    with a ``change_protocol_param`` or an epoch change: see :meth:`stale_after`)."""

    base_fee: int
    fee_per_byte: int
    protocol_txs_per_epoch: int
    min_stake: int
    epoch: int
    committee: frozenset[bytes]

    @classmethod
    def of(cls, view: StateView) -> FeeRules:
        epoch = view.epoch
        committee = view.committee(epoch)
        return cls(
            base_fee=view.param("base_fee"),
            fee_per_byte=view.param("fee_per_byte"),
            protocol_txs_per_epoch=view.param("protocol_txs_per_epoch"),
            min_stake=view.param("min_stake"),
            epoch=epoch,
            committee=frozenset(committee.members) if committee is not None else frozenset(),
        )

    def fee(self, size: int) -> int:
        """The fee of a paid transaction of ``size`` signed bytes."""
        return self.base_fee + self.fee_per_byte * size

    @staticmethod
    def stale_after(writes: Container[tuple[str, bytes]]) -> bool:
        """Whether rows written by one transaction (an overlay's writes) may change the rules."""
        return (META, b"epoch") in writes or any((PARAMS, name.encode()) in writes for name in _RULE_PARAMS)


_RULE_PARAMS = (*FEE_PARAMS, "min_stake")


def protocol_count(view: StateView, epoch: int, node_id: bytes) -> int:
    """Free protocol transactions ``node_id`` has executed in ``epoch``."""
    n = view.row(PROTOCOL_TXS, u64(epoch) + node_id)
    return n if isinstance(n, int) else 0


def count_protocol_tx(view: StateView, epoch: int, node_id: bytes) -> None:
    view.put_row(PROTOCOL_TXS, u64(epoch) + node_id, protocol_count(view, epoch, node_id) + 1)


def add_to_fund(view: StateView, amount: int) -> None:
    if amount:
        view.set_meta(FUND, view.meta(FUND, 0) + amount)


class Costs:
    """Prices and authorises transactions against one state view (``rules`` read from it, or passed in when the
    caller keeps them per head). The executor and the mempool's acceptance both use it, so they agree."""

    def __init__(self, view: StateView, rules: FeeRules | None = None) -> None:
        self.view = view
        self.rules = rules if rules is not None else FeeRules.of(view)

    def account(self, sender: bytes) -> Account:
        return self.view.account(sender)

    def fee(self, stx: SignedTransaction, method: Method) -> int:
        """What ``stx`` pays (0 for a protocol transaction)."""
        return 0 if method.protocol else self.rules.fee(len(stx.raw))

    def refusal(self, stx: SignedTransaction, method: Method, *, pending: int = 0) -> Refusal | None:
        """Why protocol transaction ``stx`` is not free for its sender now (None: it is), given ``pending`` more of
        the sender's protocol transactions that would execute first."""
        assert method.protocol
        rules, sender = self.rules, bytes(stx.sender)
        if method.role == "committee":
            if sender not in rules.committee:
                return Refusal(
                    "not_authorized",
                    f"{method.name} is free only from a member of epoch {rules.epoch}'s committee (its node key); "
                    f"{sender.hex()[:16]}… is not one",
                )
        else:
            node = self.view.node(sender)
            if node is None or node.stake == 0 or node.stake < rules.min_stake:
                return Refusal(
                    "not_authorized",
                    f"{method.name} is free only from a registered node with stake ≥ min_stake (its node key); "
                    f"{sender.hex()[:16]}… is not one",
                )
        used = protocol_count(self.view, rules.epoch, sender) + pending
        if used >= rules.protocol_txs_per_epoch:
            return Refusal(
                "protocol_limit",
                f"node {sender.hex()[:16]}… already has {used} protocol transactions in epoch {rules.epoch}; "
                f"the limit is {rules.protocol_txs_per_epoch} (protocol_txs_per_epoch)",
            )
        return None
