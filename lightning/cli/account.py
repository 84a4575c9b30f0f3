"""``lightning account …``, ``lightning stake …``, ``lightning opt …``: signed transactions through a node's RPC.

Each command signs with the home's account key (``--key FILE`` signs with another key file, e.g. a devnet's
``faucet.key``), sends the transaction to the node at ``--rpc`` (default: the home's running node, from
``run/ports.json``), waits for its receipt and prints the outcome; a reverted or rejected transaction exits 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from lightning.cli.common import (
    DevOpt,
    HomeOpt,
    RpcOpt,
    flk,
    flk_in_text,
    node_rpc_url,
    parse_amount,
    resolve_home,
)
from lightning.cli.registration import home_registration
from lightning.config import load_config
from lightning.crypto import PublicKey, SigningKey, parse_public_key
from lightning.errors import LightningError
from lightning.home import Home
from lightning.ids import NodeId
from lightning.state.tx import TxMalformed, sign_transaction

__all__ = ["account_app", "opt_app", "stake_app"]

account_app = typer.Typer(help="Account balances, transfers and faucet mints.", no_args_is_help=True)
stake_app = typer.Typer(help="Stake for this home's node: deposit, lock, unstake, withdraw.", no_args_is_help=True)
opt_app = typer.Typer(help="Opt this home's node in or out of participation.", no_args_is_help=True)

KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key", metavar="FILE", help="Sign with this key file instead of the home's account key.", show_default=False
    ),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, metavar="SECONDS", help="How long to wait for the receipt.")
]
RecipientArg = Annotated[str, typer.Argument(metavar="TO", help="Recipient address (64 hex digits).")]

RECEIPT_POLL_MS = 5000


@dataclass
class _Client:
    home: Home
    url: str

    def call(self, method: str, *params: Any, timeout_s: float = 10.0) -> Any:
        from lightning.cli.main import rpc_call  # the CLI's one synchronous client

        return rpc_call(self.url, method, list(params), timeout_s=timeout_s)


def _client(home: Path | None, rpc: str | None, dev: bool = False) -> _Client:
    """The home (it must exist unless --rpc names the node) and the RPC URL of its node."""
    h = resolve_home(home, dev, must_exist=rpc is None)
    return _Client(h, node_rpc_url(h, rpc, dev=dev, explicit_home=home is not None))


def _signer(client: _Client, key_file: Path | None) -> SigningKey:
    if key_file is None:
        return client.home.load_key("account")
    try:
        text = key_file.read_text("ascii").strip()
    except FileNotFoundError:
        raise typer.BadParameter(f"{key_file}: no such file", param_hint="--key") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{key_file}: not a key file ({exc})", param_hint="--key") from None
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise typer.BadParameter(
            f"{key_file}: not a key file (expected 64 hex digits of an Ed25519 seed)", param_hint="--key"
        )
    return SigningKey(seed)


def _address(text: str, name: str) -> PublicKey:
    """An account address argument; a malformed one is a usage error (exit 2)."""
    try:
        return parse_public_key(text)
    except LightningError as exc:
        raise typer.BadParameter(f"{exc}", param_hint=name) from None


_amount = parse_amount
_flk = flk


def _send(client: _Client, key: SigningKey, method: str, timeout_s: float, **args: Any) -> dict[str, Any]:
    """Sign, send, wait for the receipt; return it if the transaction succeeded, raise LightningError otherwise."""
    chain_id = client.call("flk_get_node_status")["chain_id"]
    nonce = client.call("flk_get_account_info", key.public.hex)["next_nonce"]
    try:
        stx = sign_transaction(key, chain_id=chain_id, nonce=nonce, method=method, **args)
    except TxMalformed as exc:
        raise LightningError(f"cannot build the transaction: {exc}") from None
    tx_hash = client.call("flk_send_txn", stx.raw.hex())["hash"]
    deadline = time.monotonic() + timeout_s
    while True:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            raise LightningError(
                f"transaction {tx_hash} sent, but no receipt within {timeout_s:g} s; it may still execute "
                "(ask flk_get_txn_receipt)"
            )
        wait_ms = min(left_ms, RECEIPT_POLL_MS)
        receipt = client.call("flk_get_txn_receipt", tx_hash, wait_ms, timeout_s=wait_ms / 1000 + 10)
        if receipt is not None:
            break
    if receipt["status"] != "ok":
        reason = flk_in_text(str(receipt["reason"]))
        raise LightningError(f"transaction {receipt['status']} (tx {tx_hash}, block {receipt['height']}): {reason}")
    return dict(receipt)


def _done(message: str, receipt: dict[str, Any]) -> None:
    typer.echo(f"ok: {message} (tx {receipt['tx_hash']}, block {receipt['height']})")


def _node_id(client: _Client) -> str:
    return str(NodeId.of(client.home.load_key("node")))


# -- account -------------------------------------------------------------------------------------------------------
@account_app.command("balance")
def balance(
    address: Annotated[
        str | None, typer.Argument(metavar="ADDRESS", help="Account address (default: this home's account).")
    ] = None,
    home: HomeOpt = None,
    dev: DevOpt = False,
    rpc: RpcOpt = None,
) -> None:
    """Print an account's FLK balance and nonce."""
    parsed = _address(address, "ADDRESS") if address else None
    client = _client(home, rpc, dev)
    addr = parsed.hex if parsed else client.home.load_key("account").public.hex
    info = client.call("flk_get_account_info", addr)
    typer.echo(f"address: {info['address']}")
    typer.echo(f"balance: {_flk(info['balance'])}")
    typer.echo(f"nonce:   {info['nonce']}")


