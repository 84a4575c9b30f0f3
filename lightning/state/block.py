"""The contracts between ordering and execution: Block, CommitProof, ChainHead, the timestamp rule.

Specified in docs/block.md. A block is ordered by an orderer (``lightning.chain.Orderer``: the BFT consensus, or the
single-node sequencer of a one-member committee), proven committed by a :class:`CommitProof`, and executed by every
node in height order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import blake3

from lightning.codec import CodecError, decode, encode
from lightning.crypto import SIGNATURE_BYTES, BadSignature, Domain, PublicKey, SigningKey
from lightning.ids import NodeId
from lightning.state.errors import StateError
from lightning.statement import Kind, block_statement

__all__ = [
    "BLOCK_DOMAIN",
    "Block",
    "BlockMalformed",
    "ChainHead",
    "CommitProof",
    "check_timestamp",
    "quorum",
    "transactions_root",
]

BLOCK_DOMAIN = b"lightning/block/v1\x00"
MAX_BLOCK_BYTES = 64 * 1024 * 1024
EMPTY_TXS_ROOT = bytes(32)


class BlockMalformed(StateError):
    """Bytes that are not a well-formed block or commit proof."""


def _h(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def transactions_root(txs: Sequence[bytes]) -> bytes:
    """Merkle root over the signed transaction bytes: leaves ``H(0x00 || tx)``, parents ``H(0x01 || l || r)``, the
    left subtree holding the largest power of two of leaves; ``EMPTY_TXS_ROOT`` for no transactions."""
    if not txs:
        return EMPTY_TXS_ROOT
    level = [_h(b"\x00" + t) for t in txs]
    return _subtree(level)


def _subtree(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    split = 1 << ((len(hashes) - 1).bit_length() - 1)
    return _h(b"\x01" + _subtree(hashes[:split]) + _subtree(hashes[split:]))


def _bytes32(v: Any, name: str) -> bytes:
    if not isinstance(v, bytes) or len(v) != 32:
        raise BlockMalformed(f"{name}: expected 32 bytes")
    return v


def _uint(v: Any, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**63:
        raise BlockMalformed(f"{name}: expected a non-negative integer")
    return v


@dataclass(frozen=True)
class Block:
    height: int  # genesis is height 0 and has no block; the first block is 1
    parent: bytes  # hash of block height-1 (for block 1: the genesis digest)
    epoch: int  # the state's epoch when the block starts executing
    proposer: NodeId  # the orderer that proposed it
    timestamp_ms: int  # proposer's wall clock, >= parent's, within the validators' window
    prev_state_root: bytes  # state root after block height-1
    txs_root: bytes  # transactions_root(txs)
    txs: tuple[bytes, ...]  # signed transactions, executed in this order

    def header(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "parent": self.parent,
            "epoch": self.epoch,
            "proposer": self.proposer,
            "timestamp_ms": self.timestamp_ms,
            "prev_state_root": self.prev_state_root,
            "txs_root": self.txs_root,
        }

    def hash(self) -> bytes:
        """``blake3(BLOCK_DOMAIN || encode(header))``: the header commits to the transactions through txs_root."""
        return _h(BLOCK_DOMAIN + encode(self.header()))

    def to_wire(self) -> dict[str, Any]:
        return {**self.header(), "txs": list(self.txs)}

    def encode(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def build(cls, *, head: ChainHead, proposer: NodeId, timestamp_ms: int, txs: Sequence[bytes], epoch: int) -> Block:
        root = transactions_root(txs)
        block = cls(head.height + 1, head.block_hash, epoch, proposer, timestamp_ms, head.state_root, root, tuple(txs))
        block.__dict__["computed_txs_root"] = root  # known already: spare the executor recomputing it
        return block

    @functools.cached_property
    def computed_txs_root(self) -> bytes:
        """``transactions_root(txs)``, computed once per block object (compare with ``txs_root``)."""
        return transactions_root(self.txs)

    @classmethod
    def from_wire(cls, v: Any) -> Block:
        """Raises :class:`BlockMalformed` (also when txs_root does not match the transactions)."""
        if not isinstance(v, dict) or set(v) != {*Block.header_fields(), "txs"}:
            raise BlockMalformed("a block is a map of its header fields and txs")
        txs = v["txs"]
        if not isinstance(txs, list) or not all(isinstance(t, bytes) for t in txs):
            raise BlockMalformed("txs: expected a list of byte strings")
        ts = v["timestamp_ms"]
        block = cls(
            _uint(v["height"], "height"),
            _bytes32(v["parent"], "parent"),
            _uint(v["epoch"], "epoch"),
            NodeId(_bytes32(v["proposer"], "proposer")),
            _uint(ts, "timestamp_ms"),
            _bytes32(v["prev_state_root"], "prev_state_root"),
            _bytes32(v["txs_root"], "txs_root"),
            tuple(txs),
        )
        if block.computed_txs_root != block.txs_root:
            raise BlockMalformed("txs_root does not match the transactions")
        return block

    @classmethod
    def decode(cls, raw: bytes) -> Block:
        try:
            return cls.from_wire(decode(raw, max_bytes=MAX_BLOCK_BYTES))
        except CodecError as exc:
            raise BlockMalformed(f"not a canonical block: {exc}") from None

    @staticmethod
    def header_fields() -> tuple[str, ...]:
        return ("height", "parent", "epoch", "proposer", "timestamp_ms", "prev_state_root", "txs_root")


def quorum(n: int) -> int:
    """Signatures a committee of ``n`` needs: 2f+1 with f = (n-1)//3 (1 of 1, 3 of 4, 5 of 7)."""
    return n - (n - 1) // 3


