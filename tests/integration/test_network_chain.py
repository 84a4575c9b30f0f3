"""The chain across the network, on real processes (issue 10, items 2 and 3).

* A four-member committee plus a non-committee node with a short epoch: a transaction sent to the non-committee node
  commits everywhere; a stake deposit, an opt-out and an opt-in go through the CLI; the epoch driver runs the beacon
  (commit, reveal) and the epoch changes; every node reports the committee the executor's rules derive from the
  state (the beacon seed recomputed from the members' keys, the stake-weighted draw recomputed from the registry).
* Faults: a committee member SIGKILLed while it stores a large object fetched from a peer loses no committed state
  and leaves no half-visible object; a fifth node started after many blocks catches up by replay and serves content.

The default suite replays 500 blocks; the long variant (2000 blocks) runs with
``/work/venv/bin/pytest -m slow tests/integration/test_network_chain.py``.
"""

from __future__ import annotations

import http.client
import random
import signal
import time
from pathlib import Path
from typing import Any

import blake3
import pytest

from lightning.blockstore import BLOCK_SIZE, BlockStore, root_of_bytes
from lightning.chain.forward import decode_block_record
from lightning.codec import decode, encode
from lightning.crypto import Domain, SigningKey
from lightning.devnet import make_cluster
from lightning.devnet.genesis import ClusterLayout
from lightning.state.block import quorum
from lightning.state.epoch import SEED_DOMAIN, select_committee
from lightning.state.records import u64
from lightning.state.store import StateStore
from lightning.state.tx import sign_transaction
from tests.integration.harness import NodeProcess, http_get, rpc, run_cli

PORTS = ("--quic-port", "4300", "--rpc-port", "4240", "--http-port", "4220")
FLK = 10**18
TIMEOUT_S = 90.0


def _result(url: str, method: str, *params: Any) -> Any:
    answer = rpc(url, method, list(params))
    assert "result" in answer, answer
    return answer["result"]


