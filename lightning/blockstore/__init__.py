"""Blake3-verified blockstore: 256 KiB blocks, a binary tree over them, proofs and verified streaming.

The format is specified in docs/blockstore-format.md. ``verify`` is the standalone client library (stdlib and
``blake3`` only); ``tree`` is the writer's and server's side; ``store`` keeps objects in LMDB; ``component`` is the
node's async face of the store (import it from there: it pulls in trio).
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports
from lightning.blockstore.verify import (
    BLOCK_SIZE,
    EMPTY_ROOT,
    HASH_SIZE,
    MEDIA_TYPE,
    ProofError,
    ProofFormatError,
    ProofStreamDecoder,
    ProofStreamHeader,
    RangeProof,
    StreamVerifier,
    TruncatedStreamError,
    VerificationError,
    VerifiedBlock,
    WrongRootError,
    block_count,
    blocks_for_byte_range,
    hash_block,
    leaf_hash,
    parent_hash,
    root_hash,
    verify_range,
    verify_stream,
)

if TYPE_CHECKING:
    from lightning.blockstore.store import (
        BlockStore,
        BlockstoreError,
        BlockstoreFull,
        CorruptBlock,
        CorruptObject,
        ObjectInfo,
        StoreStatistics,
        UnknownObject,
    )
    from lightning.blockstore.tree import (
        BlockTree,
        TreeBuilder,
        encode_proof_stream,
        proof_for_block,
        proof_for_range,
        root_of_bytes,
        split_blocks,
        tree_from_block_hashes,
    )
    from lightning.blockstore.writer import ObjectWriter, VerificationFailed

__all__ = [
    "BLOCK_SIZE",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MEDIA_TYPE",
    "BlockStore",
    "BlockTree",
    "BlockstoreError",
    "BlockstoreFull",
    "CorruptBlock",
    "CorruptObject",
    "ObjectInfo",
    "ObjectWriter",
    "ProofError",
    "ProofFormatError",
    "ProofStreamDecoder",
    "ProofStreamHeader",
    "RangeProof",
    "StoreStatistics",
    "StreamVerifier",
    "TreeBuilder",
    "TruncatedStreamError",
    "UnknownObject",
    "VerificationError",
    "VerificationFailed",
    "VerifiedBlock",
    "WrongRootError",
    "block_count",
    "blocks_for_byte_range",
    "encode_proof_stream",
    "hash_block",
    "leaf_hash",
    "parent_hash",
    "proof_for_block",
    "proof_for_range",
    "root_hash",
    "root_of_bytes",
    "split_blocks",
    "tree_from_block_hashes",
    "verify_range",
    "verify_stream",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BlockStore": "store",
        "BlockstoreError": "store",
        "BlockstoreFull": "store",
        "CorruptBlock": "store",
        "CorruptObject": "store",
        "ObjectInfo": "store",
        "StoreStatistics": "store",
        "UnknownObject": "store",
        "BlockTree": "tree",
        "TreeBuilder": "tree",
        "encode_proof_stream": "tree",
        "proof_for_block": "tree",
        "proof_for_range": "tree",
        "root_of_bytes": "tree",
        "split_blocks": "tree",
        "tree_from_block_hashes": "tree",
        "ObjectWriter": "writer",
        "VerificationFailed": "writer",
    },
)
