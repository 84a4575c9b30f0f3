"""Service 0 over the blockstore of a real node: /services/0/blake3/<root> with Range, HEAD, ETag, verified mode."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from lightning.blockstore import BLOCK_SIZE, verify_stream
from tests.integration.harness import http_get, run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "verify_download.py"


def test_blake3_retrieval(spawn, tmp_path):
    node = spawn("n")
    ports = node.wait_ready()
    data = random.Random(5).randbytes(3 * BLOCK_SIZE + 123)
    src = tmp_path / "obj.bin"
    src.write_bytes(data)
    root = run_cli("dev", "store", str(src), "--home", str(node.home)).stdout.split()[0]
    base = f"http://{ports['http']}/services/0/blake3/{root}"

    status, headers, body = http_get(base)
    assert status == 200 and body == data
    assert headers["etag"] == f'"{root}"' and headers["content-length"] == str(len(data))
    assert headers["accept-ranges"] == "bytes" and headers["content-type"] == "application/octet-stream"

    status, headers, body = http_get(base, {"Range": f"bytes={BLOCK_SIZE - 10}-{BLOCK_SIZE + 9}"})
    assert status == 206 and body == data[BLOCK_SIZE - 10 : BLOCK_SIZE + 10]
    assert headers["content-range"] == f"bytes {BLOCK_SIZE - 10}-{BLOCK_SIZE + 9}/{len(data)}"
    status, headers, _ = http_get(base, {"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(data)}"

    status, headers, body = http_get(base, method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(data))
    status, _, _ = http_get(base, {"If-None-Match": f'"{root}"'})
    assert status == 304

    # verified mode: the proof stream checks out with the client library, for the whole object and for a range
    status, headers, stream = http_get(base, {"Accept": "application/vnd.lightning.verified"})
    assert status == 200 and headers["content-type"] == "application/vnd.lightning.verified"
    assert b"".join(b.data for b in verify_stream(bytes.fromhex(root), [stream])) == data
    status, _, stream = http_get(base + "?format=verified", {"Range": f"bytes={2 * BLOCK_SIZE}-"})
    blocks = list(verify_stream(bytes.fromhex(root), [stream], start_block=2))
    assert [b.index for b in blocks] == [2, 3] and b"".join(b.data for b in blocks) == data[2 * BLOCK_SIZE :]

    # the client library's fetch helper
    from lightning.blockstore.verify import fetch

    assert b"".join(b.data for b in fetch(f"http://{ports['http']}", root)) == data

    # the documented client example verifies a download from the node
    out = tmp_path / "verified.bin"
    res = subprocess.run([sys.executable, str(EXAMPLE), root, f"http://{ports['http']}", str(out)], capture_output=True)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == data

    assert http_get(f"http://{ports['http']}/services/0/blake3/{'0' * 64}")[0] == 404
    assert http_get(f"http://{ports['http']}/services/0/blake3/xyz")[0] == 400
    assert http_get(f"http://{ports['http']}/services/9/x")[0] == 404
    metrics = http_get(f"http://{ports['rpc']}/metrics")[2].decode()
    assert 'lightning_services_ttfb_seconds_count{service="0",source="local"}' in metrics
    assert 'lightning_services_requests_total{service="0",status="206"} 1.0' in metrics
