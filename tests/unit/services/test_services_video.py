"""Service 1 (lightning/services/video.py) in memory, on the ffmpeg fixtures of tests/fixtures/video: HLS playlists
and segments with read-ahead, MP4 Range seeks, and the per-stream records (``flk_video_streams``).

The origin is in memory (tests/service_node.py: BlockOrigin over the fixtures' CARs), so a test sees exactly which
pointers the node asked it for: read-ahead shows as segments requested before the player asks, and a merged
transfer as one request per segment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.blockstore import BLOCK_SIZE
from lightning.fetcher import Pointer
from lightning.http import Request
from lightning.services.video import STREAMS_REMEMBERED, parse_playlist
from tests.ipfs_fixtures import car_blocks
from tests.service_node import BlockOrigin, ServiceNode, corrupt_block, open_node, unixfs_directory

VIDEO = Path(__file__).resolve().parents[2] / "fixtures" / "video"
MANIFEST = json.loads((VIDEO / "manifest.json").read_text())
CLIP = MANIFEST["clip.car"]["root"]  # a 6 s MP4, one raw block of 115,576 bytes
HLS = MANIFEST["hls.car"]["root"]  # index.m3u8 and seg000.ts … seg005.ts
SEGMENTS = [f"seg{i:03d}.ts" for i in range(MANIFEST["hls.car"]["segments"])]
CLIENT = ("203.0.113.9", 51000)


def hls_files() -> dict[str, bytes]:
    """The HLS folder's files by name, read from the CAR's blocks (each file is one raw block there)."""
    from lightning.ipfs import decode_pbnode

    blocks = {b.cid.multihash: b for b in car_blocks((VIDEO / "hls.car").read_bytes())}
    root = next(b for b in blocks.values() if str(b.cid) == HLS)
    return {link.name.decode(): blocks[link.cid.multihash].data for link in decode_pbnode(root.data).links if link.name}


def clip_bytes() -> bytes:
    (block,) = car_blocks((VIDEO / "clip.car").read_bytes())
    return block.data


def video_origin() -> BlockOrigin:
    return BlockOrigin.from_car(VIDEO / "clip.car", VIDEO / "hls.car")


def alias(path: str, cid: str = HLS) -> str:
    return Pointer("ipfs", cid, path).alias


def the_stream(node: ServiceNode, video: str) -> dict[str, object]:
    (record,) = [s for s in node.video.streams() if s["video"] == video]
    return record


def test_parse_playlist() -> None:
    text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n\n#EXTINF:1.0,\nseg000.ts\r\n  #not a uri\n#EXTINF:1.0,\n seg001.ts \n"
    assert parse_playlist(text) == ["seg000.ts", "#not a uri", "seg001.ts"]  # only lines *starting* with # skip
    assert parse_playlist(hls_files()["index.m3u8"].decode()) == SEGMENTS


# -- HLS ---------------------------------------------------------------------------------------------------------
async def test_hls_playlist_then_segments_with_read_ahead(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    files = hls_files()
    origin = video_origin()
    async with open_node(tmp_path, origins=[origin], readahead_segments=3) as node:
        playlist = await node.http.get(f"/services/1/ipfs/{HLS}/index.m3u8")
        assert playlist.status == 200 and playlist.body == files["index.m3u8"]
        assert playlist.header("content-type") == "application/vnd.apple.mpegurl"
        assert playlist.header("content-security-policy") is None
        # Reading the playlist started the first three segments before any was asked for.
        assert node.metric("lightning_video_readahead_started_total") == 3
        await trio.testing.wait_all_tasks_blocked()
        assert origin.requests[0] == alias("index.m3u8")
        assert sorted(origin.requests[1:]) == [alias(s) for s in SEGMENTS[:3]]
        for k, name in enumerate(SEGMENTS):
            reply = await node.http.get(f"/services/1/ipfs/{HLS}/{name}")
            assert reply.status == 200 and reply.body == files[name], name
            assert reply.header("content-type") == "video/mp2t"
            # Segment k started k+1 … k+3: the fetcher is always three segments ahead of the player.
            assert node.metric("lightning_video_readahead_started_total") == min(k + 4, len(SEGMENTS))
        await trio.testing.wait_all_tasks_blocked()
        # Every segment came from the origin once: the player's requests merged with the read-ahead.
        assert sorted(origin.requests) == sorted(alias(s) for s in ["index.m3u8", *SEGMENTS])
        assert node.metric("lightning_video_stalls_avoided_total") == len(SEGMENTS)
        assert node.metric("lightning_video_segment_misses_total") == 0
        record = the_stream(node, f"ipfs:{HLS}")
        assert record["requests"] == 1 + len(SEGMENTS) and record["stalls_avoided"] == len(SEGMENTS)
        assert record["segment_misses"] == 0 and record["seeks"] == 0 and record["startup_s"] is not None
        assert record["bytes"] == sum(len(files[name]) for name in ["index.m3u8", *SEGMENTS])
        assert record["client"] == "198.51.100.7"


async def test_a_jump_past_the_read_ahead_is_a_segment_miss(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    files = hls_files()
    origin = video_origin()
    async with open_node(tmp_path, origins=[origin], readahead_segments=1) as node:
        await node.http.get(f"/services/1/ipfs/{HLS}/index.m3u8")
        await trio.testing.wait_all_tasks_blocked()
        assert origin.requests == [alias("index.m3u8"), alias("seg000.ts")]
        reply = await node.http.get(f"/services/1/ipfs/{HLS}/seg003.ts")
        assert reply.body == files["seg003.ts"]
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(origin.requests[2:]) == [alias("seg003.ts"), alias("seg004.ts")]  # the miss, one ahead of it
        assert node.metric("lightning_video_segment_misses_total") == 1
        assert node.metric("lightning_video_stalls_avoided_total") == 0
        await node.http.get(f"/services/1/ipfs/{HLS}/seg004.ts")
        record = the_stream(node, f"ipfs:{HLS}")
        assert (record["segment_misses"], record["stalls_avoided"]) == (1, 1)


async def test_segments_of_an_unknown_playlist_get_no_read_ahead(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    files = hls_files()
    origin = video_origin()
    async with open_node(tmp_path, origins=[origin]) as node:
        reply = await node.http.get(f"/services/1/ipfs/{HLS}/seg002.ts")
        assert reply.body == files["seg002.ts"] and origin.requests == [alias("seg002.ts")]
        assert node.metric("lightning_video_readahead_started_total") == 0
        record = the_stream(node, f"ipfs:{HLS}")
        assert (record["segment_misses"], record["stalls_avoided"]) == (0, 0)


async def test_local_content_needs_no_fetcher(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    """A node without a fetcher serves what it holds: the playlist is learnt, nothing is fetched ahead."""
    files = hls_files()
    async with open_node(tmp_path, origins=[video_origin()]) as node:  # fill the blockstore once
        for name in ["index.m3u8", *SEGMENTS]:
            await node.http.get(f"/services/0/ipfs/{HLS}/{name}")
    async with open_node(tmp_path) as node:  # the same blockstore, no fetcher
        assert (await node.http.get(f"/services/1/ipfs/{HLS}/index.m3u8")).body == files["index.m3u8"]
        for name in SEGMENTS:
            assert (await node.http.get(f"/services/1/ipfs/{HLS}/{name}")).body == files[name]
        assert node.metric("lightning_video_readahead_started_total") == 0
        assert node.metric("lightning_video_stalls_avoided_total") == len(SEGMENTS)  # all were local


PLAYLIST = b"""#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:1
#EXTINF:1.0,
https://elsewhere.example/a.ts
#EXTINF:1.0,
/rooted.ts
#EXTINF:1.0,
one.ts
#EXTINF:1.0,
./two.ts
#EXTINF:1.0,
../up/three.ts
#EXT-X-ENDLIST
"""


async def test_read_ahead_follows_relative_uris_only(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    files = {"v/index.m3u8": PLAYLIST, "v/one.ts": b"1" * 100, "v/two.ts": b"2" * 100, "up/three.ts": b"3" * 100}
    cid, blocks = unixfs_directory(files)
    origin = BlockOrigin(blocks)
    async with open_node(tmp_path, origins=[origin], readahead_segments=5) as node:
        reply = await node.http.get(f"/services/1/ipfs/{cid}/v/index.m3u8")
        assert reply.body == PLAYLIST
        await trio.testing.wait_all_tasks_blocked()
        c = str(cid)
        assert origin.requests[0] == alias("v/index.m3u8", c)
        assert sorted(origin.requests[1:]) == sorted(alias(p, c) for p in ["v/one.ts", "v/two.ts", "up/three.ts"])
        for path in ["v/one.ts", "v/two.ts", "up/three.ts"]:
            assert (await node.http.get(f"/services/1/ipfs/{cid}/{path}")).body == files[path]
        assert node.metric("lightning_video_stalls_avoided_total") == 2  # up/three.ts is another folder's
        assert len(origin.requests) == 4


async def test_a_corrupt_local_playlist_is_refused_and_starts_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    origin = video_origin()
    async with open_node(tmp_path, origins=[origin]) as node:
        assert (await node.http.get(f"/services/0/ipfs/{HLS}/index.m3u8")).status == 200
        root = node.blockstore.resolve_alias(alias("index.m3u8"))
        info = node.blockstore.info(root) if root is not None else None
        assert info is not None
        corrupt_block(node.blockstore, info, 0)
        reply = await node.http.get(f"/services/1/ipfs/{HLS}/index.m3u8")
        assert reply.status == 503 and b"#EXTM3U" not in reply.body
        assert origin.requests == [alias("index.m3u8")]  # no read-ahead from a playlist that did not verify


# -- MP4 -----------------------------------------------------------------------------------------------------------
async def test_mp4_plays_and_seeks_with_ranges(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    data = clip_bytes()
    origin = video_origin()
    async with open_node(tmp_path, origins=[origin]) as node:
        url = f"/services/1/ipfs/{CLIP}"
        start = await node.http.get(url, range="bytes=0-")
        assert start.status == 206 and start.body == data and start.header("content-type") == "video/mp4"
        assert start.header("content-range") == f"bytes 0-{len(data) - 1}/{len(data)}"
        for first, last in [(60_000, 70_000), (100, 99_999), (len(data) - 10, len(data) + 100)]:
            seek = await node.http.get(url, range=f"bytes={first}-{last}")
            end = min(last + 1, len(data))
            assert seek.status == 206 and seek.body == data[first:end]
            assert seek.header("content-range") == f"bytes {first}-{end - 1}/{len(data)}"
            assert seek.header("content-type") == "video/mp4"
        assert (await node.http.get(url, range=f"bytes={len(data)}-")).status == 416
        assert origin.requests == [alias("", CLIP)]
        record = the_stream(node, f"ipfs:{CLIP}")
        assert record["requests"] == 5 and record["seeks"] == 4
        assert record["bytes"] == len(data) + 10_001 + 99_900 + 10
        assert record["startup_s"] is not None
        assert node.metric("lightning_video_seeks_total") == 4
        assert node.metric("lightning_services_requests_total", service="1", status="206") == 4
        assert node.metric("lightning_services_requests_total", service="1", status="416") == 1


@pytest.mark.parametrize("where", ["while downloading", "later block"])
async def test_a_206_has_the_content_type_of_the_object(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, where: str
) -> None:
    async with open_node(tmp_path, origins=[video_origin()]) as node:
        if where == "while downloading":
            url, header = f"/services/1/ipfs/{CLIP}", "bytes=60000-70000"
        else:  # an MP4 of three blocks, local, a seek into its second block
            root = await node.blockstore.put(clip_bytes()[:4096] + bytes(3 * BLOCK_SIZE))
            url, header = f"/services/1/blake3/{root.hex()}", f"bytes={BLOCK_SIZE + 10}-{BLOCK_SIZE + 1000}"
        seek = await node.http.get(url, range=header)
        whole = await node.http.get(url)
        assert whole.header("content-type") == "video/mp4"
        assert seek.header("content-type") == whole.header("content-type")


# -- per-stream records --------------------------------------------------------------------------------------------
async def test_streams_are_per_client_and_video(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with open_node(tmp_path, origins=[video_origin()]) as node:
        other = ("192.0.2.1", 50000)
        await node.http.request("GET", f"/services/1/ipfs/{CLIP}", client=other)
        await node.http.request("GET", f"/services/1/ipfs/{HLS}/index.m3u8", client=other)
        await node.http.get(f"/services/1/ipfs/{CLIP}", range="bytes=1000-2000")
        await node.http.request("GET", f"/services/1/ipfs/{CLIP}", [("range", "bytes=5-")], client=other)
        streams = node.video.streams()
        # Newest last: a stream moves to the end each time it is watched.
        assert [(s["client"], s["video"]) for s in streams] == [
            ("192.0.2.1", f"ipfs:{HLS}"),
            ("198.51.100.7", f"ipfs:{CLIP}"),
            ("192.0.2.1", f"ipfs:{CLIP}"),
        ]
        assert [(s["requests"], s["seeks"]) for s in streams] == [(1, 0), (1, 1), (2, 1)]
        assert streams[1]["bytes"] == 1001
        # Content service requests are not streams.
        await node.http.get(f"/services/0/ipfs/{CLIP}")
        assert len(node.video.streams()) == 3


async def test_stream_records_are_bounded(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
        path = f"/services/1/blake3/{root.hex()}"
        for i in range(STREAMS_REMEMBERED + 5):
            request = Request("GET", path, path, {}, [], b"", (f"10.{i // 256}.{i % 256}.1", 1))
            assert (await node.video.handle(request)).status == 200
        streams = node.video.streams()
        assert len(streams) == STREAMS_REMEMBERED
        assert streams[0]["client"] == "10.0.5.1" and streams[-1]["client"] == "10.4.4.1"


async def test_head_sends_no_bytes_to_count(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with open_node(tmp_path, origins=[video_origin()]) as node:
        await node.http.get(f"/services/1/ipfs/{HLS}/index.m3u8")
        counted = node.metric("lightning_services_served_bytes_total", service="1", source="origin")
        counted += node.metric("lightning_services_served_bytes_total", service="1", source="local")
        head = await node.http.head(f"/services/1/ipfs/{HLS}/index.m3u8")
        assert head.status == 200 and head.body == b""
        assert the_stream(node, f"ipfs:{HLS}")["bytes"] == len(hls_files()["index.m3u8"])
        after = node.metric("lightning_services_served_bytes_total", service="1", source="local")
        after += node.metric("lightning_services_served_bytes_total", service="1", source="origin")
        assert after == counted


async def test_two_mp4s_in_one_folder_are_two_videos(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    clip = clip_bytes()
    cid, blocks = unixfs_directory({"films/a.mp4": clip, "films/b.mp4": clip[:50_000]})
    async with open_node(tmp_path, origins=[BlockOrigin(blocks)]) as node:
        await node.http.get(f"/services/1/ipfs/{cid}/films/a.mp4")
        await node.http.get(f"/services/1/ipfs/{cid}/films/b.mp4")
        assert sorted(str(s["video"]) for s in node.video.streams()) == [
            f"ipfs:{cid}/films/a.mp4",
            f"ipfs:{cid}/films/b.mp4",
        ]


async def test_a_failing_playlist_asks_the_origin_once(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    origin = video_origin()
    async with open_node(tmp_path, origins=[origin]) as node:
        reply = await node.http.get(f"/services/1/ipfs/{HLS}/missing.m3u8")
        assert reply.status == 404
        assert origin.requests == [alias("missing.m3u8")]


async def test_read_ahead_never_asks_for_a_path_above_the_cid(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    playlist = b"#EXTM3U\n#EXTINF:1.0,\n../../other/x.ts\n#EXTINF:1.0,\nok.ts\n"
    cid, blocks = unixfs_directory({"index.m3u8": playlist, "ok.ts": b"ts" * 50})
    origin = BlockOrigin(blocks)
    async with open_node(tmp_path, origins=[origin]) as node:
        assert (await node.http.get(f"/services/1/ipfs/{cid}/index.m3u8")).status == 200
        assert (await node.http.get(f"/services/1/ipfs/{cid}/ok.ts")).status == 200
        await trio.testing.wait_all_tasks_blocked()
        assert all(".." not in requested for requested in origin.requests), origin.requests


async def test_a_failed_read_ahead_is_not_a_stall_avoided(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    origin = video_origin()
    blocks = {str(b.cid): b for b in car_blocks((VIDEO / "hls.car").read_bytes())}
    seg000 = next(b.cid for b in blocks.values() if b.data == hls_files()["seg000.ts"])
    origin.corrupt(seg000)
    hold = origin.hold(alias("seg001.ts"))  # a read-ahead still in flight while the one of seg000 fails
    async with open_node(tmp_path, origins=[origin], readahead_segments=2) as node:
        await node.http.get(f"/services/1/ipfs/{HLS}/index.m3u8")
        await hold.reached.wait()
        await trio.testing.wait_all_tasks_blocked()
        hold.release.set()
        reply = await node.http.get(f"/services/1/ipfs/{HLS}/seg000.ts")
        assert reply.status == 502
        assert node.metric("lightning_video_stalls_avoided_total") == 0
