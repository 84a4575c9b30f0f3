"""Consensus messages and certificates: their wire form, signatures and verification (docs/consensus.md).

Every message is a canonical msgpack map ``{"t": kind, "epoch": e, ...}``. Every signature covers a signed statement
(lightning/statement.py, docs/wire.md) under ``Domain.STATEMENT``, with the chain id, the epoch and the view:

=============  ===============  ==================================================================
what           statement kind   payload (hashed into the statement)
=============  ===============  ==================================================================
proposal       ``proposal``     ``encode({"height", "block"})`` (the proposed block's hash)
prepare vote   ``vote``         ``encode({"height", "block"})``
commit vote    ``commit_vote``  ``encode({"height", "block"})`` (the block's CommitProof signatures)
timeout        ``timeout``      the empty byte string (a timeout says only "I leave this view")
=============  ===============  ==================================================================

A QC is 2f+1 prepare votes for one (view, height, block); a TC is 2f+1 timeouts for one view, carrying the highest
QC its signers reported; 2f+1 commit votes are the block's :class:`~lightning.state.block.CommitProof`
(``kind="quorum"``, ``round`` = view), which edge nodes check with nothing but the committee's keys.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from lightning.crypto import SIGNATURE_BYTES, BadSignature, Domain, PublicKey, SigningKey
from lightning.errors import LightningError, RemoteProtocolError
from lightning.state.block import Block, BlockMalformed, CommitProof, quorum
from lightning.state.block import commit_message as _commit_message
from lightning.statement import Kind, Statement, block_statement, payload_hash

__all__ = [
    "QC",
    "TC",
    "CommitVote",
    "ConsensusError",
    "Message",
    "MessageInvalid",
    "Proposal",
    "Timeout",
    "Vote",
    "decode_message",
    "proposal_message",
    "timeout_message",
    "verify_commit_proof",
    "verify_signature",
    "vote_message",
]

MAX_SIGNATURES = 1024


class ConsensusError(LightningError):
    """Root of the consensus component's errors."""


class MessageInvalid(ConsensusError, RemoteProtocolError):
    """A peer sent a malformed consensus message, or one whose signatures or certificates do not verify."""


