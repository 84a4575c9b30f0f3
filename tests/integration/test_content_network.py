"""Content across the network: IPFS content fetched by node A from the origin is then served by node C from A
(its resolver record gossiped over broadcast), without touching the origin."""

from __future__ import annotations

import re
import time

from lightning.devnet import make_cluster
from tests.integration.gateway_thread import running_gateway
from tests.integration.harness import http_get
from tests.ipfs_fixtures import fixtures


def _learned(ports) -> float:
    text = http_get(f"http://{ports['rpc']}/metrics")[2].decode()
    m = re.search(r"^lightning_resolver_learned_total (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_ipfs_content_is_served_from_peers_without_the_origin(spawn, tmp_path):
    fx = fixtures()["onemib.car"]
    make_cluster(tmp_path / "c", nodes=3, committee=1, host_base="127.42.0.1")
    with running_gateway([fx.path]) as (url, gateway):
        config = {"origin_ipfs": {"gateways": [url]}}
        nodes = [spawn(f"c/node-{k}", "--quic-port", "4300", init=False, config=config) for k in (1, 2, 3)]
        ports = [n.wait_ready() for n in nodes]
        status, _, body = http_get(f"http://{ports[0]['http']}/services/0/ipfs/{fx.root}")
        assert status == 200 and body == fx.content
        assert gateway.car_requests == 1
        deadline = time.monotonic() + 60
        while _learned(ports[2]) < 1:  # node C heard node A's record
            assert time.monotonic() < deadline, "resolver record never arrived"
            time.sleep(0.05)
        status, headers, body = http_get(f"http://{ports[2]['http']}/services/0/ipfs/{fx.root}")
        assert status == 200 and body == fx.content
        assert headers["etag"] == f'"{fx.root}"'
        assert gateway.car_requests == 1  # the origin was not asked again
        metrics = http_get(f"http://{ports[2]['rpc']}/metrics")[2].decode()
        assert re.search(r'lightning_fetcher_bytes_total\{source="peer"\} (\S+)', metrics)