def _wait_height(node: NodeProcess, height: int, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        root = _result(node.rpc_url, "flk_get_state_root")
        if root["height"] >= height:
            return dict(root)
        assert time.monotonic() < deadline, f"height {height} not reached ({root['height']}):\n{node.log()[-4000:]}"
        _result(node.rpc_url, "flk_get_blocks", root["height"] + 1, 1, 2000)  # long poll, not a sleep


def _metric(node: NodeProcess, name: str) -> float:
    _, _, body = http_get(f"http://{node.ports['rpc']}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _wait_epoch(node: NodeProcess, epoch: int, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    return _wait_until(node, lambda root: root["epoch"] >= epoch, f"epoch {epoch}", timeout)


def _wait_until(node: NodeProcess, ok: Any, what: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        root = _result(node.rpc_url, "flk_get_state_root")
        if ok(root):
            return dict(root)
        assert time.monotonic() < deadline, f"{what} not reached ({root}):\n{node.log()[-4000:]}"
        _result(node.rpc_url, "flk_get_blocks", root["height"] + 1, 1, 2000)


def _root_at(node: NodeProcess, height: int) -> bytes:
    """The state root after block ``height`` (= the next block's prev_state_root), as this node stored it."""
    _wait_height(node, height + 1)
    record = _result(node.rpc_url, "flk_get_blocks", height + 1, 1, 0)[0]
    return decode_block_record(bytes.fromhex(record))[0].prev_state_root


def _blocks(node: NodeProcess, upto: int) -> list[dict[str, Any]]:
    """Every stored record 1..upto decoded: {block, receipts: [receipt dict]}."""
    out: list[dict[str, Any]] = []
    while len(out) < upto:
        records = _result(node.rpc_url, "flk_get_blocks", len(out) + 1, 64, 0)
        assert records, f"node lacks block {len(out) + 1}"
        for raw in records[: upto - len(out)]:
            rec = decode(bytes.fromhex(raw))
            out.append({"block": rec["block"], "receipts": [decode(r) for r in rec["receipts"]]})
    return out


class _Sender:
    """Signs transactions in the test with a known key and sends them to a chosen node's RPC."""

    def __init__(self, key: SigningKey, chain_id: int) -> None:
        self.key = key
        self.chain_id = chain_id
        self.nonce = 0

    def send(self, node: NodeProcess, method: str, **args: Any) -> dict[str, Any]:
        self.nonce += 1
        stx = sign_transaction(self.key, chain_id=self.chain_id, nonce=self.nonce, method=method, **args)
        assert _result(node.rpc_url, "flk_send_txn", stx.raw.hex())["new"] is True
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            receipt = _result(node.rpc_url, "flk_get_txn_receipt", stx.hash.hex(), 5000)
            if receipt is not None:
                assert receipt["status"] == "ok", receipt
                return dict(receipt)
            assert time.monotonic() < deadline, f"no receipt for {method}:\n{node.log()[-4000:]}"


def _faucet(layout: ClusterLayout) -> _Sender:
    seed = bytes.fromhex((layout.root / "faucet.key").read_text().strip())
    return _Sender(SigningKey(seed), layout.chain_id)


def _node_key(node: NodeProcess) -> SigningKey:
    return SigningKey(bytes.fromhex((node.home / "keystore" / "node.key").read_text().strip()))


def _executed_in_epoch(node: NodeProcess, cli_output: str) -> int:
    """The epoch in which the transaction of the CLI's ``ok: … (tx HASH, block N)`` line executed.

    A block's ``epoch`` is the epoch it starts in; a ChangeEpoch vote completing a quorum inside the block changes it
    for the transactions after it. So walk the log from block 1, counting ok votes against the committee's quorum."""
    tx_hash, height = cli_output.rsplit("(tx ", 1)[1].split(")")[0].split(", block ")
    epoch, votes = 0, 0
    size = {0: len(_result(node.rpc_url, "flk_get_committee_members", 0))}
    for rec in _blocks(node, int(height)):
        for receipt in rec["receipts"]:
            if receipt["tx_hash"].hex() == tx_hash:
                return epoch
            if receipt["method"] == "change_epoch" and receipt["status"] == "ok":
                votes += 1
                if votes >= quorum(size[epoch]):
                    epoch, votes = epoch + 1, 0
                    size[epoch] = len(_result(node.rpc_url, "flk_get_committee_members", epoch))
    raise AssertionError(f"transaction {tx_hash} not in block {height}")


def _ok(*args: str) -> str:
    res = run_cli(*args, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


# -- item 2 ---------------------------------------------------------------------------------------------------------
def test_stake_opt_and_beacon_epoch_changes_move_the_committee(spawn: Any, tmp_path: Path) -> None:
    out = tmp_path / "c"
    layout = make_cluster(out, nodes=5, committee=4, host_base="127.81.0.1", epoch_time_ms=5000)
    nodes = [spawn(f"c/node-{i}", *PORTS, init=False) for i in range(1, 6)]
    for n in nodes:
        n.wait_ready()
    edge, leaver = nodes[4], nodes[0]
    ids = [n.node_id for n in layout.nodes]
    assert _result(edge.rpc_url, "flk_get_committee_members", 0) == ids[:4]

    # a transaction sent to the non-committee node commits and is visible on every node
    to = "46" * 32
    receipt = _faucet(layout).send(edge, "transfer", to=bytes.fromhex(to), amount=7 * FLK)
    for n in nodes:
        _wait_height(n, receipt["height"])
        assert _result(n.rpc_url, "flk_get_flk_balance", to) == str(7 * FLK)

    # stake (the non-committee node adds stake through itself) and opt-out (a committee member leaves)
    min_stake = int(_result(edge.rpc_url, "flk_get_protocol_params")["min_stake"])
    deposit_text = _ok("stake", "deposit", "500", "--home", str(edge.home))
    assert "staked 500 FLK" in deposit_text
    deposit_epoch = _executed_in_epoch(edge, deposit_text)
    out_text = _ok("opt", "out", "--home", str(leaver.home))
    assert "participation is now 'opted_out'" in out_text or "participation is now 'false'" in out_text
    out_epoch = _executed_in_epoch(edge, out_text)

    # the next epoch change applies it: the leaver is out of the committee
    _wait_epoch(edge, out_epoch + 1)
    after_out = out_epoch + 1
    assert _result(edge.rpc_url, "flk_get_node_info", ids[0])["participation"] == "false"
    assert ids[0] not in _result(edge.rpc_url, "flk_get_committee_members", after_out)
    # roles follow the current committee (issue 16, item 6): the leaver stops ordering and follows; the node that took
    # its seat (the only other eligible one: it stays in while the leaver is out) takes part in the consensus
    assert ids[4] in _result(edge.rpc_url, "flk_get_committee_members", after_out)
    assert _result(leaver.rpc_url, "flk_get_node_status")["committee"] is False
    assert _result(edge.rpc_url, "flk_get_node_status")["committee"] is True
    deadline, votes = time.monotonic() + TIMEOUT_S, _metric(edge, "lightning_consensus_votes_total")
    while _metric(edge, "lightning_consensus_votes_total") == votes:  # it votes on the blocks of its epochs
        assert time.monotonic() < deadline, "the node that joined the committee never voted"
        _wait_height(edge, _result(edge.rpc_url, "flk_get_state_root")["height"] + 1)
    tip = _result(edge.rpc_url, "flk_get_state_root")["height"]
    _wait_height(leaver, tip)  # the leaver follows

    # opt back in: from the change after that, five nodes are eligible again for four seats
    out_text = _ok("opt", "in", "--home", str(leaver.home), "--rpc", edge.rpc_url)
    # 'opted_in' until the next epoch change makes it 'true' — with 5 s epochs that change may come before the CLI
    # reads the registry back
    assert "participation is now 'opted_in'" in out_text or "participation is now 'true'" in out_text
    in_epoch = _executed_in_epoch(edge, out_text)
    assert in_epoch >= after_out
    _wait_epoch(edge, in_epoch + 1)
    assert _result(edge.rpc_url, "flk_get_node_info", ids[0])["participation"] == "true"

    # every epoch change so far, recomputed from the block log, the members' keys and the registry
    head = _wait_epoch(edge, in_epoch + 1)
    final_epoch = head["epoch"]
    registry = {n["node_id"]: n for n in _result(edge.rpc_url, "flk_get_node_registry")}
    for n in nodes:
        _wait_height(n, head["height"])
    log = _blocks(edge, head["height"])
    reveals: dict[int, dict[str, str]] = {}  # epoch -> node id -> reveal, from ok beacon_reveal transactions
    commits: dict[int, set[str]] = {}
    for rec in log:
        for receipt in rec["receipts"]:  # an unpaid transaction is skipped without a receipt: match by index
            raw = rec["block"]["txs"][receipt["index"]]
            if receipt["status"] != "ok" or receipt["method"] not in ("beacon_commit", "beacon_reveal"):
                continue
            args = decode(raw)["tx"]["args"]
            if receipt["method"] == "beacon_commit":
                commits.setdefault(args["epoch"], set()).add(receipt["sender"].hex())
            else:
                reveals.setdefault(args["epoch"], {})[receipt["sender"].hex()] = args["reveal"].hex()
    keys = {n.node_id: _node_key(node) for n, node in zip(layout.nodes, nodes, strict=True)}
    slash = int(_result(edge.rpc_url, "flk_get_protocol_params")["beacon_no_reveal_slash"])
    slashed = {i: 0 for i in ids}  # a member that committed but did not reveal is slashed at the change (rare)

    def stakes_at(e: int) -> dict[str, int]:
        """Every node's stake at the change out of epoch ``e``, once its non-revealers were slashed."""
        return {i: min_stake + (500 * FLK if i == ids[4] and e >= deposit_epoch else 0) - slashed[i] for i in ids}

    assert any(reveals.get(e) for e in range(final_epoch)), "the beacon ran: some epoch change used reveals"
    for e in range(final_epoch):
        info, nxt = (_result(edge.rpc_url, "flk_get_epoch_info", k) for k in (e, e + 1))
        for member, reveal in reveals.get(e, {}).items():
            assert member in info["committee"]
            signed = keys[member].sign(Domain.BEACON, encode({"chain_id": layout.chain_id, "epoch": e}))
            assert blake3.blake3(signed).digest().hex() == reveal, "the reveal is the member's reproducible one"
        joined = b"".join(bytes.fromhex(m) + bytes.fromhex(r) for m, r in sorted(reveals.get(e, {}).items()))
        seed = blake3.blake3(SEED_DOMAIN + bytes.fromhex(info["seed"]) + u64(e) + joined).digest()
        assert nxt["seed"] == seed.hex(), f"the seed of epoch {e + 1}"
        for member in commits.get(e, set()) - set(reveals.get(e, {})):
            slashed[member] += slash
        stakes = stakes_at(e)
        if out_epoch <= e < in_epoch:
            del stakes[ids[0]]  # opted out at the change out of out_epoch, back in at the one out of in_epoch
        eligible = {bytes.fromhex(i): s for i, s in stakes.items() if s >= min_stake}
        expected = [m.hex() for m in select_committee(seed, eligible, 4)]
        assert nxt["committee"] == expected, f"the committee of epoch {e + 1} is the executor's draw"
        for n in nodes:
            assert _result(n.rpc_url, "flk_get_committee_members", e + 1) == expected
    if _result(edge.rpc_url, "flk_get_state_root")["epoch"] == final_epoch:  # no change (and slash) since
        stakes = {i: int(registry[i]["stake"]) for i in ids}
        assert stakes == stakes_at(final_epoch - 1), "the stakes the draws used"
    print(f"epochs 0..{final_epoch}; opt-out in {out_epoch}, opt-in in {in_epoch}, deposit in {deposit_epoch}")
    print("revealers per epoch:", {e: len(r) for e, r in reveals.items()})
    roots = {_root_at(n, head["height"] - 1) for n in nodes}
    assert len(roots) == 1, "every node has the same state"


# -- item 3 ---------------------------------------------------------------------------------------------------------
def _staging_writers(home: Path) -> int:
    with BlockStore(home / "data" / "blockstore", map_size=1 << 30) as s:
        return s.statistics().staging_writers


def _blocks_until(node: NodeProcess, sender: _Sender, height: int) -> None:
    """One transaction per block until ``node`` is at ``height``."""
    while _result(node.rpc_url, "flk_get_state_root")["height"] < height:
        sender.send(node, "mint", to=b"\x47" * 32, amount=1)


def _cluster_with_objects(
    spawn: Any, tmp_path: Path, host_base: str
) -> tuple[list[NodeProcess], _Sender, dict[str, tuple[str, bytes]]]:
    """Four committee members running (node-5 of the layout is not started); a small and a large object stored on
    the first member. Returns the members, the faucet, and name -> (root, data)."""
    layout = make_cluster(tmp_path / "c", nodes=5, committee=4, host_base=host_base)
    members = [spawn(f"c/node-{i}", *PORTS, init=False) for i in range(1, 5)]
    for n in members:
        n.wait_ready()
    objects = {}
    for name, data in (
        ("small", random.Random(3).randbytes(3 * BLOCK_SIZE + 7)),
        ("big", random.Random(4).randbytes(96 * BLOCK_SIZE + 1)),
    ):
        (tmp_path / name).write_bytes(data)
        root = _ok("dev", "store", str(tmp_path / name), "--home", str(members[0].home)).split()[0]
        assert root == root_of_bytes(data).hex()
        objects[name] = (root, data)
    return members, _faucet(layout), objects


def test_sigkill_mid_content_write_loses_no_state_and_no_object(spawn: Any, tmp_path: Path) -> None:
    members, faucet, objects = _cluster_with_objects(spawn, tmp_path, "127.82.0.1")
    victim = members[1]
    (small_root, small), (big_root, big) = objects["small"], objects["big"]

    _blocks_until(members[0], faucet, 5)
    # the victim already holds the small object (fetched from the origin and stored) before the kill
    status, _, body = http_get(f"http://{victim.ports['http']}/services/0/blake3/{small_root}")
    assert status == 200 and body == small
    # the victim fetches the big object from a peer for a client that reads the first bytes, then stops reading
    host, port = victim.ports["http"].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", f"/services/0/blake3/{big_root}")
    response = conn.getresponse()
    assert response.status == 200
    assert response.read(1000) == big[:1000]
    deadline = time.monotonic() + TIMEOUT_S
    while _staging_writers(victim.home) == 0:  # the victim is storing the object (observed in its LMDB)
        assert time.monotonic() < deadline, f"the victim never staged the object:\n{victim.log()[-4000:]}"
        time.sleep(0.02)
    committed = _result(victim.rpc_url, "flk_get_state_root")
    victim.stop(signal.SIGKILL)
    conn.close()

    # on disk: the committed state is there, and the object is either whole or absent (staging swept)
    with StateStore(victim.home / "data" / "state", map_size=1 << 30) as store:
        head = store.head()
        assert head.height >= committed["height"]
        assert store.tree_root() == head.state_root
    with BlockStore(victim.home / "data" / "blockstore", map_size=1 << 30) as bs:
        assert bs.statistics().staging_writers == 0
        if bs.has(bytes.fromhex(big_root)):
            assert bs.get_info(bytes.fromhex(big_root)).length == len(big)
    got = tmp_path / "got"
    res = run_cli("dev", "get", big_root, "--home", str(victim.home), "-o", str(got))
    assert (res.returncode == 0 and got.read_bytes() == big) or (res.returncode == 1 and not got.exists()), res
    print(f"big object after the kill: {'whole' if res.returncode == 0 else 'absent'}")
    res = run_cli("dev", "get", small_root, "--home", str(victim.home), "-o", str(got))
    assert res.returncode == 0 and got.read_bytes() == small, "an object stored before the kill is intact"

    # the others kept committing; the restarted victim catches up to the same state and serves the object whole
    _blocks_until(members[0], faucet, committed["height"] + 3)
    victim = spawn("c/node-2", *PORTS, init=False)
    victim.wait_ready()
    last = faucet.send(members[2], "mint", to=b"\x47" * 32, amount=1)
    _wait_height(victim, last["height"])
    assert _root_at(victim, committed["height"]) == _root_at(members[0], committed["height"])
    status, _, body = http_get(f"http://{victim.ports['http']}/services/0/blake3/{big_root}")
    assert status == 200 and body == big


def _late_node_replays_and_serves(spawn: Any, tmp_path: Path, host_base: str, replay_blocks: int) -> None:
    members, faucet, objects = _cluster_with_objects(spawn, tmp_path, host_base)
    # many blocks later a fifth node starts from genesis, replays them all, and serves content from its peers
    _blocks_until(members[0], faucet, replay_blocks)
    late = spawn("c/node-5", *PORTS, init=False)
    late.wait_ready()
    _wait_height(late, _result(members[0].rpc_url, "flk_get_state_root")["height"])  # replayed from its peers
    stored = _result(late.rpc_url, "flk_get_blocks", 1, 64, 0)
    assert [decode_block_record(bytes.fromhex(r))[0].height for r in stored[:3]] == [1, 2, 3], "it has every block"
    last = faucet.send(late, "mint", to=b"\x47" * 32, amount=1)  # through the caught-up late node
    for n in (late, *members):
        _wait_height(n, last["height"])
        assert _result(n.rpc_url, "flk_get_flk_balance", (b"\x47" * 32).hex()) == str(faucet.nonce)
    assert _root_at(late, replay_blocks) == _root_at(members[3], replay_blocks)
    for name, (root, data) in objects.items():
        status, _, body = http_get(f"http://{late.ports['http']}/services/0/blake3/{root}")
        assert status == 200 and body == data, name


def test_late_node_replays_500_blocks_and_serves_content(spawn: Any, tmp_path: Path) -> None:
    _late_node_replays_and_serves(spawn, tmp_path, "127.84.0.1", replay_blocks=500)


@pytest.mark.slow
def test_late_node_replays_2000_blocks_and_serves_content(spawn: Any, tmp_path: Path) -> None:
    _late_node_replays_and_serves(spawn, tmp_path, "127.83.0.1", replay_blocks=2000)
