"""The client-facing half of a node, in one process and without sockets: a real Blockstore (inline, in a temporary
directory), the content Fetcher, ContentService and VideoService behind the ClientEndpoint's router, served by
``lightning.http.serve_connection`` over in-memory streams (tests/memory_http.py).

Origins: :class:`BlockOrigin` is an IPFS origin over blocks held in memory (a CAR fixture's, or a directory a test
builds with :func:`unixfs_directory`). It resolves paths and streams files with the verifying drivers of
``lightning.ipfs``, as ``IpfsGatewayOrigin`` does over HTTP, so a corrupted block fails verification exactly there.
``hold`` pauses it at a byte offset of one pointer, for tests about downloads in flight.

Usage (under the autojump clock; fetch timeouts are set out of reach so a held origin is never timed out)::

    async with open_node(tmp_path, origins=[BlockOrigin.from_car(path)]) as node:
        reply = await node.http.get(f"/services/0/ipfs/{cid}")
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio
from prometheus_client import CollectorRegistry

from lightning.blockstore.component import Blockstore
from lightning.blockstore.store import ObjectInfo
from lightning.config import Config
from lightning.fetcher import Fetcher, NotFound, OriginFailed, Pointer, Sink, Source
from lightning.http.endpoint import ClientEndpoint
from lightning.ipfs import (
    DAG_PB,
    BadContent,
    Cid,
    DataType,
    InvalidPath,
    NotAFile,
    PathNotFound,
    PbLink,
    PbNode,
    UnixFsData,
    encode_pbnode,
    encode_unixfs,
    open_file,
    parse_cid,
    resolve_path,
)
from lightning.ipfs.car import CarDecoder
from lightning.services import ContentService, ServiceMetrics, VideoService
from lightning.sim.http import MemoryHttp

__all__ = ["BlockOrigin", "Hold", "ServiceNode", "corrupt_block", "open_node", "unixfs_directory"]

FAR_S = 1e9  # fetch timeouts no test reaches


@dataclass
class Hold:
    """Where an origin stops for one pointer: after ``after_bytes`` of the file went into the sink."""

    after_bytes: int
    reached: trio.Event = field(default_factory=trio.Event)
    release: trio.Event = field(default_factory=trio.Event)


class BlockOrigin:
    """An IPFS origin over blocks in memory. ``requests`` lists the aliases asked for, in order; ``corrupt(cid)``
    flips a byte of that block wherever it is served; ``hold(alias, n)`` pauses that pointer's transfer."""

    name = "origin"

    def __init__(self, blocks: Iterable[tuple[Cid, bytes]]) -> None:
        self.blocks = {cid.multihash: bytes(data) for cid, data in blocks}
        self.requests: list[str] = []
        self._holds: dict[str, Hold] = {}

    @classmethod
    def from_car(cls, *paths: Path) -> BlockOrigin:
        blocks = []
        for path in paths:
            decoder = CarDecoder()
            blocks += [(block.cid, block.data) for block in decoder.feed(path.read_bytes())]
            decoder.finish()
        return cls(blocks)

    def corrupt(self, cid: Cid) -> None:
        data = bytearray(self.blocks[cid.multihash])
        data[len(data) // 2] ^= 0x01
        self.blocks[cid.multihash] = bytes(data)

    def hold(self, alias: str, after_bytes: int = 0) -> Hold:
        hold = self._holds[alias] = Hold(after_bytes)
        return hold

    def handles(self, pointer: Pointer) -> bool:
        return pointer.kind == "ipfs"

    async def _get(self, cid: Cid) -> bytes:
        await trio.lowlevel.checkpoint()
        data = self.blocks.get(cid.multihash)
        if data is None:
            raise NotFound(f"block {cid} is not at this origin")
        return data

    async def fetch(self, pointer: Pointer, sink: Sink) -> None:
        self.requests.append(pointer.alias)
        hold = self._holds.get(pointer.alias)
        written = 0

        async def maybe_hold() -> None:
            if hold is not None and written >= hold.after_bytes and not hold.release.is_set():
                hold.reached.set()
                await hold.release.wait()

        try:
            target = await resolve_path(parse_cid(pointer.key), pointer.path, self._get)
            stream = await open_file(target.cid, self._get)
            if target.name:
                sink.set_name(target.name)
            sink.set_total_len(stream.size)
            await maybe_hold()
            async for chunk in stream.chunks():
                await sink.write(chunk)
                written += len(chunk)
                await maybe_hold()
        except (PathNotFound, InvalidPath, NotAFile) as exc:
            raise NotFound(f"{pointer}: {exc}") from None
        except BadContent as exc:
            raise OriginFailed(f"{pointer}: {exc}") from None


def unixfs_directory(files: Mapping[str, bytes | Cid]) -> tuple[Cid, list[tuple[Cid, bytes]]]:
    """A UnixFS directory tree (dag-pb directories, raw-leaf files of at most 1 MiB) holding ``files`` by path
    ("a/b.txt"); a CID instead of bytes links an existing DAG (its blocks are the caller's). Returns the root CID
    and the new blocks."""
    blocks: list[tuple[Cid, bytes]] = []

    def build(tree: Mapping[str, object]) -> tuple[Cid, int]:
        links = []
        for name in sorted(tree):
            child = tree[name]
            if isinstance(child, Cid):
                cid, size = child, 0
            elif isinstance(child, bytes):
                assert len(child) <= 1024 * 1024
                cid, size = Cid.of(child), len(child)
                blocks.append((cid, child))
            else:
                assert isinstance(child, dict)
                cid, size = build(child)
            links.append(PbLink(cid, name.encode(), size))
        node = encode_pbnode(PbNode(tuple(links), encode_unixfs(UnixFsData(DataType.DIRECTORY))))
        cid = Cid.of(node, codec=DAG_PB)
        blocks.append((cid, node))
        return cid, len(node) + sum(link.tsize or 0 for link in links)

    tree: dict[str, object] = {}
    for path, data in files.items():
        *dirs, leaf = path.split("/")
        at = tree
        for d in dirs:
            nxt = at.setdefault(d, {})
            assert isinstance(nxt, dict)
            at = nxt
        at[leaf] = data
    root, _ = build(tree)
    return root, blocks


def corrupt_block(blockstore: Blockstore, info: ObjectInfo, index: int) -> None:
    """Flip one bit of block ``index`` where LMDB keeps it (as a failing disk would)."""
    store = blockstore.store
    h = info.block_hash(index)
    with store.env.begin(write=True) as txn:
        db = store.env.open_db(b"blocks", txn=txn)
        raw = bytearray(txn.get(h, db=db))
        raw[len(raw) // 3] ^= 0x04
        txn.put(h, bytes(raw), db=db)


@dataclass
class ServiceNode:
    blockstore: Blockstore
    fetcher: Fetcher | None
    content: ContentService
    video: VideoService
    registry: CollectorRegistry
    http: MemoryHttp

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@asynccontextmanager
async def open_node(
    tmp_path: Path,
    *,
    origins: Sequence[Source] | None = None,
    readahead_segments: int = 3,
    **fetcher_overrides: int | float,
) -> AsyncIterator[ServiceNode]:
    """A running node half; ``origins=None`` means no fetcher at all (only local content is served)."""
    config = Config()
    blockstore = Blockstore(
        dataclasses.replace(config.blockstore, map_size_bytes=1 << 30), tmp_path / "blockstore", inline=True
    )
    registry = CollectorRegistry()
    fetcher = None
    if origins is not None:
        fetcher_config = dataclasses.replace(
            config.fetcher, **{"first_byte_timeout_s": FAR_S, "idle_timeout_s": FAR_S, **fetcher_overrides}
        )
        fetcher = Fetcher(fetcher_config, blockstore, list(origins), registry=registry)
    metrics = ServiceMetrics(registry)
    content = ContentService(blockstore, fetcher=fetcher, metrics=metrics)
    video = VideoService(
        blockstore, fetcher=fetcher, metrics=metrics, registry=registry, readahead_segments=readahead_segments
    )
    endpoint = ClientEndpoint(
        config.http,
        host="127.0.0.1",
        health=lambda: {"status": "ok"},
        services={ContentService.service_id: content.handle, VideoService.service_id: video.handle},
    )
    async with trio.open_nursery() as outer:
        await outer.start(blockstore.run)
        async with trio.open_nursery() as inner:  # the fetcher and connections stop before the blockstore
            if fetcher is not None:
                await inner.start(fetcher.run)
            yield ServiceNode(blockstore, fetcher, content, video, registry, MemoryHttp(inner, endpoint.handle))
            inner.cancel_scope.cancel()
        outer.cancel_scope.cancel()
