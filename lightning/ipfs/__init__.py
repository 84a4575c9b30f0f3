"""IPFS content layer, sans-IO: CIDs, CAR streams, dag-pb and UnixFS, verified at every block.

``cid`` parses CIDs and verifies blocks against them; ``car`` decodes CAR v1/v2 streams incrementally; ``dagpb``
decodes dag-pb nodes and UnixFS data; ``unixfs`` holds the traversal state machines (read a file, resolve a
path, list a directory); ``fetch`` drives them from a block getter or a CAR stream. Nothing here does I/O.
docs/ipfs.md describes the formats, the limits and what is unsupported.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.ipfs.car import *  # noqa: F403
    from lightning.ipfs.cid import *  # noqa: F403
    from lightning.ipfs.dagpb import *  # noqa: F403
    from lightning.ipfs.errors import *  # noqa: F403
    from lightning.ipfs.fetch import *  # noqa: F403
    from lightning.ipfs.unixfs import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