def _payment(method: str, done: str, example: str, doc: str) -> Callable[..., None]:
    """``account transfer`` and ``account mint``: the same arguments, signed with ``--key`` or the account key."""

    def command(
        to: RecipientArg,
        # a default rather than Annotated: postponed annotations are evaluated where ``example`` is not visible
        amount: str = typer.Argument(metavar="AMOUNT", help=f"FLK amount, e.g. {example}"),
        home: HomeOpt = None,
        dev: DevOpt = False,
        rpc: RpcOpt = None,
        key: KeyOpt = None,
        timeout: TimeoutOpt = 60.0,
    ) -> None:
        recipient = _address(to, "TO")
        units = _amount(amount)
        client = _client(home, rpc, dev)
        receipt = _send(client, _signer(client, key), method, timeout, to=recipient.raw, amount=units)
        _done(f"{done} {_flk(units)} to {recipient.hex}", receipt)

    command.__doc__ = doc
    return command


account_app.command("transfer")(_payment("transfer", "transferred", "12.5", "Transfer FLK to another account."))
account_app.command("mint")(
    _payment("mint", "minted", "100", "Mint FLK from the faucet account (sign with its key: --key faucet.key).")
)


# -- stake ---------------------------------------------------------------------------------------------------------
@stake_app.command("deposit")
def deposit(
    amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="FLK amount to stake, e.g. 1000")],
    home: HomeOpt = None,
    dev: DevOpt = False,
    rpc: RpcOpt = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Address peers reach this node at (first deposit: default node.listen_host; later: re-registers)",
        ),
    ] = None,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Stake FLK for this home's node; the first deposit registers it (a registration signed with the home's node
    and consensus keys, owned by its account key); with --host, a later deposit updates its host and ports."""
    units = _amount(amount)
    client = _client(home, rpc, dev)
    keys = client.home.load_keys()
    args: dict[str, Any] = {"node": keys.node_id, "amount": units}
    info = client.call("flk_get_node_info", str(keys.node_id))
    if info is None or host is not None:
        config = load_config(client.home.config_path)
        chain_id = client.call("flk_get_node_status")["chain_id"]
        seq = 1 if info is None else int(info.get("registration_seq", 0)) + 1
        args["registration"] = home_registration(
            client.home, config, owner=keys.account.public.raw, chain_id=chain_id, host=host, seq=seq
        )
    receipt = _send(client, keys.account, "stake", timeout, **args)
    _done(f"staked {_flk(units)} for node {keys.node_id}", receipt)


@stake_app.command("lock")
def lock(
    epochs: Annotated[
        int, typer.Argument(metavar="EPOCHS", help="Epochs to lock the stake for (no unstaking until then).", min=1)
    ],
    home: HomeOpt = None,
    dev: DevOpt = False,
    rpc: RpcOpt = None,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Lock this node's stake for EPOCHS epochs."""
    client = _client(home, rpc, dev)
    keys = client.home.load_keys()
    receipt = _send(client, keys.account, "stake_lock", timeout, node=keys.node_id, epochs=epochs)
    info = client.call("flk_get_node_info", str(keys.node_id))
    _done(f"stake locked until epoch {info['stake_locked_until']}", receipt)


