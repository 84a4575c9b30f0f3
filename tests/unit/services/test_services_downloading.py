"""Service 0 on content that is not here yet: streamed from the fetcher's spool as the origin's verified bytes arrive.

The origin is an in-memory IPFS origin over the ipfs-car fixtures (tests/service_node.py: BlockOrigin), verifying
every block against its CID as IpfsGatewayOrigin does. What serve.py promises here: the status line waits for the
first verified byte (so a failing origin gets a 404/502, not a cut body); Content-Length and Range from the length
the origin announced; clients of one object share one transfer; a client that joins after the bytes it needs left
the spool is answered from the blockstore once the download is published; a block that fails verification cuts the
response off at that point and nothing of it is stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.blockstore import root_of_bytes
from lightning.fetcher import Pointer
from lightning.sim.http import Exchange
from tests.ipfs_fixtures import fixtures
from tests.service_node import BlockOrigin, open_node, unixfs_directory

ONEMIB = fixtures()["onemib.car"]  # a 1 MiB + 4 KiB file in two raw leaves
SITE = fixtures()["site.car"]
ONEMIB_URL = f"/services/0/ipfs/{ONEMIB.root}"
ONEMIB_ALIAS = Pointer("ipfs", str(ONEMIB.root)).alias
LEAF = 1024 * 1024


def onemib_origin() -> BlockOrigin:
    return BlockOrigin.from_car(ONEMIB.path, SITE.path)


async def head_arrives(exchange: Exchange, arrived: trio.Event) -> None:
    await exchange.head()
    arrived.set()


async def test_a_missing_object_is_fetched_streamed_and_then_served_locally(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = ONEMIB.content
    assert data is not None
    origin = onemib_origin()
    async with open_node(tmp_path, origins=[origin]) as node:
        first = await node.http.get(ONEMIB_URL)
        assert first.status == 200 and first.complete and first.body == data
        assert first.header("content-length") == str(len(data))
        assert first.header("etag") == f'"{ONEMIB.root}"' and first.header("accept-ranges") == "bytes"
        assert first.header("vary") == "Accept" and first.header("x-content-type-options") == "nosniff"
        assert origin.requests == [ONEMIB_ALIAS]
        root = node.blockstore.resolve_alias(ONEMIB_ALIAS)
        assert root == root_of_bytes(data)  # published under the blake3 root of exactly these bytes
        second = await node.http.get(ONEMIB_URL)
        assert second.body == data and origin.requests == [ONEMIB_ALIAS]
        same = ("etag", "content-type", "content-length", "cache-control", "vary", "accept-ranges")
        assert [second.header(h) for h in same] == [first.header(h) for h in same]
        # The blake3 name of the same bytes is served too, with its own ETag.
        assert root is not None
        by_root = await node.http.get(f"/services/0/blake3/{root.hex()}")
        assert by_root.body == data and by_root.header("etag") == f'"{root.hex()}"'
        assert node.metric("lightning_services_cache_lookups_total", service="0", result="miss") == 1
        assert node.metric("lightning_services_cache_lookups_total", service="0", result="hit") == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=0-99", (0, 100)), (f"bytes={LEAF - 10}-{LEAF + 10}", (LEAF - 10, LEAF + 11)), ("bytes=-5", None)],
)
async def test_range_while_downloading(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, header: str, expected: tuple[int, int] | None
) -> None:
    data = ONEMIB.content
    assert data is not None
    start, end = expected or (len(data) - 5, len(data))
    async with open_node(tmp_path, origins=[onemib_origin()]) as node:
        reply = await node.http.get(ONEMIB_URL, range=header)
        assert reply.status == 206 and reply.complete and reply.body == data[start:end]
        assert reply.header("content-range") == f"bytes {start}-{end - 1}/{len(data)}"
        assert reply.header("content-length") == str(end - start)


async def test_unsatisfiable_range_while_downloading_is_416(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = ONEMIB.content
    assert data is not None
    async with open_node(tmp_path, origins=[onemib_origin()]) as node:
        reply = await node.http.get(ONEMIB_URL, range=f"bytes={len(data)}-")
        assert reply.status == 416 and reply.header("content-range") == f"bytes */{len(data)}"


async def test_the_status_line_waits_for_the_first_verified_byte(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The origin announced the length and then sends a block that does not verify: the client gets a 502, not a
    200 with a broken body."""
    origin = onemib_origin()
    hold = origin.hold(ONEMIB_ALIAS, after_bytes=0)  # length known, no byte yet
    async with open_node(tmp_path, origins=[origin]) as node:
        exchange = await node.http.open("GET", ONEMIB_URL)
        arrived = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(head_arrives, exchange, arrived)
            await hold.reached.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert not arrived.is_set()  # nothing promised yet
            first_leaf = next(b.cid for b in ONEMIB.blocks() if len(b.data) == LEAF)
            origin.corrupt(first_leaf)
            hold.release.set()
        reply = await exchange.finish()
        assert reply.status == 502 and reply.complete and b"fetching failed" in reply.body
        assert node.blockstore.resolve_alias(ONEMIB_ALIAS) is None


