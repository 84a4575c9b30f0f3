"""Content across a 4-node cluster (issue 10, item 1): IPFS content fetched by node A from the origin is served by
node D (and B, C) from peers once the origin is gone; `lightning bench` over the four nodes completes without errors
with its per-node distribution; a peer that serves corrupted blocks is caught through the services path, penalised,
and another peer is used."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import trio

from lightning.blockstore import BLOCK_SIZE, hash_block, root_of_bytes, split_blocks, tree_from_block_hashes
from lightning.blockstore.tree import encode_proof_stream
from lightning.crypto import SigningKey
from lightning.devnet import make_cluster
from lightning.ids import NodeId
from lightning.net import QuicPool, ReplyWriter, Scope, StaticAdmission
from lightning.net.config import NetConfig
from lightning.net.errors import NotHere
from tests.integration.gateway_thread import running_gateway
from tests.integration.harness import http_get, run_cli
from tests.ipfs_fixtures import fixtures

DEADLINE_S = 60.0
BENCH_REQUESTS = 200


def _metrics(ports: dict[str, Any]) -> str:
    return http_get(f"http://{ports['rpc']}/metrics")[2].decode()


def _counter(text: str, pattern: str) -> float:
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


def _learned(ports: dict[str, Any]) -> float:
    return _counter(_metrics(ports), r"^lightning_resolver_learned_total (\S+)$")


def test_ipfs_content_from_peers_without_the_origin_and_bench_over_four_nodes(spawn: Any, tmp_path: Path) -> None:
    fx = fixtures()["onemib.car"]
    make_cluster(tmp_path / "c", nodes=4, committee=1, host_base="127.71.0.1")
    with running_gateway([fx.path]) as (url, gateway):
        config = {"origin_ipfs": {"gateways": [url]}}
        nodes = [spawn(f"c/node-{k}", "--quic-port", "4300", init=False, config=config) for k in (1, 2, 3, 4)]
        ports = [n.wait_ready() for n in nodes]
        assert [p["quic"].split(":")[0] for p in ports] == [f"127.71.0.{k}" for k in (1, 2, 3, 4)]
        status, _, body = http_get(f"http://{ports[0]['http']}/services/0/ipfs/{fx.root}")
        assert status == 200 and body == fx.content
        assert gateway.car_requests == 1
    # The origin is gone from here on: whatever B, C, D serve comes from peers.
    assert http_get(f"http://{ports[0]['http']}/services/0/ipfs/{fx.root}")[2] == fx.content  # A: local copy

    deadline = time.monotonic() + DEADLINE_S
    for p in ports[1:]:  # B, C and D heard node A's resolver record
        while _learned(p) < 1:
            assert time.monotonic() < deadline, f"resolver record never reached {p['quic']}"
            time.sleep(0.05)
    d = ports[3]
    status, headers, body = http_get(f"http://{d['http']}/services/0/ipfs/{fx.root}")
    assert status == 200 and body == fx.content, (status, body[:200])
    assert headers["etag"] == f'"{fx.root}"'
    metrics = _metrics(d)
    assert _counter(metrics, r'^lightning_fetcher_bytes_total\{source="peer"\} (\S+)$') == len(fx.content)
    assert _counter(metrics, r'^lightning_fetcher_bytes_total\{source="origin"\} (\S+)$') == 0

    # Load over the four nodes: B and C fetch from peers on their first request, then serve locally.
    out = tmp_path / "bench.json"
    targets = [f"http://{p['http']}" for p in ports]
    args = ["bench", *(a for t in targets for a in ("--target", t)), "--cid", str(fx.root)]
    res = run_cli(*args, "--requests", str(BENCH_REQUESTS), "--concurrency", "8", "--json", str(out), timeout=120)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    total = report["total"]
    assert total["errors"] == 0 and total["errors_by_kind"] == {}, total
    assert total["ok"] == BENCH_REQUESTS and total["bytes"] == BENCH_REQUESTS * len(fx.content)
    assert list(report["nodes"]) == targets
    per_node = {name: s["ok"] for name, s in report["nodes"].items()}
    assert per_node == {t: BENCH_REQUESTS // 4 for t in targets}, per_node  # round-robin: even distribution
    for s in report["nodes"].values():
        assert s["errors"] == 0 and s["bytes"] == s["ok"] * len(fx.content)
        assert 0 < s["ttfb_ms"]["p50"] <= s["ttfb_ms"]["p99"] and s["ttfb_ms"]["p99"] <= s["ttfl_ms"]["p99"]
    print("bench per node:", json.dumps(report["nodes"]))  # the distribution, recorded in the test's output
    origin = [_counter(_metrics(p), r'^lightning_fetcher_bytes_total\{source="origin"\} (\S+)$') for p in ports]
    assert origin == [len(fx.content), 0, 0, 0]  # only A ever fetched from the origin


OBJECT_BYTES = 3 * BLOCK_SIZE + 777


class _InProcessPeer:
    """A peer in this process (a QuicPool with its own key) serving fixed objects over the blocks scope; objects
    listed in ``corrupt`` go out with a bit flipped in block 0."""

    def __init__(
        self, key: SigningKey, host: str, objects: dict[bytes, bytes], corrupt: set[bytes], allowed: NodeId
    ) -> None:
        self.key = key
        self.objects = objects
        self.corrupt = corrupt
        self.served: list[bytes] = []
        admission = StaticAdmission(nodes=[allowed], committee=[])
        self.pool = QuicPool(NetConfig(port=0), self.key, host=host, admission=admission)
        self.pool.on_stream(Scope.BLOCKS, self._serve)

    async def _serve(self, peer: NodeId, msg: Any, out: ReplyWriter) -> None:
        root = msg["root"]
        if root not in self.objects:
            raise NotHere("not here")
        data = self.objects[root]
        blocks = [bytes(b) for b in split_blocks(data)]
        tree = tree_from_block_hashes([hash_block(b) for b in blocks], len(data))
        if root in self.corrupt:
            blocks[0] = bytes([blocks[0][0] ^ 0x01]) + blocks[0][1:]
        self.served.append(root)
        await out.start({"len": len(data), "start": 0, "end": len(blocks)})
        for chunk in encode_proof_stream(tree, lambda i: blocks[i]):
            await out.send(bytes(chunk))


async def test_a_corrupting_peer_is_penalised_and_another_peer_serves(spawn: Any, tmp_path: Path) -> None:
    """Peers P and Q (in this process, allow-listed on D) each hold two objects: R1 intact on Q and corrupted on
    P, R2 the other way round. Whatever order D asks its peers in, the corrupting peer comes first for one of the two
    roots: D must answer both with the right bytes, penalise only the peer that corrupted, and log which one."""
    make_cluster(tmp_path / "c", nodes=4, committee=1, host_base="127.72.0.1")
    data1, data2 = os.urandom(OBJECT_BYTES), os.urandom(OBJECT_BYTES + 1)
    r1, r2 = root_of_bytes(data1), root_of_bytes(data2)
    objects = {r1: data1, r2: data2}
    keys = [SigningKey.generate(), SigningKey.generate()]  # for D's allow-list before D starts
    config = {"net": {"allow": [k.public.hex for k in keys]}}
    nodes = [spawn(f"c/node-{k}", "--quic-port", "4300", init=False, config=config if k == 4 else None)
             for k in (1, 2, 3, 4)]  # fmt: skip
    for n in nodes:
        await trio.to_thread.run_sync(n.wait_ready)
    d = nodes[3].ports
    d_id = NodeId(bytes.fromhex(d["node_id"]))
    p = _InProcessPeer(keys[0], "127.72.0.11", objects, {r1}, d_id)
    q = _InProcessPeer(keys[1], "127.72.0.12", objects, {r2}, d_id)
    async with trio.open_nursery() as nursery:
        for peer in (p, q):
            await nursery.start(peer.pool.run)
            # Connect to D (it cannot dial us: it knows our keys, not our addresses): ask it for something it lacks.
            host, port = d["quic"].rsplit(":", 1)
            peer.pool.add_address(d_id, (host, int(port)))
            try:
                async with peer.pool.open_stream(d_id, Scope.BLOCKS, {"root": b"\x00" * 32}):
                    raise AssertionError("D has no such object")
            except NotHere:
                pass  # D answered: we are connected

        def get(root: bytes) -> tuple[int, bytes]:
            status, _, body = http_get(f"http://{d['http']}/services/0/blake3/{root.hex()}")
            return status, body

        assert await trio.to_thread.run_sync(get, r1) == (200, data1)
        assert await trio.to_thread.run_sync(get, r2) == (200, data2)
        nursery.cancel_scope.cancel()

    metrics = await trio.to_thread.run_sync(_metrics, d)
    penalties = _counter(
        metrics, r'^lightning_net_penalties_total\{reason="sent a block that does not verify"\} (\S+)$'
    )
    log = nodes[3].log()
    bad = re.findall(r"peer ([0-9a-f]{16}) sent bad content for blake3:([0-9a-f]{64})", log)
    assert bad, log[-4000:]
    print("bad content from:", bad)
    corrupted_by = {p.key.public.hex[:16]: r1.hex(), q.key.public.hex[:16]: r2.hex()}
    assert all(corrupted_by[peer] == root for peer, root in bad), bad  # only the corrupting peer, for its root
    assert penalties == len(bad) >= 1
    assert _counter(metrics, r'^lightning_fetcher_bytes_total\{source="peer"\} (\S+)$') == len(data1) + len(data2)
    penalised = re.findall(r"\[([0-9a-f]{16})\] penalised: sent a block that does not verify", log)
    assert sorted(penalised) == sorted(peer for peer, _ in bad)
