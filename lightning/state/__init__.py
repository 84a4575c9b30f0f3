"""The application state machine: accounts, staking, the node registry, epochs and committees, signed transactions,
the deterministic executor and the incremental state root with proofs, stored in LMDB. Pure: no trio, sockets,
threads or clocks of its own (``lightning.chain`` runs it inside a node). See docs/state.md and docs/block.md.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports
from lightning.state.block import Block, BlockMalformed, ChainHead, CommitProof, quorum
from lightning.state.executor import InvalidBlock, Receipt
from lightning.state.tx import SignedTransaction, Transaction, TxMalformed, decode_transaction, sign_transaction

if TYPE_CHECKING:
    from lightning.state.store import BlockOutcome, StateError, StateStore

__all__ = [
    "Block",
    "BlockMalformed",
    "BlockOutcome",
    "ChainHead",
    "CommitProof",
    "InvalidBlock",
    "Receipt",
    "SignedTransaction",
    "StateError",
    "StateStore",
    "Transaction",
    "TxMalformed",
    "decode_transaction",
    "quorum",
    "sign_transaction",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BlockOutcome": "store",
        "StateError": "store",
        "StateStore": "store",
    },
)
