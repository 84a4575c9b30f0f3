"""What a transaction method is (:class:`Method`: its wire name, argument schema, handler, what it spends, who pays
for it, its docs) and what its handler sees (:class:`TxContext`), with :class:`Revert` for a rule of the state that
forbids the call.

Every transaction kind is one ``@method(...)``-decorated handler in ``methods.py`` or ``epoch.py``; ``registry.py``
collects them into the one table that the decoder (``tx.py``), the executor, the mempool and docs/state.md read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightning.ids import AccountId
from lightning.state.records import Account, StateView
from lightning.state.schema import MapOf

__all__ = ["FEE_KINDS", "ROLES", "Handler", "Method", "Revert", "TxContext", "method"]

FEE_KINDS = ("paid", "protocol")  # paid: the sender pays fee(tx); protocol: free for the role, within a count
ROLES = ("committee", "node")  # a current committee member's node key; a staked registered node's node key


class Revert(Exception):  # control flow inside the executor, never escapes it
    """Raised by a method handler: the transaction fails with ``reason``; only its nonce bump remains."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class TxContext:
    """What a method handler sees: typed state (a child overlay), the authenticated sender, the block's time."""

    view: StateView
    sender: AccountId
    timestamp_ms: int
    height: int

    @property
    def epoch(self) -> int:
        return self.view.epoch

    def param(self, name: str) -> int:
        return self.view.param(name)

    def debit(self, address: bytes, amount: int) -> None:
        acct = self.view.account(address)
        if acct.balance < amount:
            raise Revert(f"insufficient balance: {address.hex()[:16]}… has {acct.balance}, needs {amount}")
        self.view.set_account(address, Account(acct.balance - amount, acct.nonce))

    def credit(self, address: bytes, amount: int) -> None:
        acct = self.view.account(address)
        self.view.set_account(address, Account(acct.balance + amount, acct.nonce))

    def adjust_supply(self, delta: int) -> None:
        self.view.set_meta("supply", self.view.meta("supply", 0) + delta)


Handler = Callable[[TxContext, dict[str, Any]], None]
Precheck = Callable[[dict[str, Any], bytes, int], "str | None"]  # (args, sender, chain id) -> why it can never run


@dataclass(frozen=True)
class Method:
    """One transaction kind. ``name`` is a stable wire identifier: never rename one."""

    name: str
    schema: MapOf  # the arguments, checked by the decoder before anything runs
    handler: Handler  # runs the rules against the state; raises Revert
    sender: str  # who may sign it (docs)
    rule: str  # what the state requires, and what it does (docs; revert reasons say which rule failed)
    spends: str | None = None  # the argument whose amount leaves the sender's balance (mempool admission)
    fee: str = "paid"  # FEE_KINDS (docs/fees.md)
    role: str | None = None  # ROLES: whose protocol transaction runs free (``fee="protocol"`` only)
    # A stateless check of the arguments against the sender and chain id that transaction acceptance runs too (after
    # the signature), so a transaction no state could make valid is refused before it is ordered: the reason, or None.
    precheck: Precheck | None = None

    def __post_init__(self) -> None:
        assert self.fee in FEE_KINDS, self.fee
        assert (self.fee == "protocol") == (self.role is not None), f"{self.name}: a protocol method names its role"
        assert self.role is None or self.role in ROLES, self.role
        assert self.fee == "paid" or self.spends is None, f"{self.name}: a free protocol method cannot spend"

    @property
    def protocol(self) -> bool:
        return self.fee == "protocol"

    def spent(self, args: dict[str, Any]) -> int:
        """The amount this call moves out of the sender's balance (0 if it moves none)."""
        return int(args.get(self.spends, 0)) if self.spends is not None else 0

    def __call__(self, ctx: TxContext, args: dict[str, Any]) -> None:
        self.handler(ctx, args)


def method(
    name: str,
    schema: MapOf,
    *,
    sender: str,
    rule: str,
    spends: str | None = None,
    fee: str = "paid",
    role: str | None = None,
    precheck: Precheck | None = None,
) -> Callable[[Handler], Method]:
    """Decorate a handler into its :class:`Method` entry (list it in its module's ``METHODS``)."""

    def wrap(handler: Handler) -> Method:
        return Method(name, schema, handler, sender, rule, spends, fee, role, precheck)

    return wrap
