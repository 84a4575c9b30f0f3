"""A new operator's node joins a running dev chain through the CLI: `lightning stake deposit` signs its registration
from the home's keys; a later `--host` re-registers it with the next seq; a wallet-style blob for another owner is
useless to the home's account."""

from __future__ import annotations

from typing import Any

from lightning.home import Home
from lightning.state.tx import sign_transaction
from tests.integration.harness import rpc, run_cli


def _ok(*args: str) -> str:
    res = run_cli(*args)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_stake_deposit_registers_a_new_node_with_its_signed_registration(spawn: Any, tmp_path: Any) -> None:
    dev = spawn("dev")
    dev.wait_ready()
    url = dev.rpc_url
    new = tmp_path / "new"
    _ok("init", "--home", str(new))  # no node runs on it: every command goes to the dev node (--rpc)
    keys = Home(new).load_keys()
    account = keys.account.public.hex
    _ok("account", "transfer", account, "100", "--home", str(dev.home))
    target = ("--home", str(new), "--rpc", url)

    # without --host the config's wildcard listen_host cannot be registered
    res = run_cli("stake", "deposit", "10", *target)
    assert res.returncode == 1 and "pass --host" in res.stderr

    assert f"staked 10 FLK for node {keys.node_id}" in _ok("stake", "deposit", "10", *target, "--host", "10.9.9.9")
    info = rpc(url, "flk_get_node_info", [str(keys.node_id)])["result"]
    assert (info["owner"], info["host"], info["registration_seq"], info["participation"]) == (
        account,
        "10.9.9.9",
        1,
        "false",
    )
    assert info["ports"] == {"quic": 4300, "http": 4220, "pinger": 4350, "rpc": 4240}

    _ok("stake", "deposit", "1", *target, "--host", "node.example.org")  # re-registers: seq 2
    info = rpc(url, "flk_get_node_info", [str(keys.node_id)])["result"]
    assert (info["host"], info["registration_seq"], info["stake"]) == ("node.example.org", 2, str(11 * 10**18))
    _ok("stake", "deposit", "1", *target)  # no --host: no registration, host unchanged
    info = rpc(url, "flk_get_node_info", [str(keys.node_id)])["result"]
    assert (info["host"], info["registration_seq"]) == ("node.example.org", 2)

    # a blob printed for another owner (a wallet) is useless to this home's account: refused before it is ordered
    # (transaction acceptance checks the registration: bad_arguments), nothing changes
    chain_id = rpc(url, "flk_get_node_status")["result"]["chain_id"]
    blob = _ok(
        "keys", "registration", "--home", str(new), "--owner", "ab" * 32, "--host", "10.1.1.1", "--seq", "3",
        "--chain-id", str(chain_id),
    ).strip()  # fmt: skip
    nonce = rpc(url, "flk_get_account_info", [account])["result"]["next_nonce"]
    stx = sign_transaction(
        keys.account, chain_id=chain_id, nonce=nonce, method="stake", node=keys.node_id, amount=1,
        registration=bytes.fromhex(blob),
    )  # fmt: skip
    answer = rpc(url, "flk_send_txn", [stx.raw.hex()])
    assert answer["error"]["data"]["code"] == "bad_arguments", answer
    assert "the registration names owner abababab" in answer["error"]["message"]
    info = rpc(url, "flk_get_node_info", [str(keys.node_id)])["result"]
    assert (info["host"], info["registration_seq"]) == ("node.example.org", 2)