@dataclass(frozen=True)
class CommitProof:
    """Signatures by committee members (consensus keys) over :meth:`message`: a ``commit_vote`` statement
    (lightning/statement.py, ``seq`` = ``round``) under ``Domain.STATEMENT``.

    ``kind == "sequencer"``: exactly one signature, by the single-node sequencer (committee member 0), with
    ``round`` = ``height`` (one view per block, so an honest sequencer never signs two commit votes for one view).
    ``kind == "quorum"``: at least :func:`quorum` signatures by distinct members (the BFT consensus)."""

    block_hash: bytes
    height: int
    epoch: int
    round: int
    kind: str
    signatures: tuple[tuple[int, bytes], ...]  # (committee index, signature), indexes strictly increasing

    def message(self, chain_id: int) -> bytes:
        """The encoded statement each signature covers."""
        return commit_message(chain_id, self.block_hash, self.height, self.epoch, self.round)

    def to_wire(self) -> dict[str, Any]:
        return {
            "block_hash": self.block_hash,
            "height": self.height,
            "epoch": self.epoch,
            "round": self.round,
            "kind": self.kind,
            "signatures": [[i, s] for i, s in self.signatures],
        }

    @classmethod
    def from_wire(cls, v: Any) -> CommitProof:
        if not isinstance(v, dict) or set(v) != {"block_hash", "height", "epoch", "round", "kind", "signatures"}:
            raise BlockMalformed("malformed commit proof")
        sigs = v["signatures"]
        if v["kind"] not in ("sequencer", "quorum") or not isinstance(sigs, list) or len(sigs) > 1024:
            raise BlockMalformed("commit proof: bad kind or signatures")
        pairs = []
        for pair in sigs:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], bytes)):
                raise BlockMalformed("commit proof: a signature is [index, 64 bytes]")
            if len(pair[1]) != SIGNATURE_BYTES:
                raise BlockMalformed("commit proof: a signature is 64 bytes")
            pairs.append((_uint(pair[0], "signature index"), pair[1]))
        if [i for i, _ in pairs] != sorted({i for i, _ in pairs}):
            raise BlockMalformed("commit proof: indexes must be strictly increasing")
        return cls(
            _bytes32(v["block_hash"], "block_hash"),
            _uint(v["height"], "height"),
            _uint(v["epoch"], "epoch"),
            _uint(v["round"], "round"),
            v["kind"],
            tuple(pairs),
        )

    @classmethod
    def sequencer(cls, block: Block, key: SigningKey, *, chain_id: int, index: int = 0) -> CommitProof:
        block_hash = block.hash()
        msg = commit_message(chain_id, block_hash, block.height, block.epoch, block.height)
        sig = key.sign(Domain.STATEMENT, msg)
        return cls(block_hash, block.height, block.epoch, block.height, "sequencer", ((index, sig),))

    def verify(self, block: Block, committee_keys: Sequence[bytes], *, chain_id: int) -> None:
        """Check this proof commits ``block`` on chain ``chain_id`` for a committee whose consensus keys are
        ``committee_keys`` (in committee order). Raises :class:`BlockMalformed`."""
        if (self.block_hash, self.height, self.epoch) != (block.hash(), block.height, block.epoch):
            raise BlockMalformed("commit proof is for another block")
        if self.kind == "sequencer":
            if [i for i, _ in self.signatures] != [0]:
                raise BlockMalformed("a sequencer proof carries exactly the signature of committee member 0")
            if self.round != self.height:
                raise BlockMalformed("a sequencer proof's round is its height")
        elif len(self.signatures) < quorum(len(committee_keys)):
            raise BlockMalformed(
                f"{len(self.signatures)} signatures; the committee needs {quorum(len(committee_keys))}"
            )
        msg = self.message(chain_id)
        for i, sig in self.signatures:
            if i >= len(committee_keys):
                raise BlockMalformed(f"commit proof: no committee member {i}")
            try:
                PublicKey(committee_keys[i]).verify(Domain.STATEMENT, msg, sig)
            except BadSignature:
                raise BlockMalformed(f"commit proof: bad signature of committee member {i}") from None


def commit_message(chain_id: int, block_hash: bytes, height: int, epoch: int, round_: int) -> bytes:
    """The encoded ``commit_vote`` statement for ``block_hash`` at ``height`` in view ``round_`` (docs/wire.md)."""
    return block_statement(chain_id, epoch, round_, Kind.COMMIT_VOTE, height, block_hash)


@dataclass(frozen=True)
class ChainHead:
    """The last executed block (height 0: genesis) and the state after it."""

    height: int
    block_hash: bytes
    state_root: bytes
    timestamp_ms: int
    epoch: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "block_hash": self.block_hash,
            "state_root": self.state_root,
            "timestamp_ms": self.timestamp_ms,
            "epoch": self.epoch,
        }

    @classmethod
    def from_wire(cls, v: Any) -> ChainHead:
        return cls(v["height"], v["block_hash"], v["state_root"], v["timestamp_ms"], v["epoch"])


def check_timestamp(timestamp_ms: int, parent_ms: int, local_now_ms: int, window_ms: int) -> str | None:
    """Why a validator refuses a proposed block's timestamp, or None. The executor itself checks only the parent
    bound (it must not read a clock); the window against the local clock is checked before voting or following."""
    if timestamp_ms < parent_ms:
        return f"timestamp {timestamp_ms} is below the parent's {parent_ms}"
    if timestamp_ms > local_now_ms + window_ms:
        return f"timestamp {timestamp_ms} is more than {window_ms} ms ahead of this node's clock ({local_now_ms})"
    return None