@stake_app.command("unstake")
def unstake(
    amount: Annotated[str, typer.Argument(metavar="AMOUNT", help="FLK amount to unstake, e.g. 500")],
    home: HomeOpt = None,
    dev: DevOpt = False,
    rpc: RpcOpt = None,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Unstake FLK; it can be withdrawn after the protocol's lock period (`lightning stake withdraw`)."""
    units = _amount(amount)
    client = _client(home, rpc, dev)
    keys = client.home.load_keys()
    receipt = _send(client, keys.account, "unstake", timeout, node=keys.node_id, amount=units)
    info = client.call("flk_get_node_info", str(keys.node_id))
    _done(f"unstaked {_flk(units)}; withdrawable from epoch {info['locked_until']}", receipt)


@stake_app.command("withdraw")
def withdraw(
    home: HomeOpt = None,
    dev: DevOpt = False,
    rpc: RpcOpt = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="ADDRESS", help="Recipient (default: this home's account).")
    ] = None,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Withdraw unstaked FLK once its lock period is over."""
    recipient = _address(to, "--to") if to else None
    client = _client(home, rpc, dev)
    keys = client.home.load_keys()
    args: dict[str, Any] = {"node": keys.node_id}
    if recipient is not None:
        args["recipient"] = recipient.raw
    before = client.call("flk_get_node_info", str(keys.node_id))
    receipt = _send(client, keys.account, "withdraw_unstaked", timeout, **args)
    _done(f"withdrew {_flk(before['locked'] if before else 0)}", receipt)


@stake_app.command("info")
def stake_info(home: HomeOpt = None, dev: DevOpt = False, rpc: RpcOpt = None) -> None:
    """Show this node's stake, locks and participation."""
    client = _client(home, rpc, dev)
    _print_node(client, _node_id(client))


def _print_node(client: _Client, node_id: str) -> None:
    info = client.call("flk_get_node_info", node_id)
    if info is None:
        typer.echo(f"node {node_id} is not registered (stake to register it: `lightning stake deposit AMOUNT`)")
        return
    typer.echo(f"node:          {info['node_id']}")
    typer.echo(f"staked:        {_flk(info['stake'])} (locked until epoch {info['stake_locked_until']})")
    typer.echo(f"unstaking:     {_flk(info['locked'])} (withdrawable from epoch {info['locked_until']})")
    typer.echo(f"participation: {info['participation']}")
    typer.echo(f"committee:     {'yes' if info['committee'] else 'no'}")
    typer.echo(f"reputation:    {'-' if info['reputation'] is None else info['reputation']}")


# -- opt -----------------------------------------------------------------------------------------------------------
def _opt(method: str, home: Path | None, rpc: str | None, timeout: float, dev: bool = False) -> None:
    client = _client(home, rpc, dev)
    keys = client.home.load_keys()
    receipt = _send(client, keys.account, method, timeout, node=keys.node_id)
    info = client.call("flk_get_node_info", str(keys.node_id))
    _done(f"participation is now {info['participation']!r} (takes effect at the next epoch)", receipt)


@opt_app.command("in")
def opt_in(
    home: HomeOpt = None,
    dev: DevOpt = False,
    rpc: RpcOpt = None,
    timeout: TimeoutOpt = 60.0,
    force: Annotated[
        bool, typer.Option("--force", help="Opt in even if the node has not caught up with the chain.")
    ] = False,
) -> None:
    """Opt this node in: it participates (may join committees) from the next epoch. Refused until the node has
    caught up with the chain (a member elected while far behind would stall its committee)."""
    if not force:
        check_caught_up(_client(home, rpc, dev))
    _opt("opt_in", home, rpc, timeout, dev)


def check_caught_up(client: _Client) -> None:
    """Raise LightningError unless this home's node (asked over its own RPC) reports it has caught up."""
    node_id = _node_id(client)
    ports = client.home.read_ports()
    own = _Client(client.home, f"http://{ports['rpc']}/rpc/v0") if ports is not None else client
    try:
        status = own.call("flk_get_node_status")
    except LightningError as exc:
        raise LightningError(
            f"cannot tell whether this node has caught up ({exc}); pass --force to opt in anyway"
        ) from None
    if status.get("node_id") != node_id:
        raise LightningError(
            f"{own.url} answers as node {status.get('node_id')}, not this home's node {node_id}, so it cannot tell "
            "whether this node has caught up; start this home's node (`lightning run`), or pass --force"
        )
    if "syncing" not in status:
        raise LightningError(f"{own.url} does not report whether it has caught up; pass --force to opt in anyway")
    if status["syncing"]:
        head, best = status["head_height"], status["best_known_height"]
        if best > head:
            where = f"{best - head} blocks behind (at block {head}; peers have shown block {best})"
        else:
            where = f"still catching up with the chain (at block {head})"
        raise LightningError(
            f"node is {where}; wait until it has caught up (`lightning status` shows it), or pass --force"
        )


@opt_app.command("out")
def opt_out(home: HomeOpt = None, dev: DevOpt = False, rpc: RpcOpt = None, timeout: TimeoutOpt = 60.0) -> None:
    """Opt this node out: it stops participating from the next epoch."""
    _opt("opt_out", home, rpc, timeout, dev)


@opt_app.command("status")
def opt_status(home: HomeOpt = None, dev: DevOpt = False, rpc: RpcOpt = None) -> None:
    """Show this node's participation."""
    client = _client(home, rpc, dev)
    _print_node(client, _node_id(client))
