"""What drives the state machine inside a node: the state as a trio component (one LMDB writer thread, inline reads,
commit listeners and epoch hooks), the mempool and transaction pool, forwarding, the single-node sequencer, following
committed blocks, the epoch participant (beacon and ChangeEpoch), peer admission and the node set from the registry,
and the state's JSON-RPC methods. The rules themselves live in ``lightning.state``; see docs/state.md and
docs/block.md.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.chain.admission import *  # noqa: F403
    from lightning.chain.component import *  # noqa: F403
    from lightning.chain.errors import *  # noqa: F403
    from lightning.chain.follower import *  # noqa: F403
    from lightning.chain.forward import *  # noqa: F403
    from lightning.chain.hooks import *  # noqa: F403
    from lightning.chain.mempool import *  # noqa: F403
    from lightning.chain.mempool_core import *  # noqa: F403
    from lightning.chain.orderer import *  # noqa: F403
    from lightning.chain.participant import *  # noqa: F403
    from lightning.chain.rpc import *  # noqa: F403
    from lightning.chain.sequencer import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