@functools.lru_cache(maxsize=1 << 16)
def verify_signature(key: bytes, domain: Domain, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification, memoised: a certificate is re-received many times and each signature is checked once."""
    try:
        PublicKey(key).verify(domain, message, signature)
    except (BadSignature, ValueError):
        return False
    return True


# One memo per kind, keyed by plain values: a vote is checked again for every certificate that carries it, and the
# lookup is most of what a check costs then (verify_signature is memoised too).
@functools.lru_cache(maxsize=4096)
def vote_message(chain_id: int, epoch: int, view: int, height: int, block_hash: bytes) -> bytes:
    return block_statement(chain_id, epoch, view, Kind.VOTE, height, block_hash)


@functools.lru_cache(maxsize=4096)
def commit_message(chain_id: int, block_hash: bytes, height: int, epoch: int, view: int) -> bytes:
    return _commit_message(chain_id, block_hash, height, epoch, view)


def proposal_message(chain_id: int, epoch: int, view: int, height: int, block_hash: bytes) -> bytes:
    return block_statement(chain_id, epoch, view, Kind.PROPOSAL, height, block_hash)


_NO_PAYLOAD = payload_hash(b"")


@functools.lru_cache(maxsize=4096)
def timeout_message(chain_id: int, epoch: int, view: int) -> bytes:
    return Statement(chain_id, epoch, view, Kind.TIMEOUT, _NO_PAYLOAD).encode()


def _uint(v: Any, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**63:
        raise MessageInvalid(f"{name}: expected a non-negative integer")
    return v


def _bytes(v: Any, name: str, size: int) -> bytes:
    if not isinstance(v, bytes) or len(v) != size:
        raise MessageInvalid(f"{name}: expected {size} bytes")
    return v


def _sigs(v: Any, n: int) -> tuple[tuple[int, bytes], ...]:
    if not isinstance(v, list) or len(v) > min(MAX_SIGNATURES, n):
        raise MessageInvalid("signatures: expected a list of at most one per member")
    out = []
    for pair in v:
        if not isinstance(pair, list) or len(pair) != 2:
            raise MessageInvalid("a signature is [member index, 64 bytes]")
        out.append((_uint(pair[0], "member index"), _bytes(pair[1], "signature", SIGNATURE_BYTES)))
    if [i for i, _ in out] != sorted({i for i, _ in out}) or (out and out[-1][0] >= n):
        raise MessageInvalid("signature indexes must be distinct members in increasing order")
    return tuple(out)


def _check_quorum(
    sigs: Sequence[tuple[int, bytes]], keys: Sequence[bytes], domain: Domain, msg: bytes, what: str
) -> None:
    if len(sigs) < quorum(len(keys)):
        raise MessageInvalid(f"{what}: {len(sigs)} signatures, a quorum is {quorum(len(keys))}")
    for i, sig in sigs:
        if i >= len(keys) or not verify_signature(keys[i], domain, msg, sig):
            raise MessageInvalid(f"{what}: bad signature of member {i}")


@dataclass(frozen=True)
class QC:
    """2f+1 prepare votes for ``block_hash`` at ``height`` in ``view``."""

    view: int
    height: int
    block_hash: bytes
    sigs: tuple[tuple[int, bytes], ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "height": self.height,
            "block": self.block_hash,
            "sigs": [list(s) for s in self.sigs],
        }

    @classmethod
    def from_wire(cls, v: Any, n: int) -> QC:
        if not isinstance(v, dict) or set(v) != {"view", "height", "block", "sigs"}:
            raise MessageInvalid("malformed QC")
        return cls(
            _uint(v["view"], "qc view"),
            _uint(v["height"], "qc height"),
            _bytes(v["block"], "qc block", 32),
            _sigs(v["sigs"], n),
        )

    def verify(self, chain_id: int, epoch: int, keys: Sequence[bytes]) -> None:
        msg = vote_message(chain_id, epoch, self.view, self.height, self.block_hash)
        _check_quorum(self.sigs, keys, Domain.STATEMENT, msg, f"QC of view {self.view}")


@dataclass(frozen=True)
class TC:
    """2f+1 timeouts of ``view``; ``high_qc`` is the highest QC its signers reported (a hint for the next leader)."""

    view: int
    sigs: tuple[tuple[int, bytes], ...]
    high_qc: QC | None

    def to_wire(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "sigs": [list(s) for s in self.sigs],
            "high_qc": None if self.high_qc is None else self.high_qc.to_wire(),
        }

    @classmethod
    def from_wire(cls, v: Any, n: int) -> TC:
        if not isinstance(v, dict) or set(v) != {"view", "sigs", "high_qc"}:
            raise MessageInvalid("malformed TC")
        qc = None if v["high_qc"] is None else QC.from_wire(v["high_qc"], n)
        return cls(_uint(v["view"], "tc view"), _sigs(v["sigs"], n), qc)

    def verify(self, chain_id: int, epoch: int, keys: Sequence[bytes]) -> None:
        msg = timeout_message(chain_id, epoch, self.view)
        _check_quorum(self.sigs, keys, Domain.STATEMENT, msg, f"TC {self.view}")
        if self.high_qc is not None:
            self.high_qc.verify(chain_id, epoch, keys)


def verify_commit_proof(proof: CommitProof, chain_id: int, epoch: int, keys: Sequence[bytes]) -> None:
    """A quorum commit proof of this epoch's committee, checked without the block body."""
    if proof.kind != "quorum" or proof.epoch != epoch:
        raise MessageInvalid("not a quorum commit proof of this epoch")
    _check_quorum(
        proof.signatures,
        keys,
        Domain.STATEMENT,
        commit_message(chain_id, proof.block_hash, proof.height, proof.epoch, proof.round),
        f"commit proof {proof.height}",
    )


@dataclass(frozen=True)
class Proposal:
    view: int
    block: Block
    qc: QC | None  # the leader's lock: lets members locked on an older QC vote for this block
    tc: TC | None  # the TC of view - 1, when the leader entered this view by one
    parent_proof: CommitProof | None  # the commit proof of block height - 1 (entering this view by a commit)
    sig: bytes  # the leader's ``proposal`` statement on (view, block height, block hash)

    @classmethod
    def sign(
        cls,
        key: SigningKey,
        chain_id: int,
        epoch: int,
        view: int,
        block: Block,
        qc: QC | None,
        tc: TC | None,
        parent_proof: CommitProof | None,
    ) -> Proposal:
        msg = proposal_message(chain_id, epoch, view, block.height, block.hash())
        return cls(view, block, qc, tc, parent_proof, key.sign(Domain.STATEMENT, msg))

    def valid(self, chain_id: int, epoch: int, key: bytes, block_hash: bytes) -> bool:
        """Whether ``key`` signed this proposal; ``block_hash`` is ``block.hash()``, which the caller has anyway."""
        msg = proposal_message(chain_id, epoch, self.view, self.block.height, block_hash)
        return verify_signature(key, Domain.STATEMENT, msg, self.sig)

    def to_wire(self, epoch: int) -> dict[str, Any]:
        return {
            "t": "proposal",
            "epoch": epoch,
            "view": self.view,
            "block": self.block.to_wire(),
            "qc": None if self.qc is None else self.qc.to_wire(),
            "tc": None if self.tc is None else self.tc.to_wire(),
            "parent_proof": None if self.parent_proof is None else self.parent_proof.to_wire(),
            "sig": self.sig,
        }


@dataclass(frozen=True)
class _BlockVote:
    """A member's signature on (epoch, view, height, block hash). The two kinds, :class:`Vote` and
    :class:`CommitVote`, differ only in their wire tag and statement kind."""

    view: int
    height: int
    block_hash: bytes
    sig: bytes

    KIND: ClassVar[str]
    STATEMENT: ClassVar[Kind]

    @staticmethod
    def signed_bytes(chain_id: int, epoch: int, view: int, height: int, block_hash: bytes) -> bytes:
        raise NotImplementedError

    @classmethod
    def sign(cls, key: SigningKey, chain_id: int, epoch: int, view: int, height: int, block_hash: bytes) -> Self:
        msg = cls.signed_bytes(chain_id, epoch, view, height, block_hash)
        return cls(view, height, block_hash, key.sign(Domain.STATEMENT, msg))

    def to_wire(self, epoch: int) -> dict[str, Any]:
        return {
            "t": self.KIND,
            "epoch": epoch,
            "view": self.view,
            "height": self.height,
            "block": self.block_hash,
            "sig": self.sig,
        }

    def valid(self, chain_id: int, epoch: int, key: bytes) -> bool:
        msg = self.signed_bytes(chain_id, epoch, self.view, self.height, self.block_hash)
        return verify_signature(key, Domain.STATEMENT, msg, self.sig)


@dataclass(frozen=True)
class Vote(_BlockVote):
    """A prepare vote; 2f+1 of them for one (view, height, block) are a :class:`QC`."""

    KIND = "vote"
    STATEMENT = Kind.VOTE

    @staticmethod
    def signed_bytes(chain_id: int, epoch: int, view: int, height: int, block_hash: bytes) -> bytes:
        return vote_message(chain_id, epoch, view, height, block_hash)


@dataclass(frozen=True)
class CommitVote(_BlockVote):
    """A commit vote; 2f+1 of them are the block's :class:`~lightning.state.block.CommitProof`."""

    KIND = "commit"
    STATEMENT = Kind.COMMIT_VOTE

    @staticmethod
    def signed_bytes(chain_id: int, epoch: int, view: int, height: int, block_hash: bytes) -> bytes:
        return commit_message(chain_id, block_hash, height, epoch, view)


@dataclass(frozen=True)
class Timeout:
    view: int
    height: int  # the height the sender works on (head + 1): tells laggards to catch up
    qc: QC | None  # the sender's lock
    sig: bytes

    @classmethod
    def sign(cls, key: SigningKey, chain_id: int, epoch: int, view: int, height: int, qc: QC | None) -> Timeout:
        return cls(view, height, qc, key.sign(Domain.STATEMENT, timeout_message(chain_id, epoch, view)))

    def to_wire(self, epoch: int) -> dict[str, Any]:
        return {
            "t": "timeout",
            "epoch": epoch,
            "view": self.view,
            "height": self.height,
            "qc": None if self.qc is None else self.qc.to_wire(),
            "sig": self.sig,
        }

    def valid(self, chain_id: int, epoch: int, key: bytes) -> bool:
        return verify_signature(key, Domain.STATEMENT, timeout_message(chain_id, epoch, self.view), self.sig)


Message = Proposal | Vote | CommitVote | Timeout

_FIELDS = {
    "proposal": {"t", "epoch", "view", "block", "qc", "tc", "parent_proof", "sig"},
    "vote": {"t", "epoch", "view", "height", "block", "sig"},
    "commit": {"t", "epoch", "view", "height", "block", "sig"},
    "timeout": {"t", "epoch", "view", "height", "qc", "sig"},
}


def decode_message(v: Any, n: int) -> tuple[int, Message]:
    """``(epoch, message)`` from a decoded wire map, for a committee of ``n``. Signatures are not checked here.
    Raises :class:`MessageInvalid`."""
    if not isinstance(v, dict) or v.get("t") not in _FIELDS or set(v) != _FIELDS[v["t"]]:
        raise MessageInvalid("not a consensus message")
    kind, epoch, view = v["t"], _uint(v["epoch"], "epoch"), _uint(v["view"], "view")
    if kind == "proposal":
        try:
            block = Block.from_wire(v["block"])
            proof = None if v["parent_proof"] is None else CommitProof.from_wire(v["parent_proof"])
        except BlockMalformed as exc:
            raise MessageInvalid(f"proposal: {exc}") from None
        qc = None if v["qc"] is None else QC.from_wire(v["qc"], n)
        tc = None if v["tc"] is None else TC.from_wire(v["tc"], n)
        return epoch, Proposal(view, block, qc, tc, proof, _bytes(v["sig"], "sig", SIGNATURE_BYTES))
    height = _uint(v["height"], "height")
    sig = _bytes(v["sig"], "sig", SIGNATURE_BYTES)
    if kind == "timeout":
        qc = None if v["qc"] is None else QC.from_wire(v["qc"], n)
        return epoch, Timeout(view, height, qc, sig)
    vote = Vote if kind == "vote" else CommitVote
    return epoch, vote(view, height, _bytes(v["block"], "block", 32), sig)
