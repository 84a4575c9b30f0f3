"""A tiny trustless IPFS gateway for tests, on trio over lightning/http/server.py.

Serves the blocks of a set of CAR files:

- ``GET|HEAD /ipfs/{cid}?format=raw`` (or ``Accept: application/vnd.ipld.raw``): one block, 404 if unknown.
- ``GET|HEAD /ipfs/{cid}[/path]?format=car`` (or ``Accept: application/vnd.ipld.car``): a CARv1 whose header
  roots is ``[cid]``, then the blocks that resolve ``path`` (plain and HAMT directories), then the terminal
  entity per ``dag-scope``: ``block`` (its root block), ``entity`` (a file's whole DAG; a directory's own block,
  or all its shards for a HAMT), ``all`` (default: every block below). Order is DFS pre-order (``order=dfs``)
  unless ``order`` is set to "post" (children before parents, as ipfs-car writes CARs). Duplicates are sent
  each time they occur (``dups=y``) unless the request asks ``dups=n`` (``?dups=n`` / ``car-dups=n`` or the
  Accept parameter) or ``dups`` is forced here. Identity CIDs are never sent (the spec forbids it).

Switches for failure tests: ``corrupt(cid)`` flips a byte of a block wherever it is served, ``swap(cid, other)``
serves another block's bytes under ``cid``, ``drop(cid)`` leaves a block out, ``truncate_at`` cuts CAR bodies
after that many bytes, ``header_roots`` replaces the CAR header's roots, ``fail_status`` answers every request
with that status. ``requests`` records each request (format, path), so a test can prove the origin was or wasn't
touched; ``car_requests`` / ``raw_requests`` count them.

Usage::

    gateway = TestGateway.from_cars(paths)
    host, port = await nursery.start(gateway.serve)
    ... f"http://{host}:{port}/ipfs/{cid}?format=car&dag-scope=entity" ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import trio

from lightning.http import Request, Response, serve_http
from lightning.ipfs import (
    DAG_PB,
    Block,
    Cid,
    DataType,
    InvalidCid,
    IpfsError,
    PathResolver,
    decode_pbnode,
    decode_unixfs,
    encode_car_header,
    encode_car_section,
    inline_block,
    parse_path,
)
from lightning.ipfs.car import CarDecoder

CAR_TYPE = "application/vnd.ipld.car"
RAW_TYPE = "application/vnd.ipld.raw"


class TestGateway:
    __test__ = False  # not a pytest test class

    def __init__(self, blocks: Iterable[tuple[Cid, bytes]], *, chunk_bytes: int = 16 * 1024) -> None:
        self.blocks: dict[bytes, bytes] = {}
        self.cids: dict[bytes, Cid] = {}
        for cid, data in blocks:
            self.blocks[cid.multihash] = data
            self.cids.setdefault(cid.multihash, cid)
        self.chunk_bytes = chunk_bytes
        self.order = "dfs"
        self.dups: bool | None = None  # None: as the request asks (default y)
        self.truncate_at: int | None = None
        self.header_roots: list[Cid] | None = None
        self.fail_status: int | None = None
        self.requests: list[tuple[str, str]] = []
        self._corrupt: set[bytes] = set()
        self._swap: dict[bytes, bytes] = {}
        self._drop: set[bytes] = set()

    @classmethod
    def from_cars(cls, paths: Iterable[Path], **kwargs: int) -> TestGateway:
        blocks: list[tuple[Cid, bytes]] = []
        for path in paths:
            decoder = CarDecoder()
            blocks += [(block.cid, block.data) for block in decoder.feed(path.read_bytes())]
            decoder.finish()
        return cls(blocks, **kwargs)

    # -- switches -----------------------------------------------------------------------------------------------

    def corrupt(self, cid: Cid) -> None:
        self._corrupt.add(cid.multihash)

    def swap(self, cid: Cid, other: Cid) -> None:
        self._swap[cid.multihash] = other.multihash

    def drop(self, cid: Cid) -> None:
        self._drop.add(cid.multihash)

    @property
    def car_requests(self) -> int:
        return sum(1 for kind, _ in self.requests if kind == "car")

    @property
    def raw_requests(self) -> int:
        return sum(1 for kind, _ in self.requests if kind == "raw")

    # -- serving ------------------------------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_http(self.handle, "127.0.0.1", 0, name="test-gateway", task_status=task_status)

    def block(self, cid: Cid) -> bytes | None:
        """The bytes served for ``cid`` (after the switches), or None if unknown or dropped."""
        key = cid.multihash
        if key in self._drop:
            return None
        data = self.blocks.get(self._swap.get(key, key))
        if data is None:
            return None
        if key in self._corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0x01]) if data else b"\x00"
        return data

    async def handle(self, request: Request) -> Response:
        await trio.lowlevel.checkpoint()
        accept = request.header("accept", "") or ""
        fmt = request.query.get("format", [""])[0] or (
            "car" if CAR_TYPE in accept else "raw" if RAW_TYPE in accept else ""
        )
        self.requests.append((fmt, request.target))
        if self.fail_status is not None:
            return Response.text("failing on purpose\n", status=self.fail_status)
        if request.method not in ("GET", "HEAD"):
            return Response(405, [("allow", "GET, HEAD")])
        parts = request.path.split("/", 3)
        if len(parts) < 3 or parts[1] != "ipfs":
            return Response.text("not found\n", status=404)
        try:
            root = Cid.parse(parts[2])
            segments = parse_path(parts[3]) if len(parts) > 3 else ()
        except (InvalidCid, IpfsError) as exc:
            return Response.text(f"{exc}\n", status=400)
        if fmt == "raw":
            if segments:
                return Response.text("raw blocks take no path\n", status=400)
            inline = inline_block(root)
            data = inline.data if inline is not None else self.block(root)
            if data is None:
                return Response.text("block not found\n", status=404)
            return Response(200, [("content-type", RAW_TYPE)], data if request.method == "GET" else b"", len(data))
        if fmt != "car":
            return Response.text("this gateway is trustless: ask for format=car or format=raw\n", status=400)
        if not root.is_identity and self.block(root) is None:
            return Response.text("root block not found\n", status=404)
        dups = self.dups
        if dups is None:
            wanted = (request.query.get("dups") or request.query.get("car-dups") or [""])[0]
            dups = not (wanted == "n" or "dups=n" in accept)
        scope = request.query.get("dag-scope", ["all"])[0]
        body = self.car_stream(root, segments, scope=scope, dups=dups)
        headers = [("content-type", f"{CAR_TYPE}; version=1; order={self.order}; dups={'y' if dups else 'n'}")]
        if request.method == "HEAD":
            return Response(200, headers)
        return Response(200, headers, body)

    async def car_stream(
        self, root: Cid, segments: tuple[str, ...] = (), *, scope: str = "all", dups: bool = True
    ) -> AsyncIterator[bytes]:
        """The CAR body served for ``/ipfs/{root}/{segments}?format=car&dag-scope={scope}``, in ``chunk_bytes``
        chunks (also usable without sockets)."""
        out = bytearray(encode_car_header(self.header_roots if self.header_roots is not None else [root]))
        sent = 0
        seen: set[bytes] = set()
        for cid in self._walk(root, segments, scope):
            if cid.is_identity or (not dups and cid.multihash in seen):
                continue
            seen.add(cid.multihash)
            data = self.block(cid)
            if data is None:
                continue
            out += encode_car_section(cid, data)
            while len(out) >= self.chunk_bytes:
                chunk, out = bytes(out[: self.chunk_bytes]), out[self.chunk_bytes :]
                chunk, stop = self._cut(chunk, sent)
                sent += len(chunk)
                yield chunk
                if stop:
                    return
                await trio.lowlevel.checkpoint()
        if out:
            chunk, _ = self._cut(bytes(out), sent)
            yield chunk

    def _cut(self, chunk: bytes, sent: int) -> tuple[bytes, bool]:
        if self.truncate_at is not None and sent + len(chunk) >= self.truncate_at:
            return chunk[: self.truncate_at - sent], True
        return chunk, False

    # -- DAG walks (over the true blocks: the switches only change what is sent) -------------------------------

    def _get(self, cid: Cid) -> bytes | None:
        inline = inline_block(cid)
        return inline.data if inline is not None else self.blocks.get(cid.multihash)

    def _walk(self, root: Cid, segments: tuple[str, ...], scope: str) -> Iterator[Cid]:
        resolver = PathResolver(root, segments)
        try:
            while (cid := resolver.wanted()) is not None:
                yield cid
                data = self._get(cid)
                if data is None:
                    return
                resolver.feed(Block(cid, data))  # the gateway's own blocks, verified when loaded
        except IpfsError:
            return  # a streaming gateway has sent 200 already: it just ends the CAR
        target = resolver.result.cid
        if scope == "block":
            yield target
            return
        yield from self._subtree(target, scope == "all")

    def _subtree(self, cid: Cid, everything: bool) -> Iterator[Cid]:
        """DFS pre-order (or post-order when ``self.order == "post"``) below ``cid``."""
        if self.order != "post":
            yield cid
        for child in self._children(cid, everything):
            yield from self._subtree(child, everything)
        if self.order == "post":
            yield cid

    def _children(self, cid: Cid, everything: bool) -> list[Cid]:
        data = self._get(cid)
        if data is None or cid.codec != DAG_PB:
            return []
        try:
            node = decode_pbnode(data)
            fs = decode_unixfs(node.data)
        except IpfsError:
            return []
        if everything or fs.type in (DataType.FILE, DataType.RAW):
            return [link.cid for link in node.links]
        if fs.type == DataType.HAMT_SHARD and fs.fanout:  # entity scope of a HAMT: its shards, not its entries
            width = len(f"{fs.fanout - 1:X}")
            return [link.cid for link in node.links if link.name is not None and len(link.name) == width]
        return []  # entity scope of a directory: its own block
