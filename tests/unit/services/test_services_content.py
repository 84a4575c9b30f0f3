"""Service 0 on local content, in memory: the real Blockstore, ContentService and HTTP server (tests/service_node.py).

What ``lightning/services/serve.py`` promises for an object on this node: the ETag and If-None-Match (304), Range
(206, 416, several or malformed ranges → the whole body), HEAD, ``Vary: Accept`` with the verified representation
(a proof stream a client checks with ``lightning/blockstore/verify.py``), ``nosniff`` everywhere and
``CSP: sandbox`` for types a browser would run — and, on a corrupt disk, never a byte that did not verify: a response
is refused (503) before its status line when it can be, and cut off at the bad block when it cannot.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.blockstore import BLOCK_SIZE, MEDIA_TYPE, ProofError, ProofStreamDecoder, TruncatedStreamError
from lightning.codec import decode, encode
from lightning.sim.http import Reply
from tests.service_node import BlockOrigin, ServiceNode, corrupt_block, open_node, unixfs_directory

SMALL = 64 * 1024  # serve.py's SMALL_BODY_BYTES: up to this the body is read whole and sent as bytes
VERIFIED = "application/vnd.lightning.verified"


def content(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def url(root: bytes, query: str = "") -> str:
    return f"/services/0/blake3/{root.hex()}{query}"


def assert_common_headers(reply: Reply, etag: str) -> None:
    assert reply.header("etag") == etag
    assert reply.header("cache-control") == "public, max-age=31536000, immutable"
    assert reply.header("vary") == "Accept"
    assert reply.header("x-content-type-options") == "nosniff"


def proof_blocks(root: bytes, stream: bytes, start_block: int = 0, end_block: int | None = None) -> bytes:
    """What a client gets out of a proof stream: the verified bytes (raises if anything does not verify)."""
    decoder = ProofStreamDecoder(root, start_block=start_block, end_block=end_block)
    out = b"".join(block.data for block in decoder.feed(stream))
    decoder.finish()
    return out


# -- the whole object, HEAD, conditional requests ------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1000, SMALL, SMALL + 1, 3 * BLOCK_SIZE + 1000])
async def test_get_and_head_of_a_local_object(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, size: int
) -> None:
    data = content(size, seed=size)
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        etag = f'"{root.hex()}"'
        got = await node.http.get(url(root))
        assert got.status == 200 and got.complete and got.body == data
        assert int(got.header("content-length") or -1) == size
        assert got.header("accept-ranges") == "bytes" and got.header("content-range") is None
        assert got.header("content-type") == "application/octet-stream"
        assert got.header("content-security-policy") is None
        assert_common_headers(got, etag)
        head = await node.http.head(url(root))
        assert head.status == 200 and head.complete and head.body == b""
        assert [h for h in head.headers if h[0] != "date"] == [h for h in got.headers if h[0] != "date"]


async def test_if_none_match(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    data = content(2 * BLOCK_SIZE)
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        etag = f'"{root.hex()}"'
        for value in (etag, "*"):
            for method in (node.http.get, node.http.head):
                reply = await method(url(root), if_none_match=value)
                assert reply.status == 304 and reply.complete and reply.body == b""
                assert reply.header("content-length") is None and reply.header("content-type") is None
                assert_common_headers(reply, etag)
        # A Range does not change that: the client already has every byte.
        assert (await node.http.get(url(root), range="bytes=0-9", if_none_match=etag)).status == 304
        other = await node.http.get(url(root), if_none_match=f'"{bytes(32).hex()}"')
        assert other.status == 200 and other.body == data
        # The verified representation has its own ETag: the plain one does not validate it, and back.
        verified_etag = f'"{root.hex()};verified"'
        assert (await node.http.get(url(root), accept=VERIFIED, if_none_match=etag)).status == 200
        assert (await node.http.get(url(root), accept=VERIFIED, if_none_match=verified_etag)).status == 304
        assert (await node.http.get(url(root), if_none_match=verified_etag)).status == 200


@pytest.mark.parametrize("form", ["weak", "list"])
async def test_if_none_match_is_a_weakly_compared_list(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, form: str
) -> None:
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(content(5000))
        etag = f'"{root.hex()}"'
        value = f"W/{etag}" if form == "weak" else f'"{bytes(32).hex()}", {etag}'
        assert (await node.http.get(url(root), if_none_match=value)).status == 304


# -- ranges ----------------------------------------------------------------------------------------------------------
BIG = 3 * BLOCK_SIZE + 1000


@pytest.mark.parametrize(
    ("size", "header", "expected"),
    [
        (1000, "bytes=0-99", (0, 100)),  # small object: read whole, sliced
        (1000, "bytes=-1", (999, 1000)),
        (BIG, "bytes=0-99", (0, 100)),  # inside one block: one verified read, plain bytes
        (BIG, f"bytes={BLOCK_SIZE + 10}-{BLOCK_SIZE + 20_009}", (BLOCK_SIZE + 10, BLOCK_SIZE + 20_010)),
        (BIG, "bytes=-500", (BIG - 500, BIG)),  # suffix inside the last block
        (BIG, f"bytes={BLOCK_SIZE + 10}-{BLOCK_SIZE + SMALL + 10}", (BLOCK_SIZE + 10, BLOCK_SIZE + SMALL + 11)),
        (BIG, f"bytes={BLOCK_SIZE - 10}-{BLOCK_SIZE + 9}", (BLOCK_SIZE - 10, BLOCK_SIZE + 10)),  # across blocks
        (BIG, f"bytes={2 * BLOCK_SIZE}-", (2 * BLOCK_SIZE, BIG)),  # open-ended
        (BIG, "bytes=100-99999999", (100, BIG)),  # clamped to the end
        (BIG, "bytes=-99999999", (0, BIG)),
        (BIG, "bytes=0-", (0, BIG)),
    ],
)
async def test_single_range_is_206(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, size: int, header: str, expected: tuple[int, int]
) -> None:
    data = content(size, seed=7)
    start, end = expected
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        for method in (node.http.get, node.http.head):
            reply = await method(url(root), range=header)
            assert reply.status == 206 and reply.complete
            assert reply.header("content-range") == f"bytes {start}-{end - 1}/{size}"
            assert int(reply.header("content-length") or -1) == end - start
            assert reply.header("accept-ranges") == "bytes"
            assert_common_headers(reply, f'"{root.hex()}"')
            assert reply.body == (data[start:end] if method == node.http.get else b"")


@pytest.mark.parametrize(
    "header",
    ["bytes=0-1,4-5", "bytes=0-1, 9-", "items=0-9", "bytes=9-2", "bytes=a-b", "bytes=1", "bytes", "bytes=-", "=0-1"],
)
@pytest.mark.parametrize("size", [1000, BIG])
async def test_several_or_malformed_ranges_get_the_whole_body(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, header: str, size: int
) -> None:
    data = content(size, seed=3)
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        reply = await node.http.get(url(root), range=header)
        assert reply.status == 200 and reply.complete and reply.body == data
        assert reply.header("content-range") is None


@pytest.mark.parametrize(
    ("size", "header"),
    [(1000, "bytes=1000-"), (1000, "bytes=5000-6000"), (1000, "bytes=-0"), (BIG, f"bytes={BIG}-"),
     (BIG, "bytes=-0"), (0, "bytes=0-"), (0, "bytes=-5")],
)  # fmt: skip
async def test_unsatisfiable_range_is_416(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, size: int, header: str
) -> None:
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(content(size, seed=4))
        for method in (node.http.get, node.http.head):
            reply = await method(url(root), range=header)
            assert reply.status == 416 and reply.complete and reply.body == b""
            assert reply.header("content-range") == f"bytes */{size}"
            assert_common_headers(reply, f'"{root.hex()}"')


def expected_range(header: tuple[int | None, int | None], size: int) -> tuple[int, int] | str | None:
    """RFC 9110 §14.1.2 for one byte-range-spec: (start, end) to serve, None for the whole body, "416"."""
    first, last = header
    if first is None:
        assert last is not None
        return "416" if last == 0 or size == 0 else (max(0, size - last), size)
    if last is not None and last < first:
        return None  # invalid: ignored
    if first >= size:
        return "416"
    return first, size if last is None else min(last + 1, size)


range_spec = st.one_of(
    st.tuples(st.integers(0, BIG + 10), st.none() | st.integers(0, BIG + 10)),
    st.tuples(st.none(), st.integers(0, BIG + 10)),
)


@settings(max_examples=40, deadline=None)
@given(specs=st.lists(range_spec, min_size=1, max_size=6), size=st.sampled_from([0, 1, 1000, SMALL + 3, BIG]))
def test_any_single_range_serves_exactly_its_bytes(
    tmp_path_factory: pytest.TempPathFactory, specs: list[tuple[int | None, int | None]], size: int
) -> None:
    data = content(size, seed=size)
    path = tmp_path_factory.mktemp("range")

    async def main() -> None:
        async with open_node(path) as node:
            root = await node.blockstore.put(data)
            for first, last in specs:
                header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
                reply = await node.http.get(url(root), range=header)
                want = expected_range((first, last), size)
                if want == "416":
                    assert reply.status == 416, header
                    assert reply.header("content-range") == f"bytes */{size}"
                elif want is None:
                    assert (reply.status, reply.body) == (200, data), header
                else:
                    assert isinstance(want, tuple)
                    start, end = want
                    assert reply.status == 206 and reply.complete, header
                    assert reply.body == data[start:end], header
                    assert reply.header("content-range") == f"bytes {start}-{end - 1}/{size}"

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# -- the verified representation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1000, 3 * BLOCK_SIZE + 1000])
async def test_verified_representation_is_a_proof_stream(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, size: int
) -> None:
    data = content(size, seed=11)
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        cases: list[tuple[str, dict[str, str], str]] = [
            ("", {"accept": VERIFIED}, VERIFIED),
            ("", {"accept": MEDIA_TYPE}, MEDIA_TYPE),
            ("", {"accept": f"text/html, {MEDIA_TYPE};q=0.9"}, MEDIA_TYPE),
            ("?format=verified", {}, VERIFIED),
        ]
        for query, headers, media in cases:
            reply = await node.http.get(url(root, query), **headers)
            assert reply.status == 200 and reply.complete
            assert reply.header("content-type") == media
            assert reply.header("accept-ranges") is None and reply.header("content-range") is None
            assert_common_headers(reply, f'"{root.hex()};verified"')
            assert proof_blocks(root, reply.body) == data
        # The same bytes under another root do not verify: the client would notice a wrong object.
        with pytest.raises(ProofError):
            proof_blocks(bytes(32), reply.body)
        head = await node.http.head(url(root), accept=VERIFIED)
        assert head.status == 200 and head.body == b"" and head.header("content-type") == VERIFIED


async def test_verified_range_carries_the_blocks_that_cover_it(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = content(5 * BLOCK_SIZE + 77, seed=12)
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        for first, last in [(0, 0), (BLOCK_SIZE - 1, BLOCK_SIZE), (2 * BLOCK_SIZE + 5, 4 * BLOCK_SIZE + 2)]:
            reply = await node.http.get(url(root), range=f"bytes={first}-{last}", accept=VERIFIED)
            assert reply.status == 200 and reply.header("content-range") is None
            start_block, end_block = first // BLOCK_SIZE, last // BLOCK_SIZE + 1
            blocks = proof_blocks(root, reply.body, start_block, end_block)
            assert blocks == data[start_block * BLOCK_SIZE : end_block * BLOCK_SIZE]
        assert (await node.http.get(url(root), range=f"bytes={len(data)}-", accept=VERIFIED)).status == 416


async def test_verified_mode_of_missing_content(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    missing = url(bytes(range(32)))
    async with open_node(tmp_path) as node:  # no fetcher: only what is here
        assert (await node.http.get(missing, accept=VERIFIED)).status == 404
        assert (await node.http.get(missing)).status == 404
    async with open_node(tmp_path / "b", origins=[]) as node:  # a fetcher: the client is told to come back
        reply = await node.http.get(missing, accept=VERIFIED)
        assert reply.status == 409 and b"retry" in reply.body


# -- Content-Type and what a browser may run ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "ctype"),
    [
        (b"<html><script>alert(1)</script></html>", "text/plain; charset=utf-8"),  # never sniffed as HTML
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "text/plain; charset=utf-8"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png"),
        (b"#EXTM3U\n#EXT-X-VERSION:3\n", "application/vnd.apple.mpegurl"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(SMALL), "video/mp4"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(3 * BLOCK_SIZE), "video/mp4"),  # sniffed from the first block
    ],
)
async def test_nameless_content_is_sniffed_never_as_active_content(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, data: bytes, ctype: str
) -> None:
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        reply = await node.http.get(url(root))
        assert reply.body == data and reply.header("content-type") == ctype
        assert reply.header("content-security-policy") is None
        assert reply.header("x-content-type-options") == "nosniff"


ACTIVE = {"index.html": "text/html; charset=utf-8", "old.htm": "text/html; charset=utf-8",
          "pic.svg": "image/svg+xml", "feed.xml": "application/xml", "doc.xhtml": "application/xhtml+xml",
          "big.html": "text/html; charset=utf-8"}  # fmt: skip
PASSIVE = {"style.css": "text/css; charset=utf-8", "notes.txt": "text/plain; charset=utf-8",
           "data.json": "application/json; charset=utf-8", "clip.mp4": "video/mp4", "list.m3u8":
           "application/vnd.apple.mpegurl", "blob": "text/plain; charset=utf-8"}  # fmt: skip
PAGE = b"<html><body><script>fetch('/rpc')</script></body></html>"


async def test_types_a_browser_would_run_are_sandboxed(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    """By name (IPFS paths): HTML, SVG and XML get ``CSP: sandbox``, so stored content cannot script the node's
    origin; the same headers whether the answer streams from the origin or from the blockstore, whole or streamed."""
    files = {name: PAGE for name in [*ACTIVE, *PASSIVE]}
    files["big.html"] = PAGE + b" " * (3 * SMALL)  # streamed, not read whole
    cid, blocks = unixfs_directory({f"site/{name}": data for name, data in files.items()})
    async with open_node(tmp_path, origins=[BlockOrigin(blocks)]) as node:
        for name, ctype in [*ACTIVE.items(), *PASSIVE.items()]:
            for where in ("origin", "local", "local range"):
                reply = await node.http.get(
                    f"/services/0/ipfs/{cid}/site/{name}", range="bytes=0-" if "range" in where else None
                )
                assert reply.complete and reply.body == files[name], (name, where)
                assert reply.header("content-type") == ctype, (name, where)
                assert reply.header("x-content-type-options") == "nosniff"
                csp = "sandbox" if name in ACTIVE else None
                assert reply.header("content-security-policy") == csp, (name, where)


@pytest.mark.parametrize("name", ["feed.atom", "feed.rss", "data.rdf", "style.xsl", "formula.mml", "map.kml"])
async def test_every_xml_type_is_sandboxed(autojump_clock: trio.testing.MockClock, tmp_path: Path, name: str) -> None:
    page = b'<feed><script xmlns="http://www.w3.org/1999/xhtml">fetch("/")</script></feed>'
    cid, blocks = unixfs_directory({name: page})
    async with open_node(tmp_path, origins=[BlockOrigin(blocks)]) as node:
        reply = await node.http.get(f"/services/0/ipfs/{cid}/{name}")
        assert reply.status == 200 and reply.body == page
        essence = (reply.header("content-type") or "").split(";")[0].strip()
        if essence.endswith(("+xml", "/xml")):
            assert reply.header("content-security-policy") == "sandbox", essence


@pytest.mark.parametrize("size", [100, SMALL])
async def test_small_bodies_are_cached_verified(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, size: int
) -> None:
    """A small blake3 object read once is kept in memory as verified bytes: it stays servable (a root's bytes
    never change) even if its block goes bad on disk afterwards."""
    data = content(size, seed=31)
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        assert (await node.http.get(url(root))).body == data
        info = node.blockstore.info(root)
        assert info is not None
        corrupt_block(node.blockstore, info, 0)
        again = await node.http.get(url(root), range="bytes=1-")
        assert again.status == 206 and again.body == data[1:]
        assert node.blockstore.store.verification_failures == 0


# -- routing ---------------------------------------------------------------------------------------------------------
async def test_methods_and_malformed_targets(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(b"x")
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            reply = await node.http.request(method, url(root))
            assert reply.status == 405 and reply.header("allow") == "GET, HEAD"
        for target, status in [
            ("/services/0/blake3/zz", 400),
            (f"/services/0/blake3/{root.hex()[:-2]}", 400),
            ("/services/0/ipfs/not-a-cid", 400),
            ("/services/0/somewhere/else", 404),
            ("/services/0", 404),
            (f"/services/0/blake3/{bytes(32).hex()}", 404),
            ("/services/7/blake3/00", 404),
        ]:
            assert (await node.http.get(target)).status == status, target
        assert (await node.http.get(f"/services/0/blake3/{root.hex()}/")).body == b"x"


# -- a corrupt disk ----------------------------------------------------------------------------------------------------
async def put_and_corrupt(node: ServiceNode, data: bytes, index: int) -> bytes:
    root = await node.blockstore.put(data)
    info = node.blockstore.info(root)
    assert info is not None
    corrupt_block(node.blockstore, info, index)
    return root


@pytest.mark.parametrize(
    ("header", "start", "served_to"),
    [
        (None, 0, 2 * BLOCK_SIZE),  # blocks 0 and 1 verified and sent, then the connection is cut
        (f"bytes={BLOCK_SIZE + 100}-", BLOCK_SIZE + 100, 2 * BLOCK_SIZE),
        (f"bytes={2 * BLOCK_SIZE - 5}-{3 * BLOCK_SIZE}", 2 * BLOCK_SIZE - 5, 2 * BLOCK_SIZE),
        (f"bytes={2 * BLOCK_SIZE}-{2 * BLOCK_SIZE + SMALL * 2}", 2 * BLOCK_SIZE, 2 * BLOCK_SIZE),  # nothing good
    ],
)
async def test_a_corrupt_block_cuts_the_stream_before_its_first_byte(
    autojump_clock: trio.testing.MockClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    header: str | None,
    start: int,
    served_to: int,
) -> None:
    data = content(4 * BLOCK_SIZE + 10, seed=21)
    async with open_node(tmp_path) as node:
        root = await put_and_corrupt(node, data, 2)
        reply = await node.http.get(url(root), range=header)
        assert reply.status in (200, 206) and not reply.complete  # the promised length never arrives
        assert int(reply.header("content-length") or 0) > len(reply.body)
        assert reply.body == data[start:served_to]  # only verified bytes, every one of them
        assert any("aborting" in r.getMessage() for r in caplog.records)
        # Corruption does not heal and is not cached as good: the next request is cut at the same place.
        again = await node.http.get(url(root), range=header)
        assert again.body == reply.body and not again.complete
        # Ranges that stay clear of the bad block are served whole.
        clear = await node.http.get(url(root), range=f"bytes=10-{2 * BLOCK_SIZE - 1}")
        assert clear.status == 206 and clear.complete and clear.body == data[10 : 2 * BLOCK_SIZE]
        assert node.blockstore.store.verification_failures >= 2


@pytest.mark.parametrize(
    ("size", "index", "header"),
    [
        (1000, 0, None),  # small: the whole body is verified before the status line
        (SMALL, 0, "bytes=10-20"),
        (2 * BLOCK_SIZE, 1, f"bytes={BLOCK_SIZE + 1}-{BLOCK_SIZE + 100}"),  # a range inside one bad block
        (2 * BLOCK_SIZE, 1, "bytes=-100"),
    ],
)
async def test_a_corrupt_block_read_before_the_status_line_is_503(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, size: int, index: int, header: str | None
) -> None:
    data = content(size, seed=22)
    async with open_node(tmp_path) as node:
        root = await put_and_corrupt(node, data, index)
        for method in (node.http.get, node.http.head):
            reply = await method(url(root), range=header)
            assert reply.status == 503 and reply.complete
            assert reply.header("etag") is None and reply.header("cache-control") is None  # nothing to cache
            assert b"failed verification" in reply.body or method == node.http.head
            assert data[:8] not in reply.body


async def test_a_corrupt_first_block_sends_no_byte(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    data = content(3 * BLOCK_SIZE, seed=23)
    async with open_node(tmp_path) as node:
        root = await put_and_corrupt(node, data, 0)
        reply = await node.http.get(url(root))
        assert reply.status == 200 and reply.body == b"" and not reply.complete


async def test_verified_stream_of_a_corrupt_object_stops_at_the_bad_block(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = content(4 * BLOCK_SIZE, seed=24)
    async with open_node(tmp_path) as node:
        root = await put_and_corrupt(node, data, 2)
        reply = await node.http.get(url(root), accept=VERIFIED)
        assert reply.status == 200 and not reply.complete
        decoder = ProofStreamDecoder(root)
        blocks = decoder.feed(reply.body)
        assert [b.index for b in blocks] == [0, 1] and b"".join(b.data for b in blocks) == data[: 2 * BLOCK_SIZE]
        with pytest.raises(TruncatedStreamError):
            decoder.finish()


def rewrite_record(node: ServiceNode, root: bytes, change: Callable[[dict[str, object]], bytes | None]) -> None:
    """Damage the object's record (its length and block list) in LMDB."""
    store = node.blockstore.store
    with store.env.begin(write=True) as txn:
        db = store.env.open_db(b"objects", txn=txn)
        row = decode(bytes(txn.get(root, db=db)))
        raw = change(row)
        txn.put(root, raw if raw is not None else encode(row), db=db)


def flip_hash(row: dict[str, object]) -> None:
    hashes = bytearray(row["hashes"])  # type: ignore[arg-type]
    hashes[40] ^= 1  # block 1's hash: the list no longer hashes to the root
    row["hashes"] = bytes(hashes)


async def test_a_block_list_that_does_not_match_the_root_is_refused(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = content(3 * BLOCK_SIZE, seed=25)
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(data)
        rewrite_record(node, root, lambda row: flip_hash(row))
        for header in (None, "bytes=0-9", f"bytes={BLOCK_SIZE}-"):
            reply = await node.http.get(url(root), range=header)
            assert reply.status == 503 and b"failed verification" in reply.body


async def test_verified_mode_refuses_a_bad_block_list_like_plain_mode(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_node(tmp_path) as node:
        root = await node.blockstore.put(content(3 * BLOCK_SIZE, seed=26))
        rewrite_record(node, root, lambda row: flip_hash(row))
        assert (await node.http.get(url(root))).status == 503
        assert (await node.http.get(url(root), accept=VERIFIED)).status == 503
