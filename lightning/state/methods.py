"""Transaction methods on accounts, stakes, the node registry, content, params and slashing (epoch ones: epoch.py).

Each ``@method`` entry names its argument schema, who signs it, its rule and what it spends (``method.py``); the
handler gets a :class:`TxContext` (the sender is authenticated and its nonce already consumed) and the method's
arguments (already checked against the schema by ``tx.py``), and raises :class:`Revert` with a reason when a rule of
the state forbids the call. Every entry is listed in ``METHODS`` (``registry.py`` collects them); docs/state.md's
method table is generated from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightning.amounts import MAX_AMOUNT
from lightning.state.method import Revert, TxContext, method
from lightning.state.records import CONTENT_CIDS, CONTENT_PROVIDERS, MINTS, NodeInfo
from lightning.state.registration import (
    MAX_REGISTRATION_BYTES,
    Registration,
    RegistrationError,
    verify_stake_registration,
)
from lightning.state.schema import AMOUNT, KEY, ListOf, MapOf, boolean, byte_string, integer, text

__all__ = ["AMOUNT_PARAMS", "METHODS", "PARAM_RULES", "check_param"]

MAX_PROVIDERS = 1024
MAX_CONTENT_UPDATES = 256
MAX_CID_BYTES = 128
MAX_EVIDENCE_BYTES = 16 * 1024

CONTENT_UPDATE = MapOf({"root": KEY, "remove": boolean}, {"cid": byte_string(max_len=MAX_CID_BYTES)})


def _short(b: bytes) -> str:
    return b.hex()[:16] + "…"


# -- accounts ---------------------------------------------------------------------------------------------------
@method(
    "transfer",
    MapOf({"to": KEY, "amount": AMOUNT}),
    sender="any",
    rule="balance ≥ amount",
    spends="amount",
)
def transfer(ctx: TxContext, args: dict[str, Any]) -> None:
    ctx.debit(ctx.sender, args["amount"])
    ctx.credit(args["to"], args["amount"])


@method(
    "mint",
    MapOf({"to": KEY, "amount": AMOUNT}),
    sender="the genesis `faucet`",
    rule="this epoch's mints to `to` + amount ≤ `faucet_mint_per_epoch`; supply grows",
)
def mint(ctx: TxContext, args: dict[str, Any]) -> None:
    faucet = ctx.view.meta("faucet", b"")
    if not faucet or ctx.sender != faucet:
        raise Revert("only the faucet account may mint")
    to, amount = args["to"], args["amount"]
    cap = ctx.param("faucet_mint_per_epoch")
    row = ctx.view.row(MINTS, to)
    minted = row["amount"] if row is not None and row["epoch"] == ctx.epoch else 0
    if minted + amount > cap:
        raise Revert(f"mint cap: {_short(to)} got {minted} this epoch; the cap is {cap} per epoch")
    ctx.view.put_row(MINTS, to, {"epoch": ctx.epoch, "amount": minted + amount})
    ctx.credit(to, amount)
    ctx.adjust_supply(amount)


# -- staking ----------------------------------------------------------------------------------------------------
def _owned_node(ctx: TxContext, node_id: bytes) -> NodeInfo:
    node = ctx.view.node(node_id)
    if node is None:
        raise Revert(f"node {_short(node_id)} is not registered")
    if node.owner != ctx.sender:
        raise Revert(f"only the owner of node {_short(node_id)} may do this")
    return node


def _stake_precheck(args: dict[str, Any], sender: bytes, chain_id: int) -> str | None:
    """Transaction acceptance refuses a stake whose registration could never verify (``bad_registration``)."""
    raw = args.get("registration")
    if raw is None:
        return None
    try:
        verify_stake_registration(raw, node=args["node"], owner=sender, chain_id=chain_id)
    except RegistrationError as exc:
        return str(exc)
    return None


@method(
    "stake",
    MapOf({"node": KEY, "amount": AMOUNT}, {"registration": byte_string(max_len=MAX_REGISTRATION_BYTES)}),
    sender="owner",
    rule=(
        "a new node's first stake carries its `registration` (docs/wire.md: signed by its node and consensus keys, "
        "this chain, owner = sender; keys unused anywhere) and registers it, participation `false`; later stakes by "
        "the owner only; a `registration` with a higher `seq` updates host/ports, never the keys; balance ≥ amount"
    ),
    spends="amount",
    precheck=_stake_precheck,
)
def stake(ctx: TxContext, args: dict[str, Any]) -> None:
    node_id, amount = args["node"], args["amount"]
    node = ctx.view.node(node_id)
    if node is not None and node.owner != ctx.sender:
        raise Revert(f"only the owner of node {_short(node_id)} may stake for it")
    raw = args.get("registration")
    if raw is None:
        if node is None:
            raise Revert(
                f"node {_short(node_id)} is not registered: its first stake must carry the registration its node "
                "key signed (`lightning keys registration`)"
            )
    else:
        reg = _registration(ctx, node_id, raw)
        ports = reg.ports
        if node is None:
            for key in (node_id, reg.consensus_key):
                if ctx.view.key_owner(key) is not None:
                    raise Revert(f"key {_short(key)} is already registered to a node")
            node = NodeInfo(
                owner=ctx.sender,
                consensus_key=reg.consensus_key,
                host=reg.host,
                ports=ports,
                participation="false",
                registered_epoch=ctx.epoch,
                registration_seq=reg.seq,
            )
            ctx.view.index_key(node_id, node_id)
            ctx.view.index_key(reg.consensus_key, node_id)
        else:
            if reg.consensus_key != node.consensus_key:
                raise Revert("a registered node's consensus key cannot change")
            if reg.seq <= node.registration_seq:
                raise Revert(
                    f"registration seq {reg.seq} is not above the one in force ({node.registration_seq}): a replayed "
                    f"or stale registration; sign a new one with seq {node.registration_seq + 1} or more"
                )
            node = node.with_(host=reg.host, ports=ports, registration_seq=reg.seq)
    ctx.debit(ctx.sender, amount)
    ctx.view.set_node(node_id, node.with_(stake=node.stake + amount))


def _registration(ctx: TxContext, node_id: bytes, raw: bytes) -> Registration:
    """The verified registration of ``node_id`` for this chain, owned by the sender, or Revert saying why not."""
    try:
        return verify_stake_registration(raw, node=node_id, owner=ctx.sender, chain_id=ctx.view.meta("chain_id"))
    except RegistrationError as exc:
        raise Revert(str(exc)) from None


@method(
    "stake_lock",
    MapOf({"node": KEY, "epochs": integer(1, 2**32)}),
    sender="owner",
    rule="1 ≤ epochs ≤ `max_stake_lock_epochs`; something staked; only extends: `stake_locked_until = epoch + epochs`",
)
def stake_lock(ctx: TxContext, args: dict[str, Any]) -> None:
    node = _owned_node(ctx, args["node"])
    epochs = args["epochs"]
    limit = ctx.param("max_stake_lock_epochs")
    if epochs > limit:
        raise Revert(f"a stake lock is at most {limit} epochs")
    if node.stake == 0:
        raise Revert("nothing is staked")
    until = ctx.epoch + epochs
    if until <= node.stake_locked_until:
        raise Revert(f"stake is already locked until epoch {node.stake_locked_until}")
    ctx.view.set_node(args["node"], node.with_(stake_locked_until=until))


@method(
    "unstake",
    MapOf({"node": KEY, "amount": AMOUNT}),
    sender="owner",
    rule=(
        "epoch ≥ `stake_locked_until`; amount ≤ stake; moves it to `locked`, `locked_until = epoch + stake_lock_epochs`"
    ),
)
def unstake(ctx: TxContext, args: dict[str, Any]) -> None:
    node = _owned_node(ctx, args["node"])
    amount = args["amount"]
    if ctx.epoch < node.stake_locked_until:
        raise Revert(f"stake is locked until epoch {node.stake_locked_until}")
    if amount > node.stake:
        raise Revert(f"node has {node.stake} staked, cannot unstake {amount}")
    until = ctx.epoch + ctx.param("stake_lock_epochs")
    ctx.view.set_node(
        args["node"], node.with_(stake=node.stake - amount, locked=node.locked + amount, locked_until=until)
    )


@method(
    "withdraw_unstaked",
    MapOf({"node": KEY}, {"recipient": KEY}),
    sender="owner",
    rule="`locked` > 0 and epoch ≥ `locked_until`; pays `recipient` (default: sender)",
)
def withdraw_unstaked(ctx: TxContext, args: dict[str, Any]) -> None:
    node = _owned_node(ctx, args["node"])
    if node.locked == 0:
        raise Revert("nothing unstaked to withdraw")
    if ctx.epoch < node.locked_until:
        raise Revert(f"unstaked funds are locked until epoch {node.locked_until}")
    ctx.credit(args.get("recipient", ctx.sender), node.locked)
    ctx.view.set_node(args["node"], node.with_(locked=0))


# -- participation ----------------------------------------------------------------------------------------------
def _node_for_opt(ctx: TxContext, node_id: bytes) -> NodeInfo:
    node = ctx.view.node(node_id)
    if node is None:
        raise Revert(f"node {_short(node_id)} is not registered")
    if ctx.sender not in (node.owner, node_id):
        raise Revert("only the node (its node key) or its owner may change its participation")
    return node


@method(
    "opt_in",
    MapOf({"node": KEY}),
    sender="owner or node key",
    rule="stake ≥ `min_stake`; `false→opted_in`, `opted_out→true`",
)
def opt_in(ctx: TxContext, args: dict[str, Any]) -> None:
    node = _node_for_opt(ctx, args["node"])
    min_stake = ctx.param("min_stake")
    if node.stake < min_stake:
        raise Revert(f"node has {node.stake} staked; participating needs {min_stake}")
    new = {"false": "opted_in", "opted_out": "true"}.get(node.participation)
    if new is None:
        raise Revert(f"node is already {'participating' if node.participation == 'true' else 'opted in'}")
    ctx.view.set_node(args["node"], node.with_(participation=new))


@method(
    "opt_out",
    MapOf({"node": KEY}),
    sender="owner or node key",
    rule="`true→opted_out`, `opted_in→false`",
)
def opt_out(ctx: TxContext, args: dict[str, Any]) -> None:
    node = _node_for_opt(ctx, args["node"])
    new = {"true": "opted_out", "opted_in": "false"}.get(node.participation)
    if new is None:
        raise Revert(f"node is already {'not participating' if node.participation == 'false' else 'opted out'}")
    ctx.view.set_node(args["node"], node.with_(participation=new))


# -- content registry -------------------------------------------------------------------------------------------
@method(
    "update_content_registry",
    MapOf({"updates": ListOf(CONTENT_UPDATE, MAX_CONTENT_UPDATES, unique_by="root")}),
    sender="node key of a registered node",
    rule="adds/removes the sender as provider; a CID maps to one root for good",
)
def update_content_registry(ctx: TxContext, args: dict[str, Any]) -> None:
    node_id = ctx.sender
    if ctx.view.node(node_id) is None:
        raise Revert("only registered nodes (signing with their node key) update the content registry")
    for u in args["updates"]:
        root = u["root"]
        providers = ctx.view.row(CONTENT_PROVIDERS, root) or []
        if u["remove"]:
            if node_id in providers:
                providers.remove(node_id)
        elif node_id not in providers:
            if len(providers) >= MAX_PROVIDERS:
                raise Revert(f"content {_short(root)} already has {MAX_PROVIDERS} providers")
            providers = sorted([*providers, node_id])
        if providers:
            ctx.view.put_row(CONTENT_PROVIDERS, root, providers)
        else:
            ctx.view.delete_row(CONTENT_PROVIDERS, root)
        cid = u.get("cid", b"")
        if cid and not u["remove"]:
            known = ctx.view.row(CONTENT_CIDS, cid)
            if known is not None and known != root:
                raise Revert(f"CID {cid.hex()[:16]}… already maps to root {_short(known)}")
            ctx.view.put_row(CONTENT_CIDS, cid, root)


# -- governance -------------------------------------------------------------------------------------------------
def _at_least(lo: int) -> Callable[[int], str | None]:
    return lambda v: None if v >= lo else f"must be at least {lo}"


# name -> check of a new value; amounts are in base units.
PARAM_RULES: dict[str, Callable[[int], str | None]] = {
    "epoch_time_ms": _at_least(1000),
    "committee_size": _at_least(1),
    "min_stake": _at_least(0),
    "stake_lock_epochs": _at_least(0),
    "max_block_transactions": _at_least(1),
    "faucet_mint_per_epoch": _at_least(0),
    "block_time_window_ms": _at_least(0),
    "max_stake_lock_epochs": _at_least(1),
    "beacon_no_reveal_slash": _at_least(0),
    "base_fee": _at_least(1),  # no free writes, ever (docs/fees.md)
    "fee_per_byte": _at_least(0),
    "protocol_txs_per_epoch": _at_least(4),  # a member's 4 a epoch: commit, reveal, vote, measurements
}
AMOUNT_PARAMS = ("min_stake", "faucet_mint_per_epoch", "beacon_no_reveal_slash", "base_fee", "fee_per_byte")


def check_param(name: str, value: int) -> str | None:
    rule = PARAM_RULES.get(name)
    if rule is None:
        return f"unknown protocol param {name!r} (known: {', '.join(sorted(PARAM_RULES))})"
    problem = rule(value)
    return None if problem is None else f"{name} {problem}"


@method(
    "change_protocol_param",
    MapOf({"name": text(64), "value": integer(0, MAX_AMOUNT)}),
    sender="genesis `governance`",
    rule="a known param within its bounds; applies at once",
)
def change_protocol_param(ctx: TxContext, args: dict[str, Any]) -> None:
    governance = ctx.view.meta("governance", b"")
    if not governance or ctx.sender != governance:
        raise Revert("only the governance account may change protocol params")
    problem = check_param(args["name"], args["value"])
    if problem is not None:
        raise Revert(problem)
    ctx.view.set_param(args["name"], args["value"])


@method(
    "slash",
    MapOf(
        {
            "node": KEY,
            "amount": AMOUNT,
            "evidence": MapOf({"kind": text(64), "data": byte_string(max_len=MAX_EVIDENCE_BYTES)}),
        }
    ),
    sender="—",
    rule=(
        "known evidence kind; today only `governance` (sender must be governance); amount ≤ stake + locked, "
        "taken from stake first; supply shrinks"
    ),
)
def slash(ctx: TxContext, args: dict[str, Any]) -> None:
    kind = args["evidence"]["kind"]
    if kind != "governance":
        raise Revert(f"unknown evidence kind {kind!r} (known: governance)")
    governance = ctx.view.meta("governance", b"")
    if not governance or ctx.sender != governance:
        raise Revert("governance evidence must be signed by the governance account")
    node = ctx.view.node(args["node"])
    if node is None:
        raise Revert(f"node {_short(args['node'])} is not registered")
    amount = args["amount"]
    if amount > node.stake + node.locked:
        raise Revert(f"node has {node.stake + node.locked} staked and unstaking; cannot slash {amount}")
    from_stake = min(amount, node.stake)
    ctx.view.set_node(
        args["node"], node.with_(stake=node.stake - from_stake, locked=node.locked - (amount - from_stake))
    )
    ctx.adjust_supply(-amount)


METHODS = (
    transfer,
    mint,
    stake,
    stake_lock,
    unstake,
    withdraw_unstaked,
    opt_in,
    opt_out,
    update_content_registry,
    change_protocol_param,
    slash,
)
