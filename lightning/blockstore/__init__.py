"""Blake3-verified blockstore: 256 KiB blocks, a binary tree over them, proofs and verified streaming.

The format is specified in docs/blockstore-format.md. ``verify`` is the standalone client library (stdlib and
``blake3`` only); ``tree`` is the writer's and server's side; ``store`` keeps objects in LMDB; ``component`` is the
node's async face of the store (import it from there: it pulls in trio).
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.blockstore.store import *  # noqa: F403
    from lightning.blockstore.tree import *  # noqa: F403
    from lightning.blockstore.verify import *  # noqa: F403
    from lightning.blockstore.writer import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
