"""A node SIGKILLed in the middle of executing a block leaves the state of the previous block, intact.

The test hook ``LIGHTNING_TEST_STATE_PAUSE=HEIGHT:INDEX:FILE`` makes the executor stop inside block HEIGHT's LMDB
write transaction right after applying transaction INDEX, and create FILE; the test waits for FILE, so the kill
lands mid-block every time, without sleeping.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from lightning.crypto import SigningKey
from lightning.state.store import StateStore
from lightning.state.tx import sign_transaction
from tests.integration.harness import NodeProcess, rpc, run_cli

TO = b"\x33" * 32


def _wait_for_file(path: Path, node: NodeProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert node.proc is not None and node.proc.poll() is None, f"node exited:\n{node.log()}"
        assert time.monotonic() < deadline, f"the node never reached the pause point:\n{node.log()}"
        time.sleep(0.02)


def _result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, list(params))
    assert "result" in answer, answer
    return answer["result"]


def test_sigkill_mid_block_keeps_the_previous_state(tmp_path: Path) -> None:
    home = tmp_path / "n"
    assert run_cli("init", "--dev", "--home", str(home)).returncode == 0
    config = home / "config.toml"
    # no automatic beacon/epoch transactions: block heights are then exactly the test's own blocks
    config.write_text(config.read_text().replace("epoch_driver = true", "epoch_driver = false"))
    marker = tmp_path / "paused"
    node = NodeProcess(
        home,
        "--http-port",
        "0",
        "--rpc-port",
        "0",
        "--quic-port",
        "0",
        env={"LIGHTNING_TEST_STATE_PAUSE": f"2:0:{marker}"},
    ).start()
    try:
        node.wait_ready()
        key = SigningKey(bytes.fromhex((home / "keystore" / "account.key").read_text().strip()))

        def transfer(nonce: int, amount: int) -> str:
            stx = sign_transaction(key, chain_id=1337, nonce=nonce, method="transfer", to=TO, amount=amount)
            return str(_result(node.rpc_url, "flk_send_txn", stx.raw.hex())["hash"])

        first = transfer(1, 100)
        assert _result(node.rpc_url, "flk_get_txn_receipt", first, 10_000)["status"] == "ok"
        before = _result(node.rpc_url, "flk_get_state_root")
        assert before["height"] == 1
        second = transfer(2, 200)
        _wait_for_file(marker, node)  # block 2 has applied transaction 0 inside its write transaction
        node.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        assert node.proc.wait(10) == -signal.SIGKILL  # type: ignore[union-attr]
    finally:
        node.kill()

    with StateStore(home / "data" / "state", map_size=1 << 30) as store:
        head = store.head()
        assert head.height == 1 and head.state_root.hex() == before["root"]
        assert store.tree_root() == head.state_root  # the tree on disk is the one of block 1, not half of block 2
        with store.view() as view:
            assert view.account(TO).balance == 100 and view.account(key.public.raw).nonce == 1
        assert store.receipt(bytes.fromhex(second)) is None and store.block(2) is None

    again = NodeProcess(home, "--http-port", "0", "--rpc-port", "0", "--quic-port", "0").start()
    try:
        again.wait_ready()
        assert _result(again.rpc_url, "flk_get_state_root") == before
        stx = sign_transaction(key, chain_id=1337, nonce=2, method="transfer", to=TO, amount=200)
        _result(again.rpc_url, "flk_send_txn", stx.raw.hex())  # the mempool died with the process: send again
        assert _result(again.rpc_url, "flk_get_txn_receipt", stx.hash.hex(), 10_000)["height"] == 2
        assert _result(again.rpc_url, "flk_get_flk_balance", TO.hex()) == "300"
        assert again.stop() == 0
    finally:
        again.kill()
