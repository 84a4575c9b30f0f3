"""Application state: accounts, staking, node registry, epochs and committees, signed transactions, the executor,
the incremental state root, the mempool, the single-node sequencer and the state's JSON-RPC. See docs/state.md and
docs/block.md."""

from lightning.state.block import Block, ChainHead, CommitProof, Orderer, SystemWallClock, TrioWallClock, WallClock
from lightning.state.component import State
from lightning.state.executor import InvalidBlock, Receipt
from lightning.state.follower import Follower
from lightning.state.forward import BlockSource, RpcBlockSource, RpcForwarder, TxForwarder
from lightning.state.hooks import EpochChange, EpochHooks, RegistryNodes
from lightning.state.mempool import TxRejected
from lightning.state.participant import EpochDriver
from lightning.state.pool import TxPool
from lightning.state.rpc import register_state_rpc
from lightning.state.sequencer import Sequencer
from lightning.state.store import StateError, StateStore
from lightning.state.tx import SignedTransaction, Transaction, TxMalformed, decode_transaction, sign_transaction

__all__ = [
    "Block",
    "BlockSource",
    "ChainHead",
    "CommitProof",
    "EpochChange",
    "EpochDriver",
    "EpochHooks",
    "Follower",
    "InvalidBlock",
    "Orderer",
    "Receipt",
    "RegistryNodes",
    "RpcBlockSource",
    "RpcForwarder",
    "Sequencer",
    "SignedTransaction",
    "State",
    "StateError",
    "StateStore",
    "SystemWallClock",
    "Transaction",
    "TrioWallClock",
    "TxForwarder",
    "TxMalformed",
    "TxPool",
    "TxRejected",
    "WallClock",
    "decode_transaction",
    "register_state_rpc",
    "sign_transaction",
]
