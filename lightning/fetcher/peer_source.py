"""Peers as a content source: blake3 objects streamed over the pool's blocks scope, verified block by block.

Which peers: those ``peers_for(root)`` names — today the connected and known (genesis, allow-listed) peers, later
the content registry and resolver records. Peers are tried in turn while nothing has reached the sink; once bytes
flowed, a failure ends this attempt and the fetcher moves on (its retry skips what was already served).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from lightning.blockstore.writer import VerificationFailed
from lightning.crypto import PublicKey
from lightning.fetcher.fetcher import NotFound, OriginFailed, Pointer, Sink
from lightning.net.blocks import BlockFetcher
from lightning.net.errors import NetError, PeerProtocolError
from lightning.net.errors import NotFound as PeerNotFound

__all__ = ["PeerSource"]

logger = logging.getLogger(__name__)


class PeerSource:
    name = "peer"

    def __init__(self, blocks: BlockFetcher, peers_for: Callable[[bytes], Sequence[PublicKey]]) -> None:
        self._blocks = blocks
        self._peers_for = peers_for

    def handles(self, pointer: Pointer) -> bool:
        return pointer.kind == "blake3"

    async def fetch(self, pointer: Pointer, sink: Sink) -> None:
        root = bytes.fromhex(pointer.key)
        failures: list[str] = []
        for peer in self._peers_for(root):
            try:
                async for chunk in self._blocks.stream_object(peer, root, sink.set_total_len):
                    await sink.write(chunk)
                return
            except (VerificationFailed, PeerProtocolError) as exc:
                logger.warning("peer %s sent bad content for %s: %s", peer.hex[:16], pointer, exc)
                if sink.written:
                    raise OriginFailed(f"peer {peer.hex[:16]}: {exc}") from None
                failures.append(f"{peer.hex[:16]}: {exc}")
            except PeerNotFound:
                failures.append(f"{peer.hex[:16]}: not there")
            except NetError as exc:
                if sink.written:
                    raise OriginFailed(f"peer {peer.hex[:16]}: {exc}") from None
                failures.append(f"{peer.hex[:16]}: {exc}")
        raise NotFound(f"no peer has {pointer.key}" + (f" ({'; '.join(failures)})" if failures else ""))
