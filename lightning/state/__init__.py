"""The application state machine: accounts, staking, the node registry, epochs and committees, signed transactions,
the deterministic executor and the incremental state root with proofs, stored in LMDB. Pure: no trio, sockets,
threads or clocks of its own (``lightning.chain`` runs it inside a node). See docs/state.md and docs/block.md.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.state.block import *  # noqa: F403
    from lightning.state.errors import *  # noqa: F403
    from lightning.state.executor import *  # noqa: F403
    from lightning.state.store import *  # noqa: F403
    from lightning.state.tx import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
