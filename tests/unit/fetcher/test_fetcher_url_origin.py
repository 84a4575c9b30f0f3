"""URL origins (lightning/fetcher/url_origin.py): pointers pinned by a Subresource-Integrity hash, off by default, and
never a way into the node's own network — hosts that are or resolve to loopback, private, link-local, multicast or
otherwise non-public addresses are refused before any connection (no sockets here: the refusal comes first, and
literal addresses and ``localhost`` resolve without DNS)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import urllib.parse
from pathlib import Path

import pytest
import trio
import trio.testing

from lightning.blockstore.component import Blockstore
from lightning.config import Config
from lightning.fetcher import Fetcher, FetchError, NotFound, OriginFailed, Pointer
from lightning.fetcher.url_origin import Integrity, UrlOrigin, parse_url_pointer
from tests.service_node import open_node

BODY = b"lightning"
SRI = "sha256-" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()

REFUSED = [
    "127.0.0.1",
    "127.1.2.3",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "169.254.169.254",  # cloud metadata
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",  # multicast
    "[::1]",
    "[::]",
    "[fe80::1]",
    "[fc00::1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped loopback
    "[::ffff:10.0.0.1]",
    "[ff02::1]",
    "localhost",
]


def url_origin(**overrides: bool) -> UrlOrigin:
    return UrlOrigin(dataclasses.replace(Config().origin_url, **{"enabled": True, **overrides}))


async def fetch_error(tmp_path: Path, origin: UrlOrigin, pointer: Pointer) -> BaseException | None:
    """Run the real Fetcher with this origin as its only source; the error the download failed with."""
    config = Config()
    blockstore = Blockstore(
        dataclasses.replace(config.blockstore, map_size_bytes=1 << 30), tmp_path / "bs", inline=True
    )
    fetcher = Fetcher(config.fetcher, blockstore, [origin])
    async with trio.open_nursery() as nursery:
        await nursery.start(blockstore.run)
        await nursery.start(fetcher.run)
        download = fetcher.start(pointer)
        await download.done.wait()
        assert blockstore.statistics().objects == 0
        nursery.cancel_scope.cancel()
    return download.spool.error


@pytest.mark.parametrize("host", REFUSED)
async def test_non_public_hosts_are_refused(tmp_path: Path, host: str) -> None:
    pointer = parse_url_pointer(f"http://{host}:8080/file.bin#integrity={SRI}")
    error = await fetch_error(tmp_path, url_origin(), pointer)
    assert isinstance(error, OriginFailed)
    assert "non-public address; refused" in str(error)


async def test_disabled_by_default(tmp_path: Path) -> None:
    pointer = parse_url_pointer(f"https://example.com/file.bin#integrity={SRI}")
    assert not Config().origin_url.enabled
    error = await fetch_error(tmp_path, UrlOrigin(), pointer)
    assert isinstance(error, NotFound) and "disabled" in str(error)
    source = UrlOrigin()
    assert source.handles(pointer) and not source.handles(Pointer("ipfs", "bafy"))


async def test_clients_learn_only_that_the_origin_failed(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Through service 0: a refused host reads like any failing origin, so a client cannot map the node's network."""
    async with open_node(tmp_path, origins=[url_origin()]) as node:
        reply = await node.http.get(f"/services/0/url/http://10.0.0.5/admin%23integrity={SRI}")
        assert reply.status == 502
        assert b"10.0.0.5" not in reply.body and b"non-public" not in reply.body and b"refused" not in reply.body
    async with open_node(tmp_path / "off", origins=[UrlOrigin()]) as node:
        reply = await node.http.get(f"/services/0/url/https://example.com/f%23integrity={SRI}")
        assert reply.status == 404 and b"URL origins are disabled" in reply.body
        bad = await node.http.get("/services/0/url/https://example.com/f")  # no integrity hash
        assert bad.status == 400 and b"integrity" in bad.body


def test_url_pointers() -> None:
    pointer = parse_url_pointer(f"https://example.com/a/b.mp4?x=1#integrity={SRI}")
    assert pointer == Pointer("url", "https://example.com/a/b.mp4?x=1", SRI)
    assert str(Integrity.parse(SRI)) == SRI and Integrity.parse(SRI).digest == hashlib.sha256(BODY).digest()
    sha512 = "sha512-" + base64.b64encode(hashlib.sha512(BODY).digest()).decode()
    assert parse_url_pointer(f"http://example.com/#integrity={sha512}").path == sha512
    for text, why in [
        ("https://example.com/f", "needs #integrity"),
        (f"ftp://example.com/f#integrity={SRI}", "not an http"),
        (f"file:///etc/passwd#integrity={SRI}", "not an http"),
        (f"https:///f#integrity={SRI}", "not an http"),
        ("https://example.com/f#integrity=md5-AAAA", "algorithm must be one of"),
        ("https://example.com/f#integrity=sha256-!!!", "not base64"),
        ("https://example.com/f#integrity=sha256-" + base64.b64encode(b"short").decode(), "wrong digest length"),
    ]:
        with pytest.raises(FetchError, match=why):
            parse_url_pointer(text)


async def test_an_integrity_hash_with_a_plus_is_accepted(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    sri = "sha256-" + base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    assert "+" in sri
    async with open_node(tmp_path, origins=[UrlOrigin()]) as node:  # disabled: a valid pointer is a 404
        pointer = f"https://example.com/f#integrity={sri}"
        reply = await node.http.get(f"/services/0/url/{urllib.parse.quote(pointer, safe='')}")
        assert reply.status == 404, reply.body
    assert parse_url_pointer(pointer).path == sri
