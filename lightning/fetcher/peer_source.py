"""Peers as a content source: blake3 objects streamed over the pool's blocks scope, verified block by block.

Which peers: for a blake3 root, the connected and known (genesis, allow-listed) peers; for an origin pointer,
the providers of its resolver record (lightning/fetcher/resolver.py). Peers are tried in turn while nothing has
reached the sink; once bytes flowed, a failure ends this attempt and the fetcher moves on (its retry skips what was
already served).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from lightning.blockstore.writer import VerificationFailed
from lightning.fetcher.fetcher import NotFound, OriginFailed, Pointer, Sink
from lightning.ids import NodeId
from lightning.net.content import ContentClient
from lightning.net.errors import NetError, NotHere, PeerProtocolError

__all__ = ["PeerSource"]

logger = logging.getLogger(__name__)


Locate = Callable[[Pointer], tuple[bytes, Sequence[NodeId]] | None]


class PeerSource:
    """``locate(pointer)`` gives the blake3 root and the peers to ask, or None when no peer is known to hold it
    (blake3 pointers: the root itself and the known peers; origin pointers: a resolver record)."""

    name = "peer"

    def __init__(self, blocks: ContentClient, locate: Locate) -> None:
        self._blocks = blocks
        self._locate = locate

    def handles(self, pointer: Pointer) -> bool:
        return pointer.kind in ("blake3", "ipfs")  # url pointers need their SRI hash checked: origin only

    async def fetch(self, pointer: Pointer, sink: Sink) -> None:
        located = self._locate(pointer)
        if located is None:
            raise NotFound(f"no peer is known to hold {pointer}")
        root, peers = located
        failures: list[str] = []
        for peer in peers:
            try:
                async for chunk in self._blocks.stream_object(peer, root, sink.set_total_len):
                    await sink.write(chunk)
                return
            except (VerificationFailed, PeerProtocolError) as exc:
                logger.warning("peer %s sent bad content for %s: %s", peer.short(), pointer, exc)
                if sink.written:
                    raise OriginFailed(f"peer {peer.short()}: {exc}") from None
                failures.append(f"{peer.short()}: {exc}")
            except NotHere:
                failures.append(f"{peer.short()}: not there")
            except NetError as exc:
                if sink.written:
                    raise OriginFailed(f"peer {peer.short()}: {exc}") from None
                failures.append(f"{peer.short()}: {exc}")
        raise NotFound(f"no peer has {pointer}" + (f" ({'; '.join(failures)})" if failures else ""))
