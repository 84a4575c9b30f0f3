"""What a transaction method is (:class:`Method`: its wire name, argument schema, handler, what it spends, its docs)
and what its handler sees (:class:`TxContext`), with :class:`Revert` for a rule of the state that forbids the call.

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

__all__ = ["Handler", "Method", "Revert", "TxContext", "method"]


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


@dataclass(frozen=True)
class Method:
    """One transaction kind. ``name`` is a stable wire identifier: never rename one."""

    name: str
    schema: MapOf  # the arguments, checked by the decoder before anything runs
    handler: Handler  # runs the rules against the state; raises Revert
    sender: str  # who may sign it (docs)
    rule: str  # what the state requires, and what it does (docs; revert reasons say which rule failed)
    spends: str | None = None  # the argument whose amount leaves the sender's balance (mempool admission)

    def spent(self, args: dict[str, Any]) -> int:
        """The amount this call moves out of the sender's balance (0 if it moves none)."""
        return int(args.get(self.spends, 0)) if self.spends is not None else 0

    def __call__(self, ctx: TxContext, args: dict[str, Any]) -> None:
        self.handler(ctx, args)


def method(
    name: str, schema: MapOf, *, sender: str, rule: str, spends: str | None = None
) -> Callable[[Handler], Method]:
    """Decorate a handler into its :class:`Method` entry (list it in its module's ``METHODS``)."""

    def wrap(handler: Handler) -> Method:
        return Method(name, schema, handler, sender, rule, spends)

    return wrap
