"""Content across nodes: a node that lacks an object fetches it from a peer over QUIC, verifying every block,
and streams it to the client; the second request is local."""

from __future__ import annotations

import random
import re

from lightning.blockstore import BLOCK_SIZE
from lightning.devnet import make_cluster
from tests.integration.harness import http_get, run_cli


def test_blake3_object_fetched_from_a_peer(spawn, tmp_path):
    layout = make_cluster(tmp_path / "c", nodes=2, committee=1, host_base="127.41.0.1")
    a = spawn("c/node-1", "--quic-port", "4300", init=False)
    b = spawn("c/node-2", "--quic-port", "4300", init=False)
    pa, pb = a.wait_ready(), b.wait_ready()
    assert pa["quic"].startswith("127.41.0.1:") and layout.nodes[1].host == "127.41.0.2"
    data = random.Random(9).randbytes(5 * BLOCK_SIZE + 11)
    (tmp_path / "obj").write_bytes(data)
    root = run_cli("dev", "store", str(tmp_path / "obj"), "--home", str(a.home)).stdout.split()[0]

    status, headers, body = http_get(f"http://{pb['http']}/services/0/blake3/{root}")
    assert status == 200 and body == data and headers["content-length"] == str(len(data))
    status, _, body = http_get(f"http://{pb['http']}/services/0/blake3/{root}")
    assert status == 200 and body == data
    metrics = http_get(f"http://{pb['rpc']}/metrics")[2].decode()
    fetched = re.search(r'lightning_fetcher_bytes_total\{source="peer"\} (\S+)', metrics)
    assert fetched and float(fetched.group(1)) == len(data)
    pattern = r"^lightning_services_cache_lookups_total\{result=\"(\w+)\",service=\"0\"\} (\S+)$"
    lookups = dict(re.findall(pattern, metrics, re.M))
    assert lookups == {"miss": "2.0", "hit": "1.0"}, lookups
    # unknown everywhere: 404 after asking the peer
    assert http_get(f"http://{pb['http']}/services/0/blake3/{'ab' * 32}")[0] == 404
