"""What drives the state machine inside a node: the state as a trio component (one LMDB writer thread, inline reads,
commit listeners and epoch hooks), the mempool and transaction pool, forwarding, the single-node sequencer, following
committed blocks, the epoch participant (beacon and ChangeEpoch), peer admission and the node set from the registry,
and the state's JSON-RPC methods. The rules themselves live in ``lightning.state``; see docs/state.md and
docs/block.md.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.chain.admission import StateAdmission
    from lightning.chain.component import State
    from lightning.chain.follower import Follower
    from lightning.chain.forward import (
        BlockSource,
        BlockSourceError,
        ForwardError,
        RpcBlockSource,
        RpcForwarder,
        TxForwarder,
    )
    from lightning.chain.hooks import EpochChange, EpochHooks, RegistryNodes
    from lightning.chain.mempool import Mempool
    from lightning.chain.mempool_core import MempoolCore, MempoolLimits, TxRejected
    from lightning.chain.orderer import Orderer
    from lightning.chain.participant import EpochDriver
    from lightning.chain.rpc import register_state_rpc
    from lightning.chain.sequencer import Sequencer

__all__ = [
    "BlockSource",
    "BlockSourceError",
    "EpochChange",
    "EpochDriver",
    "EpochHooks",
    "Follower",
    "ForwardError",
    "Mempool",
    "MempoolCore",
    "MempoolLimits",
    "Orderer",
    "RegistryNodes",
    "RpcBlockSource",
    "RpcForwarder",
    "Sequencer",
    "State",
    "StateAdmission",
    "TxForwarder",
    "TxRejected",
    "register_state_rpc",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "StateAdmission": "admission",
        "State": "component",
        "Follower": "follower",
        "BlockSource": "forward",
        "BlockSourceError": "forward",
        "ForwardError": "forward",
        "RpcBlockSource": "forward",
        "RpcForwarder": "forward",
        "TxForwarder": "forward",
        "EpochChange": "hooks",
        "EpochHooks": "hooks",
        "RegistryNodes": "hooks",
        "MempoolCore": "mempool",
        "MempoolLimits": "mempool",
        "TxRejected": "mempool",
        "Orderer": "orderer",
        "EpochDriver": "participant",
        "register_state_rpc": "rpc",
        "Sequencer": "sequencer",
        "Mempool": "mempool",
    },
)
