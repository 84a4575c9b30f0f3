"""Block transfer between spawned nodes over QUIC (`lightning dev fetch`), wrong keys, a corrupting peer."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import trio

from lightning.blockstore import BLOCK_SIZE, hash_block, root_of_bytes, split_blocks, tree_from_block_hashes
from lightning.blockstore.tree import encode_proof_stream
from lightning.config import dump_toml, load_config
from lightning.crypto import SigningKey
from lightning.home import Home
from lightning.ids import NodeId
from lightning.net import QuicPool, ReplyWriter, Scope, StaticAdmission
from lightning.net.config import NetConfig
from tests.integration.harness import NodeProcess, http_get, lightning_cmd, rpc, run_cli


def _init(tmp_path: Path, name: str) -> Home:
    home = Home(tmp_path / name)
    res = run_cli("init", "--dev", "--home", str(home.root))
    assert res.returncode == 0, res.stderr
    return home


def _allow(home: Home, *node_ids: str) -> None:
    config = load_config(home.config_path)
    net = dataclasses.replace(config.net, allow=tuple(node_ids))
    home.config_path.write_text(dump_toml(dataclasses.replace(config, net=net)))


def _store(home: Home, path: Path) -> str:
    res = run_cli("dev", "store", str(path), "--home", str(home.root))
    assert res.returncode == 0, res.stderr
    return res.stdout.split()[0]


def _peer_arg(node: NodeProcess) -> str:
    return f"{node.ports['node_id']}@{node.ports['quic']}"


def test_two_nodes_move_64_mib_and_refuse_a_wrong_key(tmp_path: Path, spawn: Any) -> None:
    ha, hb = _init(tmp_path, "a"), _init(tmp_path, "b")
    ida, idb = str(ha.load_keys().node_id), str(hb.load_keys().node_id)
    _allow(ha, idb)
    _allow(hb, ida)
    a = spawn("a", "--listen-host", "127.0.0.1", init=False)
    b = spawn("b", "--listen-host", "127.0.0.2", init=False)
    a.wait_ready()
    b.wait_ready()
    assert b.ports["quic"].startswith("127.0.0.2:")

    data = os.urandom(64 * 1024 * 1024)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    root = _store(hb, src)
    out = tmp_path / "big.out"
    res = run_cli("dev", "fetch", root, "--peer", _peer_arg(b), "--home", str(ha.root), "-o", str(out), timeout=300)
    assert res.returncode == 0, res.stderr + a.log()
    assert f"{len(data)} bytes from {idb}" in res.stdout
    assert out.read_bytes() == data
    del data

    # The other way round, on the same connection.
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(BLOCK_SIZE + 7))
    small_root = _store(ha, small)
    res = run_cli("dev", "fetch", small_root, "--peer", _peer_arg(a), "--home", str(hb.root))
    assert res.returncode == 0, res.stderr + b.log()
    assert rpc(a.rpc_url, "flk_get_node_status")["result"]["peers"] == 1
    peers = rpc(a.rpc_url, "admin_net_peers")["result"]
    assert peers["peers"] == [idb] and peers["address"] == a.ports["quic"]
    _, _, metrics = http_get(f"http://{a.ports['rpc']}/metrics")
    assert b'lightning_net_bytes_total{direction="in",scope="blocks"}' in metrics

    # A node at b's address with another key: refused, nothing fetched.
    impostor = SigningKey.generate().public.hex
    missing = root_of_bytes(b"only b would have this").hex()
    res = run_cli("dev", "fetch", missing, "--peer", f"{impostor}@{b.ports['quic']}", "--home", str(ha.root))
    assert res.returncode == 1 and "proved node key" in res.stderr
    assert a.stop() == 0 and b.stop() == 0


EVIL_BYTES = 3 * BLOCK_SIZE + 12345


async def test_a_corrupting_peer_is_caught(tmp_path: Path, spawn: Any) -> None:
    ha, hb = _init(tmp_path, "a"), _init(tmp_path, "b")
    evil_key = SigningKey.generate()
    ida = str(ha.load_keys().node_id)
    _allow(ha, str(hb.load_keys().node_id), evil_key.public.hex)
    _allow(hb, ida)
    a = spawn("a", "--listen-host", "127.0.0.1", init=False)
    b = spawn("b", "--listen-host", "127.0.0.2", init=False)
    await trio.to_thread.run_sync(a.wait_ready)
    await trio.to_thread.run_sync(b.wait_ready)
    data = os.urandom(EVIL_BYTES)
    src = tmp_path / "obj.bin"
    src.write_bytes(data)
    root = await trio.to_thread.run_sync(_store, hb, src)
    assert root == root_of_bytes(data).hex()

    # The evil peer runs here, in process: it serves the object with one flipped bit in block 2.
    blocks = [bytes(b) for b in split_blocks(data)]
    tree = tree_from_block_hashes([hash_block(b) for b in blocks], len(data))
    corrupted = list(blocks)
    corrupted[2] = bytes([corrupted[2][0] ^ 1]) + corrupted[2][1:]

    async def serve_corrupt(peer: NodeId, msg: Any, out: ReplyWriter) -> None:
        await out.start({"len": len(data), "start": 0, "end": len(blocks)})
        for chunk in encode_proof_stream(tree, lambda i: corrupted[i]):
            await out.send(bytes(chunk))

    admission = StaticAdmission(nodes=[NodeId(bytes.fromhex(ida))], committee=[])
    evil = QuicPool(NetConfig(port=0), evil_key, host="127.0.0.3", admission=admission)
    evil.on_stream(Scope.BLOCKS, serve_corrupt)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(evil.run)
        evil_arg = f"{evil_key.public.hex}@{address[0]}:{address[1]}"
        home_args = ["--home", str(ha.root)]

        only_evil = await trio.run_process(
            [*lightning_cmd("dev", "fetch", root, "--peer", evil_arg), *home_args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert only_evil.returncode == 1 and b"block 2 or its proof does not match" in only_evil.stderr
        got = await trio.run_process([*lightning_cmd("dev", "get", root), *home_args], capture_stderr=True, check=False)
        assert got.returncode == 1  # nothing unverified was stored

        out = tmp_path / "obj.out"
        both = await trio.run_process(
            [
                *lightning_cmd("dev", "fetch", root, "--peer", evil_arg, "--peer", _peer_arg(b), "-o", str(out)),
                *home_args,
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert both.returncode == 0, both.stderr
        assert out.read_bytes() == data
        nursery.cancel_scope.cancel()
    assert "penalised: sent a block that does not verify (2 penalties)" in a.log()
    assert a.stop() == 0 and b.stop() == 0