@pytest.mark.parametrize(
    ("path", "status"),
    [("nothing/here", 404), ("a", 404), ("index.html", 200), ("a/empty.txt", 200)],  # "a" is a directory
)
async def test_origin_answers_become_statuses(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, path: str, status: int
) -> None:
    async with open_node(tmp_path, origins=[onemib_origin()]) as node:
        reply = await node.http.get(f"/services/0/ipfs/{SITE.root}/{path}")
        assert reply.status == status and reply.complete
        if status == 200:
            assert reply.body == SITE.files[path]
        assert (await node.http.get(f"/services/0/ipfs/{ONEMIB.root.to_v1()}/x")).status == 404


async def test_no_source_for_the_content_is_404(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with open_node(tmp_path, origins=[]) as node:  # a fetcher with no source at all
        reply = await node.http.get(f"/services/0/blake3/{bytes(32).hex()}")
        assert reply.status == 404 and b"not found" in reply.body


async def test_a_corrupt_block_mid_download_cuts_the_response_and_stores_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = ONEMIB.content
    assert data is not None
    origin = onemib_origin()
    second_leaf = next(b.cid for b in ONEMIB.blocks() if len(b.data) == 4096)
    origin.corrupt(second_leaf)
    async with open_node(tmp_path, origins=[origin]) as node:
        reply = await node.http.get(ONEMIB_URL)
        assert reply.status == 200 and not reply.complete
        assert reply.header("content-length") == str(len(data))
        assert reply.body == data[:LEAF]  # the first leaf verified; nothing of the second
        assert node.blockstore.resolve_alias(ONEMIB_ALIAS) is None
        stats = node.blockstore.statistics()
        assert stats.objects == 0 and stats.staging_writers == 0
        # A Range beyond the good part gets the error as a status: no verified byte ever came for it.
        late = await node.http.get(ONEMIB_URL, range=f"bytes={LEAF + 1}-")
        assert late.status == 502 and late.complete
        assert origin.requests == [ONEMIB_ALIAS, ONEMIB_ALIAS]  # each request tried again; nothing was kept


async def test_concurrent_clients_share_one_transfer(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    data = ONEMIB.content
    assert data is not None
    origin = onemib_origin()
    hold = origin.hold(ONEMIB_ALIAS, after_bytes=0)
    async with open_node(tmp_path, origins=[origin]) as node:
        exchanges = [await node.http.open("GET", ONEMIB_URL) for _ in range(3)]
        exchanges.append(await node.http.open("GET", ONEMIB_URL, [("range", "bytes=5-9")]))
        await hold.reached.wait()
        await trio.testing.wait_all_tasks_blocked()
        hold.release.set()
        replies = [await exchange.finish() for exchange in exchanges]
        assert [(r.status, r.body) for r in replies] == [(200, data)] * 3 + [(206, data[5:10])]
        assert origin.requests == [ONEMIB_ALIAS]
        assert node.metric("lightning_fetcher_requests_total", result="merged") == 3


async def test_a_late_joiner_is_served_from_the_blockstore_once_published(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The spool keeps a small window: once the first client read past it, a new client from byte 0 cannot be fed
    from it and waits for the object to be published, then gets it whole; a client whose range is still ahead of
    the window joins the transfer."""
    data = ONEMIB.content
    assert data is not None
    origin = onemib_origin()
    hold = origin.hold(ONEMIB_ALIAS, after_bytes=LEAF)
    async with open_node(tmp_path, origins=[origin], spool_max_bytes=64 * 1024) as node:
        early = await node.http.open("GET", ONEMIB_URL)
        await hold.reached.wait()
        assert len(await early.read(LEAF)) == LEAF  # the first client is past the first MiB
        late = await node.http.open("GET", ONEMIB_URL)
        ahead = await node.http.open("GET", ONEMIB_URL, [("range", f"bytes={LEAF + 100}-")])
        late_arrived = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(head_arrives, late, late_arrived)
            await trio.testing.wait_all_tasks_blocked()
            assert not late_arrived.is_set()  # waiting for the publication, not for the spool
            hold.release.set()
        replies = [await early.finish(), await late.finish(), await ahead.finish()]
        assert [r.status for r in replies] == [200, 200, 206] and all(r.complete for r in replies)
        assert replies[0].body == data and replies[1].body == data and replies[2].body == data[LEAF + 100 :]
        assert origin.requests == [ONEMIB_ALIAS]


async def test_head_while_downloading(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    """HEAD waits for the first verified byte like GET, sends no body, and the download it started goes on."""
    data = ONEMIB.content
    assert data is not None
    origin = onemib_origin()
    hold = origin.hold(ONEMIB_ALIAS, after_bytes=LEAF)
    async with open_node(tmp_path, origins=[origin]) as node:
        head = await node.http.head(ONEMIB_URL)
        assert head.status == 200 and head.body == b"" and head.complete
        assert head.header("content-length") == str(len(data)) and head.header("etag") == f'"{ONEMIB.root}"'
        await hold.reached.wait()
        hold.release.set()
        got = await node.http.get(ONEMIB_URL)  # joins the transfer or reads the published object
        assert got.body == data and origin.requests == [ONEMIB_ALIAS]
        assert node.blockstore.resolve_alias(ONEMIB_ALIAS) == root_of_bytes(data)


async def test_a_full_fetch_queue_is_503(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    files = {f"f{i}.bin": bytes([i]) * 1000 for i in range(3)}
    cid, blocks = unixfs_directory(files)
    origin = BlockOrigin(blocks)
    hold = origin.hold(Pointer("ipfs", str(cid), "f0.bin").alias)
    async with open_node(tmp_path, origins=[origin], max_concurrent=1, max_queued=1) as node:
        running = await node.http.open("GET", f"/services/0/ipfs/{cid}/f0.bin")
        await hold.reached.wait()
        queued = await node.http.open("GET", f"/services/0/ipfs/{cid}/f1.bin")
        await trio.testing.wait_all_tasks_blocked()
        refused = await node.http.get(f"/services/0/ipfs/{cid}/f2.bin")
        assert refused.status == 503 and b"too many downloads" in refused.body
        hold.release.set()
        assert (await running.finish()).body == files["f0.bin"]
        assert (await queued.finish()).body == files["f1.bin"]
        assert (await node.http.get(f"/services/0/ipfs/{cid}/f2.bin")).body == files["f2.bin"]


async def test_a_seek_to_the_head_of_a_read_ahead_download_is_answered(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = ONEMIB.content
    assert data is not None
    cid, blocks = unixfs_directory({"index.m3u8": b"#EXTM3U\n#EXTINF:10.0,\nbig.ts\n", "big.ts": ONEMIB.root})
    origin = BlockOrigin([*blocks, *((b.cid, b.data) for b in ONEMIB.blocks())])
    hold = origin.hold(Pointer("ipfs", str(cid), "big.ts").alias, after_bytes=LEAF)
    async with open_node(tmp_path, origins=[origin], spool_max_bytes=64 * 1024) as node:
        assert (await node.http.get(f"/services/1/ipfs/{cid}/index.m3u8")).status == 200  # starts big.ts ahead
        await hold.reached.wait()  # 1 MiB of it in the spool, nobody reading
        seek = await node.http.open("GET", f"/services/1/ipfs/{cid}/big.ts", [("range", f"bytes={LEAF}-")])
        arrived = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(head_arrives, seek, arrived)
            await trio.testing.wait_all_tasks_blocked()
            hold.release.set()
            await trio.testing.wait_all_tasks_blocked()
            try:
                assert arrived.is_set(), "the seek never got an answer: the download is stalled"
            finally:
                nursery.cancel_scope.cancel()
        reply = await seek.finish()
        assert reply.status == 206 and reply.body == data[LEAF:]


async def test_a_head_never_holds_a_download_back(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    """A HEAD (or a client gone before the first byte) joins the download as a spool reader; its response body is
    never read, so the reader must be closed with the body, or the window fills and the download stalls for good."""
    deep = fixtures()["deep-raw.car"]  # 64 KiB in 90 blocks: many small appends to the spool
    data = deep.content
    assert data is not None
    url, alias = f"/services/0/ipfs/{deep.root}", Pointer("ipfs", str(deep.root)).alias
    origin = BlockOrigin([(b.cid, b.data) for b in deep.blocks()])
    async with open_node(tmp_path, origins=[origin], spool_max_bytes=4096) as node:
        head = await node.http.head(url)
        assert head.status == 200 and head.header("content-length") == str(len(data))
        await trio.testing.wait_all_tasks_blocked()  # the download runs to its end, or stalls with everyone blocked
        assert node.blockstore.resolve_alias(alias) is not None, "the download stalled behind a HEAD's reader"
        gone = await node.http.open("GET", f"{url}?again")
        await gone.head()
        await gone._stream.aclose()  # a client that leaves after the status line, before reading the body
        assert (await node.http.get(url)).body == data
