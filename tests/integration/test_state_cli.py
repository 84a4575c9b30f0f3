"""`lightning account|stake|opt` against a real `lightning run --dev` node, and the state's JSON-RPC over HTTP."""

from __future__ import annotations

from typing import Any

from lightning.codec import decode
from lightning.crypto import SigningKey
from lightning.state import smt
from lightning.state.tx import sign_transaction
from tests.integration.harness import rpc, run_cli

OTHER = "11" * 32


def _ok(*args: str) -> str:
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_account_stake_and_opt_commands(spawn: Any) -> None:
    node = spawn("n")
    node.wait_ready()
    home = ("--home", str(node.home))
    out = _ok("account", "balance", *home)
    assert "balance: 1000000 FLK" in out and "nonce:   0" in out

    out = _ok("account", "transfer", OTHER, "12.5", *home)
    assert out.startswith(f"ok: transferred 12.5 FLK to {OTHER} (tx ")
    assert "balance: 12.5 FLK" in _ok("account", "balance", OTHER, *home, "--rpc", node.rpc_url)

    res = run_cli("account", "transfer", OTHER, "5000000", *home)
    assert res.returncode == 1 and "transaction rejected: insufficient balance" in res.stderr
    res = run_cli("account", "transfer", "nope", "1", *home)
    assert res.returncode == 2 and "not hex" in res.stderr  # a bad argument value: usage

    assert "staked 10 FLK" in _ok("stake", "deposit", "10", *home)
    assert "stake locked until epoch 2" in _ok("stake", "lock", "2", *home)
    res = run_cli("stake", "unstake", "1", *home)
    assert res.returncode == 1 and "stake is locked until epoch 2" in res.stderr
    out = _ok("stake", "info", *home)
    assert "staked:        1010 FLK (locked until epoch 2)" in out and "committee:     yes" in out

    assert "participation is now 'opted_out'" in _ok("opt", "out", *home)
    assert "participation: opted_out" in _ok("opt", "status", *home)
    assert "participation is now 'true'" in _ok("opt", "in", *home)
    res = run_cli("opt", "in", *home)
    assert res.returncode == 1 and "already participating" in res.stderr

    res = run_cli("account", "mint", OTHER, "1", *home)  # the dev home's account is the faucet
    assert res.returncode == 0 and "minted 1 FLK" in res.stdout, res.stderr
    assert "balance: 13.5 FLK" in _ok("account", "balance", OTHER, *home)


def test_state_rpc(spawn: Any) -> None:
    node = spawn("r")
    ports = node.wait_ready()
    url = node.rpc_url

    def result(method: str, *params: Any) -> Any:
        answer = rpc(url, method, list(params))
        assert "result" in answer, answer
        return answer["result"]

    def error(method: str, *params: Any) -> dict[str, Any]:
        answer = rpc(url, method, list(params))
        assert "error" in answer, answer
        return dict(answer["error"])

    node_id = ports["node_id"]
    assert result("flk_get_epoch") == 0
    assert result("flk_get_committee_members") == [node_id]
    info = result("flk_get_epoch_info")
    assert info["epoch"] == 0 and info["committee"] == [node_id] and info["end_ms"] > info["start_ms"]
    params = result("flk_get_protocol_params")
    assert params["min_stake"] == str(1000 * 10**18) and params["committee_size"] == 1
    me = result("flk_get_node_info", node_id)
    assert me["stake"] == str(1000 * 10**18) and me["participation"] == "true" and me["committee"] is True
    assert result("flk_get_staked", node_id) == me["stake"] and result("flk_get_locked", node_id) == "0"
    assert result("flk_get_node_registry") == [me]
    assert result("flk_get_reputation", node_id) is None
    assert result("flk_get_node_info", OTHER) is None

    # a transaction signed here, sent over RPC, its receipt waited for
    key = SigningKey(bytes.fromhex((node.home / "keystore" / "account.key").read_text().strip()))
    account = result("flk_get_account_info", key.public.hex)
    assert account["balance"] == str(10**6 * 10**18) and account["next_nonce"] == 1
    stx = sign_transaction(key, chain_id=1337, nonce=1, method="transfer", to=bytes.fromhex(OTHER), amount=7)
    sent = result("flk_send_txn", stx.raw.hex())
    assert sent == {"hash": stx.hash.hex(), "new": True}
    receipt = result("flk_get_txn_receipt", stx.hash.hex(), 10_000)
    assert receipt["status"] == "ok" and receipt["sender"] == key.public.hex and receipt["nonce"] == 1
    assert result("flk_get_flk_balance", OTHER) == "7"
    err = error("flk_send_txn", stx.raw.hex())  # a replay
    assert err["code"] == -32010 and err["data"] == {"code": "nonce_too_low"}
    wrong_chain = sign_transaction(key, chain_id=1, nonce=2, method="transfer", to=bytes.fromhex(OTHER), amount=7)
    assert error("flk_send_txn", wrong_chain.raw.hex())["data"] == {"code": "wrong_chain"}
    assert error("flk_send_txn", "c1c1")["data"] == {"code": "malformed"}
    assert error("flk_send_txn", "zz")["code"] == -32602
    assert error("flk_get_flk_balance", "12")["code"] == -32602
    assert error("flk_get_state_proof", "nope", "00")["code"] == -32602
    assert result("flk_get_txn_receipt", "00" * 32) is None

    # a proof of the recipient's row, checked against the root with nothing but the answer
    root = result("flk_get_state_root")
    assert root["height"] >= 1
    proof = result("flk_get_state_proof", "accounts", OTHER)
    assert proof["root"] == root["root"] and proof["value"] is not None
    value = bytes.fromhex(proof["value"])
    assert decode(value)["balance"] == 7
    path = smt.key_path("accounts", bytes.fromhex(OTHER))
    smt.verify_proof(
        bytes.fromhex(proof["root"]),
        path,
        smt.value_hash(value),
        smt.Proof.from_wire(decode(bytes.fromhex(proof["proof"]))),
    )
    absent = result("flk_get_state_proof", "accounts", "22" * 32)
    assert absent["value"] is None
    smt.verify_proof(
        bytes.fromhex(absent["root"]),
        smt.key_path("accounts", b"\x22" * 32),
        None,
        smt.Proof.from_wire(decode(bytes.fromhex(absent["proof"]))),
    )
    assert result("flk_get_node_status")["epoch"] == 0
    blocks = result("flk_get_blocks", 1, 4)
    assert len(blocks) == root["height"]
