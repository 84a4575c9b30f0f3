"""Service 1 with real players: headless Chromium plays and seeks an MP4 from a node; ffprobe reads a whole HLS
stream through it while the node reads segments ahead. Fixtures: ffmpeg output packed by ipfs-car
(tests/fixtures/video/generate.sh)."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.gateway_thread import running_gateway
from tests.integration.harness import http_get, rpc

VIDEO = Path(__file__).resolve().parents[1] / "fixtures" / "video"
MANIFEST = json.loads((VIDEO / "manifest.json").read_text())
CLIP = MANIFEST["clip.car"]["root"]
HLS = MANIFEST["hls.car"]["root"]

PAGE = """<!doctype html><html><body>
<video id="v" muted autoplay playsinline src="%(src)s"></video>
<script>
const v = document.getElementById('v');
const report = (m) => fetch('/result?' + new URLSearchParams(m));
let before = 0, seekAsked = false, done = false;
v.addEventListener('error', () => report({error: 'media error ' + (v.error && v.error.code)}));
v.addEventListener('timeupdate', () => {
  if (done) return;
  if (!seekAsked && v.currentTime > 1.0) { before = v.currentTime; seekAsked = true; v.currentTime = 4.0; return; }
  if (seekAsked && v.currentTime >= 4.3) { done = true; report({ok: 1, before: before, after: v.currentTime}); }
});
v.play().catch(e => report({error: 'play: ' + e}));
</script></body></html>
"""


@pytest.fixture
def video_node(spawn):
    with running_gateway([VIDEO / "clip.car", VIDEO / "hls.car"]) as (url, gateway):
        node = spawn("n", config={"origin_ipfs": {"gateways": [url]}})
        ports = node.wait_ready()
        yield ports, gateway


def test_chromium_plays_and_seeks_the_mp4(video_node, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    ports, _ = video_node
    (tmp_path / "www").mkdir()
    src = f"http://{ports['http']}/services/1/ipfs/{CLIP}"
    (tmp_path / "www" / "page.html").write_text(PAGE % {"src": src})
    results: list[str] = []
    got = threading.Event()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/result"):
                results.append(self.path)
                got.set()
                self.send_response(204)
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path / "www"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--autoplay-policy=no-user-gesture-required",
         f"http://127.0.0.1:{server.server_port}/page.html"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert got.wait(90), "the page never reported"
    finally:
        browser.kill()
        browser.wait()
        server.shutdown()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(results[0]).query)
    assert "error" not in query, query
    assert float(query["before"][0]) > 1.0 and float(query["after"][0]) >= 4.3  # played, seeked, played on
    metrics = http_get(f"http://{ports['rpc']}/metrics")[2].decode()
    assert re.search(r'lightning_services_requests_total\{service="1",status="206"\} [1-9]', metrics)


def test_ffprobe_reads_the_whole_hls_stream_with_read_ahead(video_node):
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe not installed (.ci/run installs ffmpeg)")
    ports, gateway = video_node
    url = f"http://{ports['http']}/services/1/ipfs/{HLS}/index.m3u8"
    res = subprocess.run(
        [ffprobe, "-v", "error", "-count_packets", "-show_entries", "stream=codec_type,nb_read_packets",
         "-show_entries", "format=duration", "-of", "json", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert abs(float(info["format"]["duration"]) - 6.0) < 0.5
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert int(video["nb_read_packets"]) >= 140  # 6 s at 25 fps: every segment was read
    status, headers, _ = http_get(url)
    assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl"
    seg = http_get(f"http://{ports['http']}/services/1/ipfs/{HLS}/seg000.ts")
    assert seg[0] == 200 and seg[1]["content-type"] == "video/mp2t"
    metrics = http_get(f"http://{ports['rpc']}/metrics")[2].decode()
    readahead = float(re.search(r"lightning_video_readahead_started_total ([0-9.]+)", metrics).group(1))
    avoided = float(re.search(r"lightning_video_stalls_avoided_total ([0-9.]+)", metrics).group(1))
    assert readahead >= 5 and avoided >= 5, metrics
    # per-stream figures over RPC: ffprobe's stream of the HLS folder
    streams = rpc(f"http://{ports['rpc']}/rpc/v0", "flk_video_streams")["result"]
    hls = [s for s in streams if s["video"] == f"ipfs:{HLS}"]
    assert hls and hls[0]["requests"] >= 7 and hls[0]["stalls_avoided"] >= 5 and hls[0]["bytes"] > 100_000, streams
    assert hls[0]["startup_s"] is not None
    # every segment came from the origin once (read-ahead merged with the player's own requests)
    car_paths = [p for kind, p in gateway.requests if kind == "car"]
    assert len(car_paths) == len(set(car_paths))
