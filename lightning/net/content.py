"""Block transfer between peers over the ``blocks`` scope (docs/net.md).

Request (a ``STREAM`` of the blocks scope): ``{"root": 32 bytes}`` for a whole object, or with
``"range": [first_byte, end_byte]`` for the blocks covering that byte range. Reply header ``{"len": object length,
"start": first block, "end": block after the last}``, then the proof stream of those blocks
(docs/blockstore-format.md): every block with the proof hashes that verify it against the root.

:class:`ContentServer` answers from the local blockstore (reads inline; every block is verified as it is read), at
most ``concurrency`` transfers at once (beyond: TooManyRequests). :class:`ContentClient` stores a whole object
through the blockstore's untrusted writer, which verifies each block before staging it and publishes only a
complete, verified object; a peer whose stream fails verification is penalised and the next peer is tried.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any

import trio

from lightning.blockstore.component import Blockstore
from lightning.blockstore.store import CorruptBlock, CorruptObject
from lightning.blockstore.verify import (
    HASH_SIZE,
    ProofError,
    ProofStreamDecoder,
    VerifiedBlock,
    block_count,
    blocks_for_byte_range,
)
from lightning.blockstore.writer import VerificationFailed
from lightning.ids import NodeId
from lightning.net.errors import (
    BadRequest,
    InternalError,
    NetError,
    NotHere,
    PeerProtocolError,
    TooManyRequests,
)
from lightning.net.pool import Pool
from lightning.net.replies import ReplyWriter
from lightning.net.wire import Scope

__all__ = ["ContentClient", "ContentServer", "FetchFailed", "FetchResult"]

logger = logging.getLogger(__name__)


class FetchFailed(NetError):
    """No peer delivered a verified copy. The message lists what each peer did."""


def parse_block_request(msg: Any) -> tuple[bytes, tuple[int, int] | None]:
    """The root and optional byte range of a request. Raises BadRequest."""
    if not isinstance(msg, dict) or not set(msg) <= {"root", "range"} or "root" not in msg:
        raise BadRequest('a block request is {"root": 32 bytes, "range": [first_byte, end_byte] (optional)}')
    root = msg["root"]
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        raise BadRequest("root must be 32 bytes")
    rng = msg.get("range")
    if rng is None:
        return root, None
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int) and v >= 0 for v in rng)):
        raise BadRequest("range must be [first_byte, end_byte]")
    return root, (rng[0], rng[1])


class ContentServer:
    """Serves stored objects (or byte ranges of them) to peers."""

    def __init__(self, pool: Pool, blockstore: Blockstore, *, concurrency: int = 50) -> None:
        self._bs = blockstore
        self._concurrency = concurrency
        self.active = 0
        self.served = 0
        pool.on_stream(Scope.BLOCKS, self._serve)

    async def _serve(self, peer: NodeId, msg: Any, out: ReplyWriter) -> None:
        root, byte_range = parse_block_request(msg)
        if self.active >= self._concurrency:
            raise TooManyRequests(f"serving {self.active} transfers already")
        info = self._bs.info(root)
        if info is None:
            raise NotHere(f"no object {root.hex()}")
        if byte_range is None:
            start, end = 0, info.block_count
        else:
            try:
                start, end = blocks_for_byte_range(byte_range[0], byte_range[1], info.length)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        self.active += 1
        try:
            await out.start({"len": info.length, "start": start, "end": end})
            for chunk in self._bs.store.proof_stream(root, start, end):
                await out.send(chunk)
            self.served += 1
        except (CorruptBlock, CorruptObject) as exc:  # our disk is bad: never send what does not verify
            logger.error("cannot serve %s to %s: %s", root.hex()[:16], peer.short(), exc)
            raise InternalError("the stored copy is corrupt") from None
        finally:
            self.active -= 1


class FetchResult:
    __slots__ = ("length", "peer", "root")

    def __init__(self, root: bytes, length: int, peer: NodeId | None) -> None:
        self.root = root
        self.length = length
        self.peer = peer


def _check_header(header: Any, want: tuple[int, int] | None) -> tuple[int, int, int]:
    if (
        not isinstance(header, dict)
        or set(header) != {"len", "start", "end"}
        or not all(isinstance(header[k], int) and header[k] >= 0 for k in header)
    ):
        raise PeerProtocolError("bad block reply header")
    total, start, end = header["len"], header["start"], header["end"]
    expected = (0, block_count(total)) if want is None else blocks_for_byte_range(want[0], want[1], total)
    if (start, end) != expected:
        raise PeerProtocolError(f"the peer offers blocks [{start}, {end}), not the requested {list(expected)}")
    return total, start, end


class ContentClient:
    """Fetches objects from peers into the local blockstore, verified block by block."""

    def __init__(
        self, pool: Pool, blockstore: Blockstore, *, concurrency: int = 50, timeout_s: float | None = None
    ) -> None:
        self._pool = pool
        self._bs = blockstore
        self._limiter = trio.CapacityLimiter(concurrency)
        self._timeout_s = timeout_s

    async def fetch(self, root: bytes, peers: Sequence[NodeId], *, pin: bool = False) -> FetchResult:
        """Store object ``root`` from the first of ``peers`` that delivers it verified. Raises FetchFailed."""
        info = self._bs.info(root)
        if info is not None:
            return FetchResult(root, info.length, None)
        failures: list[str] = []
        async with self._limiter:
            for peer in peers:
                try:
                    length = await self._fetch_from(peer, root, pin)
                except VerificationFailed as exc:
                    self._pool.penalize(peer, "sent a block that does not verify")
                    failures.append(f"{peer.short()}: {exc}")
                except PeerProtocolError as exc:
                    self._pool.penalize(peer, "broke the block transfer protocol")
                    failures.append(f"{peer.short()}: {exc}")
                except NetError as exc:
                    failures.append(f"{peer.short()}: {exc}")
                else:
                    logger.info("fetched %s (%d bytes) from %s", root.hex()[:16], length, peer.short())
                    return FetchResult(root, length, peer)
        detail = "; ".join(failures) if failures else "no peers to ask"
        raise FetchFailed(f"could not fetch {root.hex()}: {detail}")

    async def _fetch_from(self, peer: NodeId, root: bytes, pin: bool) -> int:
        async with self._pool.open_stream(peer, Scope.BLOCKS, {"root": root}, timeout_s=self._timeout_s) as reply:
            total, _, _ = _check_header(reply.header, None)
            async with self._bs.writer(expected_root=root, pin=pin) as writer:
                async for chunk in reply:
                    await writer.write(chunk)
                await writer.close()
        return total

    async def _verified_blocks(
        self, peer: NodeId, root: bytes, byte_range: tuple[int, int] | None
    ) -> AsyncGenerator[tuple[VerifiedBlock, int], None]:
        """Each block of the peer's proof stream once it verified, with the object's length (bound to the root by
        the first verified block). Raises VerificationFailed (after penalising the peer), PeerProtocolError,
        NetError."""
        msg: dict[str, Any] = {"root": root}
        if byte_range is not None:
            msg["range"] = list(byte_range)
        async with self._pool.open_stream(peer, Scope.BLOCKS, msg, timeout_s=self._timeout_s) as reply:
            _, start, end = _check_header(reply.header, byte_range)
            decoder = ProofStreamDecoder(root, start_block=start, end_block=end)
            async for chunk in reply:
                try:
                    blocks = decoder.feed(chunk)
                except ProofError as exc:
                    self._pool.penalize(peer, "sent a block that does not verify")
                    raise VerificationFailed(f"object {root.hex()}: {exc}") from exc
                for block in blocks:
                    assert decoder.header is not None
                    yield block, decoder.header.total_len
            try:
                decoder.finish()
            except ProofError as exc:
                raise VerificationFailed(f"object {root.hex()}: {exc}") from exc

    async def stream_object(
        self, peer: NodeId, root: bytes, on_length: Callable[[int], None]
    ) -> AsyncIterator[bytes]:
        """Verified bytes of the whole object ``root`` from ``peer``, in order, without storing them (the content
        fetcher streams them to clients and stores them itself). ``on_length`` gets the object's length before the
        first byte. Raises VerificationFailed (after penalising the peer), PeerProtocolError or NetError."""
        announced = False
        async with contextlib.aclosing(self._verified_blocks(peer, root, None)) as blocks:
            async for block, total_len in blocks:
                if not announced:
                    on_length(total_len)
                    announced = True
                yield block.data
        if not announced:  # the empty object: its root was checked by the decoder
            on_length(0)

    async def read_range(self, peer: NodeId, root: bytes, first_byte: int, end_byte: int) -> AsyncIterator[bytes]:
        """Verified bytes [first_byte, end_byte) of ``root`` from ``peer``, without storing them. Raises
        VerificationFailed (after penalising the peer) or NetError."""
        async with contextlib.aclosing(self._verified_blocks(peer, root, (first_byte, end_byte))) as blocks:
            async for block, _ in blocks:
                lo = max(first_byte - block.offset, 0)
                hi = min(end_byte - block.offset, len(block.data))
                yield block.data[lo:hi]
