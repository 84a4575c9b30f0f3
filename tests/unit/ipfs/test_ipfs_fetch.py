"""Drivers over CAR streams: DFS streaming, out-of-order buffering, duplicates, and every bad-origin case.

The CAR streams come from tests/ipfs_gateway.py without sockets (``car_stream``), except the last tests, which run
the gateway on loopback and fetch through HTTP, to show the helper working end to end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trio

from lightning.ipfs import (
    Block,
    BlockMismatch,
    CarBlockSource,
    CarRootMismatch,
    CarTruncated,
    Cid,
    LimitExceeded,
    MissingBlock,
    NotAFile,
    encode_car,
    list_directory,
    open_file,
    parse_path,
    resolve_path,
    verify_block,
)
from tests.ipfs_fixtures import FILE_FIXTURES, fixtures
from tests.ipfs_gateway import TestGateway


def gateway(*names: str, **kwargs: int) -> TestGateway:
    return TestGateway.from_cars([fixtures()[name].path for name in names], **kwargs)


async def read_all(source: CarBlockSource, root: Cid, path: str = "") -> bytes:
    target = await resolve_path(root, path, source.get)
    stream = await open_file(target.cid, source.get)
    out = bytearray()
    async for chunk in stream.chunks():
        out += chunk
    assert len(out) == stream.stop - stream.start
    return bytes(out)


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        await trio.lowlevel.checkpoint()
        yield data[i : i + size]


@pytest.mark.parametrize("name", FILE_FIXTURES)
async def test_every_file_streams_from_a_dfs_car(name: str) -> None:
    fx = fixtures()[name]
    gw = gateway(name, chunk_bytes=1000)
    source = CarBlockSource(gw.car_stream(fx.root, scope="entity"), fx.root)
    assert await read_all(source, fx.root) == fx.content
    assert source.buffer.buffered_bytes == 0 and source.fallbacks == 0


async def test_paths_from_a_car_in_dfs_order() -> None:
    for name in ("nested.car", "hamt.car", "site.car"):
        fx = fixtures()[name]
        gw = gateway(name)
        for path, content in list(fx.files.items())[:40]:
            stream = gw.car_stream(fx.root, parse_path(path), scope="entity")
            source = CarBlockSource(stream, fx.root)
            assert await read_all(source, fx.root, path) == content
            assert source.buffer.buffered_bytes == 0  # nothing arrived before it was needed


async def test_bytes_stream_out_before_the_car_has_arrived() -> None:
    fx = fixtures()["deep-raw.car"]
    send, receive = trio.open_memory_channel[bytes](0)
    pieces = [chunk async for chunk in gateway("deep-raw.car", chunk_bytes=512).car_stream(fx.root, scope="entity")]
    source = CarBlockSource(receive, fx.root)
    async with trio.open_nursery() as nursery:

        async def sender() -> None:
            async with send:
                for piece in pieces:
                    await send.send(piece)
                    sent.append(len(piece))

        sent: list[int] = []
        nursery.start_soon(sender)
        stream = await open_file(fx.root, source.get)
        assert stream.size == len(fx.content or b"")
        out = bytearray()
        async for chunk in stream.chunks():
            if not out:
                assert len(sent) < len(pieces) // 2  # the first bytes came early
            out += chunk
    assert bytes(out) == fx.content


async def test_children_first_order_is_buffered_within_the_limit() -> None:
    fx = fixtures()["deep-raw.car"]  # ipfs-car's own order: leaves first, root last
    source = CarBlockSource(chunks_of(fx.data, 4096), fx.root)
    assert await read_all(source, fx.root) == fx.content
    tight = CarBlockSource(chunks_of(fx.data, 4096), fx.root, buffer_bytes_max=8192)
    with pytest.raises(LimitExceeded, match="not needed yet"):
        await read_all(tight, fx.root)


async def test_duplicates_sent_once_come_from_the_cache_or_the_fallback() -> None:
    fx = fixtures()["dups.car"]  # 32 identical 1 KiB leaves (and identical parents)
    gw = gateway("dups.car")
    source = CarBlockSource(gw.car_stream(fx.root, scope="entity", dups=False), fx.root)
    assert await read_all(source, fx.root) == fx.content and source.fallbacks == 0

    no_cache = CarBlockSource(gw.car_stream(fx.root, scope="entity", dups=False), fx.root, cache_bytes_max=0)
    with pytest.raises(MissingBlock, match="no longer cached"):
        await read_all(no_cache, fx.root)

    async def raw(cid: Cid) -> bytes:
        data = gw.block(cid)
        assert data is not None
        return data

    fallback = CarBlockSource(
        gw.car_stream(fx.root, scope="entity", dups=False), fx.root, cache_bytes_max=0, fallback=raw
    )
    assert await read_all(fallback, fx.root) == fx.content and fallback.fallbacks > 0


async def test_a_corrupted_block_aborts() -> None:
    fx = fixtures()["deep-v0.car"]
    gw = gateway("deep-v0.car")
    victim = [b.cid for b in fx.blocks()][10]
    gw.corrupt(victim)
    source = CarBlockSource(gw.car_stream(fx.root, scope="entity"), fx.root)
    with pytest.raises(BlockMismatch) as info:
        await read_all(source, fx.root)
    assert info.value.cid == victim


async def test_a_block_swapped_for_another_cids_block_aborts() -> None:
    fx = fixtures()["nested.car"]
    gw = gateway("nested.car")
    target = await resolve_path(fx.root, "media/clip.bin", _getter(gw))
    other = await resolve_path(fx.root, "index.html", _getter(gw))
    gw.swap(target.cid, other.cid)
    source = CarBlockSource(gw.car_stream(fx.root, parse_path("media/clip.bin"), scope="entity"), fx.root)
    with pytest.raises(BlockMismatch, match=str(target.cid)):
        await read_all(source, fx.root, "media/clip.bin")


def _getter(gw: TestGateway) -> Callable[[Cid], Awaitable[bytes]]:
    async def get(cid: Cid) -> bytes:
        await trio.lowlevel.checkpoint()
        data = gw.block(cid)
        assert data is not None
        return data

    return get


async def test_truncated_cars() -> None:
    fx = fixtures()["trickle.car"]
    body = b"".join([c async for c in gateway("trickle.car").car_stream(fx.root, scope="entity")])
    mid_section = CarBlockSource(chunks_of(body[: len(body) // 2], 1000), fx.root)
    with pytest.raises(CarTruncated):
        await read_all(mid_section, fx.root)
    blocks = fixtures()["trickle.car"].blocks()
    without_last_leaf = encode_car([fx.root], [(b.cid, b.data) for b in blocks if b.cid != blocks[0].cid])
    between_sections = CarBlockSource(chunks_of(without_last_leaf, 1000), fx.root)
    with pytest.raises(MissingBlock, match="ended without it"):
        await read_all(between_sections, fx.root)


async def test_a_car_whose_root_is_not_the_requested_cid() -> None:
    fx, other = fixtures()["tiny.car"], fixtures()["deep-raw.car"]
    gw = gateway("tiny.car", "deep-raw.car")
    gw.header_roots = [other.root]
    source = CarBlockSource(gw.car_stream(fx.root, scope="entity"), fx.root)
    with pytest.raises(CarRootMismatch, match=str(other.root)):
        await read_all(source, fx.root)
    gw.header_roots = []  # roots are unspecified for trustless gateways: an empty list is fine
    assert await read_all(CarBlockSource(gw.car_stream(fx.root, scope="entity"), fx.root), fx.root) == fx.content
    # a CAR of another DAG under the right root ends without the blocks we need
    gw.header_roots = [fx.root]
    wrong = CarBlockSource(gw.car_stream(other.root, scope="entity"), fx.root)
    with pytest.raises(MissingBlock):
        await read_all(wrong, fx.root)


async def test_directory_targets() -> None:
    fx = fixtures()["site.car"]
    gw = gateway("site.car")
    source = CarBlockSource(gw.car_stream(fx.root, parse_path("a"), scope="entity"), fx.root)
    target = await resolve_path(fx.root, "a", source.get)
    with pytest.raises(NotAFile) as info:
        await open_file(target.cid, source.get)
    assert info.value.kind == "directory"
    assert sorted(e.name for e in await list_directory(target.cid, source.get)) == ["b", "empty.txt"]


# -- over HTTP, with the gateway on loopback ----------------------------------------------------------------------


async def http_chunks(client: httpx.AsyncClient, url: str) -> AsyncIterator[bytes]:
    async with client.stream("GET", url) as response:
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_bytes():
            yield chunk


async def test_fetching_through_the_test_gateway_over_http() -> None:
    fx = fixtures()["nested.car"]
    gw = gateway("nested.car", "deep-raw.car")
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(gw.serve)
        base = f"http://{host}:{port}"
        async with httpx.AsyncClient() as client:
            url = f"{base}/ipfs/{fx.root}/a/b/deeper/d/e.txt?format=car&dag-scope=entity"
            source = CarBlockSource(http_chunks(client, url), fx.root)
            assert await read_all(source, fx.root, "a/b/deeper/d/e.txt") == fx.files["a/b/deeper/d/e.txt"]
            assert gw.car_requests == 1 and gw.raw_requests == 0

            # block by block with ?format=raw, keeping what we fetched: the second read never touches the gateway
            cache: dict[bytes, Block] = {}

            async def get(cid: Cid) -> Block:
                if cid.multihash not in cache:
                    response = await client.get(f"{base}/ipfs/{cid}?format=raw")
                    assert response.status_code == 200
                    cache[cid.multihash] = verify_block(cid, response.content)
                return cache[cid.multihash]

            deep = fixtures()["deep-raw.car"]
            for _ in range(2):
                stream = await open_file(deep.root, get)
                assert b"".join([c async for c in stream.chunks()]) == deep.content
            assert gw.raw_requests == len(deep.blocks())

            bad = await client.get(f"{base}/ipfs/not-a-cid?format=raw")
            missing = await client.get(f"{base}/ipfs/{Cid.of(b'nowhere')}?format=raw")
            assert (bad.status_code, missing.status_code) == (400, 404)
        nursery.cancel_scope.cancel()


async def test_gateway_switches_over_http() -> None:
    fx = fixtures()["onemib.car"]
    gw = gateway("onemib.car")
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(gw.serve)
        url = f"http://{host}:{port}/ipfs/{fx.root}?format=car&dag-scope=entity"
        async with httpx.AsyncClient() as client:
            gw.truncate_at = 300_000
            with pytest.raises(CarTruncated):
                await read_all(CarBlockSource(http_chunks(client, url), fx.root), fx.root)
            gw.truncate_at = None
            gw.corrupt(fx.root)
            with pytest.raises(BlockMismatch):
                await read_all(CarBlockSource(http_chunks(client, url), fx.root), fx.root)
            gw.fail_status = 502
            assert (await client.get(url)).status_code == 502
            assert gw.car_requests == 3
        nursery.cancel_scope.cancel()
