"""The registry of transaction kinds: every entry complete, and the one table the decoder, executor, mempool and
docs read."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning.state.method import Method
from lightning.state.registry import METHODS, markdown_table
from lightning.state.schema import AMOUNT, MapOf
from lightning.state.tx import TxMalformed, sign_transaction
from lightning.testing.devchain import derive_key


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_entry_is_complete(name: str) -> None:
    m = METHODS[name]
    assert isinstance(m, Method) and m.name == name
    assert name.isidentifier() and name == name.lower() and len(name) <= 64  # the decoder's limit on method names
    assert isinstance(m.schema, MapOf)
    assert callable(m.handler) and not isinstance(m.handler, Method)
    assert m.sender.strip() and m.rule.strip() and "|" not in m.sender + m.rule  # a docs table cell each
    if m.spends is not None:
        assert m.schema.required.get(m.spends) is AMOUNT, f"{name} spends {m.spends!r}, which must be a required amount"


def test_spending_methods_are_what_admission_checks() -> None:
    assert {n for n, m in METHODS.items() if m.spends} == {"transfer", "stake"}
    assert METHODS["transfer"].spent({"to": bytes(32), "amount": 5}) == 5
    assert METHODS["unstake"].spent({"node": bytes(32), "amount": 5}) == 0


def test_the_decoder_checks_arguments_against_the_registry() -> None:
    key = derive_key(0, "registry")
    with pytest.raises(TxMalformed, match=r"transfer\.args: missing field 'amount'"):
        sign_transaction(key, chain_id=7, nonce=1, method="transfer", to=bytes(32))
    with pytest.raises(TxMalformed, match="unknown method 'teleport'"):
        sign_transaction(key, chain_id=7, nonce=1, method="teleport")
    stx = sign_transaction(key, chain_id=7, nonce=1, method="transfer", to=bytes(32), amount=1)
    assert stx.tx.method in METHODS


def test_docs_table_is_generated_from_the_registry() -> None:
    text = (Path(__file__).parents[3] / "docs" / "state.md").read_text()
    assert markdown_table() in text, "docs/state.md is stale: paste markdown_table() over its table"
