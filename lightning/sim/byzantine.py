"""Byzantine behaviours a simulated node can be given in place of a component (``Runtime.factories``).

Each entry of :data:`BEHAVIOURS` names a behaviour and maps component names (as ``node.py`` builds them) to the class
that replaces the honest one. The honest nodes must keep every invariant with these nodes present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lightning.ids import NodeId
from lightning.net.content import ContentServer
from lightning.net.replies import ReplyWriter

__all__ = ["BEHAVIOURS", "CorruptingContentServer"]


class _Corrupting:
    """A reply writer that flips one byte in every chunk after the header (proof hashes or block bytes)."""

    def __init__(self, out: ReplyWriter, server: CorruptingContentServer) -> None:
        self._out = out
        self._server = server

    async def start(self, header: Any = None) -> None:
        await self._out.start(header)

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        chunk = bytearray(data)
        if chunk:
            chunk[len(chunk) // 2] ^= 0x01
        self._server.corrupted_chunks += 1
        await self._out.send(bytes(chunk))


class CorruptingContentServer(ContentServer):
    """Serves peers content with a flipped byte in every chunk: a node lying about what it stores."""

    corrupted_chunks = 0

    async def _serve(self, peer: NodeId, msg: Any, out: ReplyWriter) -> None:
        await super()._serve(peer, msg, _Corrupting(out, self))  # type: ignore[arg-type]  # duck-typed writer


BEHAVIOURS: Mapping[str, Mapping[str, Callable[..., Any]]] = {
    "corrupt": {"content_server": CorruptingContentServer},
}
