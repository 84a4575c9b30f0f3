"""Every method a node registers is documented, docs/rpc.md is the reference generated from those registrations, and
the Lightning method names this node implements stay registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning.rpc import Dispatcher
from lightning.rpc.reference import node_dispatcher, render_markdown

DOC = Path(__file__).parents[3] / "docs" / "rpc.md"

# Names shared with Fleek Network's Lightning (core/rpc/src/api/{flk,net}.rs), served here with its data.
LIGHTNING_NAMES = [
    "flk_ping",
    "flk_health",
    "flk_metrics",
    "flk_get_flk_balance",
    "flk_get_locked",
    "flk_get_staked",
    "flk_get_stake_locked_until",
    "flk_get_locked_time",
    "flk_get_node_info",
    "flk_get_node_info_epoch",
    "flk_get_public_keys",
    "flk_get_account_info",
    "flk_get_staking_amount",
    "flk_get_committee_members",
    "flk_get_genesis_committee",
    "flk_get_epoch",
    "flk_get_epoch_info",
    "flk_get_total_supply",
    "flk_get_protocol_params",
    "flk_node_has_sufficient_stake",
    "flk_get_node_registry",
    "flk_get_reputation",
    "flk_get_state_root",
    "flk_get_state_proof",
    "flk_send_txn",
    "net_peerCount",
    "net_version",
    "net_listening",
    "rpc.discover",
]


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory: pytest.TempPathFactory) -> Dispatcher:
    return node_dispatcher(tmp_path_factory.mktemp("rpc-reference"))


def test_every_registered_method_is_documented(dispatcher: Dispatcher) -> None:
    gaps = {name: dispatcher.doc(name).missing() for name in dispatcher.methods}
    assert {name: gap for name, gap in gaps.items() if gap} == {}
    for name in dispatcher.methods:
        for p in dispatcher.doc(name).params:
            assert p.schema, f"{name}: param {p.name} has no type annotation"


def test_lightning_names_are_served(dispatcher: Dispatcher) -> None:
    assert [n for n in LIGHTNING_NAMES if n not in dispatcher.methods] == []


def test_docs_rpc_md_is_generated_from_the_registrations(dispatcher: Dispatcher) -> None:
    expected = render_markdown(dispatcher.openrpc())
    assert DOC.exists(), "docs/rpc.md is missing: run `python -m lightning.rpc.reference docs/rpc.md`"
    text = DOC.read_text()
    for name in dispatcher.methods:
        assert f"\n### {name}\n" in text, f"docs/rpc.md lacks {name}"
    assert text == expected, "docs/rpc.md is stale: run `python -m lightning.rpc.reference docs/rpc.md`"
