"""IPFS trustless-gateway origin: ``GET {gateway}/ipfs/{cid}/{path}?format=car&dag-scope=entity``.

Every block of the CAR is checked against its CID as it is decoded (lightning/ipfs), the path is resolved through
the directory blocks, and the UnixFS file's bytes are pushed into the sink as soon as each block verifies — the
client gets its first byte after the file's first leaf, not after the whole DAG. A block the CAR can no longer
supply is asked for on its own (``?format=raw``). Anything that does not verify aborts the attempt
(:class:`OriginFailed`); the fetcher then tries the next gateway.
"""

from __future__ import annotations

import logging
import urllib.parse

from lightning.fetcher.fetcher import NotFound, OriginFailed, Pointer, Sink
from lightning.fetcher.http_client import http_get
from lightning.ipfs import (
    BadContent,
    Block,
    CarBlockSource,
    Cid,
    InvalidCid,
    InvalidPath,
    IpfsError,
    NotAFile,
    PathNotFound,
    Unsupported,
    open_file,
    parse_cid,
    resolve_path,
)

__all__ = ["IpfsGatewayOrigin"]

logger = logging.getLogger(__name__)

CAR_ACCEPT = "application/vnd.ipld.car; version=1; order=dfs; dups=y"
RAW_ACCEPT = "application/vnd.ipld.raw"
RAW_BLOCK_BYTES_MAX = 2 * 1024 * 1024


class IpfsGatewayOrigin:
    name = "origin"

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway.rstrip("/")

    def handles(self, pointer: Pointer) -> bool:
        return pointer.kind == "ipfs"

    async def fetch(self, pointer: Pointer, sink: Sink) -> None:
        try:
            root = parse_cid(pointer.key)
        except InvalidCid as exc:
            raise NotFound(f"{pointer.key}: {exc}") from None
        path = "/".join(urllib.parse.quote(seg, safe="") for seg in pointer.path.split("/") if seg)
        url = f"{self.gateway}/ipfs/{root}{'/' + path if path else ''}?format=car&dag-scope=entity"
        async with http_get(url, headers={"accept": CAR_ACCEPT}) as response:
            if response.status == 404:
                raise NotFound(f"{self.gateway}: {pointer} not found")
            if response.status != 200:
                raise OriginFailed(f"{self.gateway} answered {response.status} for {pointer}")
            source = CarBlockSource(response.body(), root, fallback=self._raw_block)
            try:
                target = await resolve_path(root, pointer.path, source.get)
                stream = await open_file(target.cid, source.get)
                if target.name:
                    sink.set_name(target.name)
                sink.set_total_len(stream.size)
                async for chunk in stream.chunks():
                    await sink.write(chunk)
            except (PathNotFound, InvalidPath) as exc:
                raise NotFound(f"{pointer}: {exc}") from None
            except NotAFile as exc:
                raise NotFound(f"{pointer}: not a file ({exc})") from None
            except Unsupported as exc:
                raise OriginFailed(f"{pointer}: {exc}") from None
            except BadContent as exc:
                logger.warning(
                    "gateway %s sent content that failed verification for %s: %s", self.gateway, pointer, exc
                )
                raise OriginFailed(f"{self.gateway}: {exc}") from None
            except IpfsError as exc:
                raise OriginFailed(f"{self.gateway}: {exc}") from None

    async def _raw_block(self, cid: Cid) -> Block | bytes:
        async with http_get(f"{self.gateway}/ipfs/{cid}?format=raw", headers={"accept": RAW_ACCEPT}) as response:
            if response.status != 200:
                raise OriginFailed(f"{self.gateway} answered {response.status} for block {cid}")
            return await response.read_all(RAW_BLOCK_BYTES_MAX)
