"""Signed statements: the one structure every protocol signature of a node covers (docs/wire.md, "Signed statements").

A statement says "key K, on chain C in epoch E at view-or-sequence S, states this payload of kind T". It is the
canonical msgpack map ::

    {"domain": "lightning/statement/v1", "chain": C, "epoch": E, "seq": S, "kind": T, "payload": blake3(payload)}

signed with Ed25519 under :attr:`~lightning.crypto.Domain.STATEMENT` (so the signed bytes are
``b"lightning/statement/v1" || 0x00 || encode(map)``). The payload itself travels beside the statement in the
message of its kind; a verifier recomputes its hash, so a signature never covers bytes it has not seen.

Kinds are a closed set (:class:`Kind`). The consensus kinds in :data:`SLASHABLE` are signed at most once per
``(chain, epoch, seq)`` by an honest key, where ``seq`` is the view; two different statements of one such kind by one
key for the same ``(chain, epoch, seq)`` are an :class:`Equivocation`, checkable by anyone with the key alone. Every
other kind carries the signer's own sequence number, may be re-signed freely, and is never evidence.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any

import blake3

from lightning.codec import encode
from lightning.crypto import SIGNATURE_BYTES, BadSignature, Domain, PublicKey, SigningKey
from lightning.errors import RemoteProtocolError

__all__ = [
    "SLASHABLE",
    "STATEMENT_DOMAIN",
    "Equivocation",
    "EvidenceInvalid",
    "Kind",
    "SignedStatement",
    "Statement",
    "StatementInvalid",
    "block_payload_hash",
    "block_statement",
    "payload_hash",
]

STATEMENT_DOMAIN = Domain.STATEMENT.value
_FIELDS = frozenset({"domain", "chain", "epoch", "seq", "kind", "payload"})
_U63 = 2**63


class StatementInvalid(RemoteProtocolError):
    """A malformed statement: unknown kind or domain, a field out of range."""


class EvidenceInvalid(StatementInvalid):
    """Equivocation evidence that does not prove an equivocation (bad signature, or the statements do not conflict)."""


class Kind(enum.StrEnum):
    """What a statement is about. Closed: a kind not listed here is refused, never guessed."""

    PROPOSAL = "proposal"  # a leader's block for its view
    VOTE = "vote"  # a prepare vote
    COMMIT_VOTE = "commit_vote"  # a commit vote: 2f+1 of them are a block's CommitProof
    TIMEOUT = "timeout"  # a member leaves a view
    CHECKPOINT = "checkpoint"  # a member's checkpoint signature (seq 0: one checkpoint per epoch and member)
    RESOLVER_RECORD = "resolver_record"  # an origin pointer resolved to a blake3 root (seq: the node's counter)
    ACKNOWLEDGMENT = "acknowledgment"  # a client's delivery acknowledgment
    MEASUREMENT = "measurement"  # a node's reputation measurements of its peers
    EVIDENCE = "evidence"  # a node submits evidence of misbehaviour
    REGISTRATION = "registration"  # a node's registration (keys, host, ports), signed by its node key
    CONTENT = "content"  # a signature over content a node serves


SLASHABLE = frozenset({Kind.PROPOSAL, Kind.VOTE, Kind.COMMIT_VOTE, Kind.CHECKPOINT})


def payload_hash(payload: bytes) -> bytes:
    """The 32-byte blake3 hash of a kind's payload bytes."""
    return blake3.blake3(payload).digest()


def _uint(v: Any, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < _U63:
        raise StatementInvalid(f"statement {name}: expected an integer in [0, 2^63)")
    return v


@dataclass(frozen=True, slots=True)
class Statement:
    chain_id: int
    epoch: int
    seq: int  # the view for the consensus kinds; the signer's own sequence number for the others
    kind: Kind
    payload_hash: bytes  # blake3 of the kind's payload

    def __post_init__(self) -> None:
        for name in ("chain_id", "epoch", "seq"):
            _uint(getattr(self, name), name)
        if not isinstance(self.kind, Kind):
            raise StatementInvalid(f"statement kind {self.kind!r}: not one of {', '.join(k.value for k in Kind)}")
        if not isinstance(self.payload_hash, bytes) or len(self.payload_hash) != 32:
            raise StatementInvalid("statement payload: expected a 32-byte hash")

    def to_wire(self) -> dict[str, Any]:
        return {
            "domain": STATEMENT_DOMAIN,
            "chain": self.chain_id,
            "epoch": self.epoch,
            "seq": self.seq,
            "kind": self.kind.value,
            "payload": self.payload_hash,
        }

    @classmethod
    def from_wire(cls, v: Any) -> Statement:
        """Raises :class:`StatementInvalid`."""
        if not isinstance(v, dict) or set(v) != _FIELDS:
            raise StatementInvalid(f"a statement is a map of {', '.join(sorted(_FIELDS))}")
        if v["domain"] != STATEMENT_DOMAIN:
            raise StatementInvalid(f"statement domain {v['domain']!r}: expected {STATEMENT_DOMAIN!r}")
        try:
            kind = Kind(v["kind"])
        except ValueError:
            raise StatementInvalid(f"statement kind {v['kind']!r}: unknown") from None
        return cls(v["chain"], v["epoch"], v["seq"], kind, v["payload"])

    def encode(self) -> bytes:
        """The canonical bytes (what is signed, after the domain prefix)."""
        return _encode(self)

    def sign(self, key: SigningKey) -> SignedStatement:
        return SignedStatement(self, key.sign(Domain.STATEMENT, self.encode()))

    def conflicts_with(self, other: Statement) -> bool:
        """Whether signing both is an equivocation: one slashable kind, one (chain, epoch, seq), different payloads."""
        return (
            self.kind in SLASHABLE
            and (self.kind, self.chain_id, self.epoch, self.seq) == (other.kind, other.chain_id, other.epoch, other.seq)
            and self.payload_hash != other.payload_hash
        )


@functools.lru_cache(maxsize=8192)
def _encode(statement: Statement) -> bytes:
    return encode(statement.to_wire())


@functools.lru_cache(maxsize=8192)
def block_payload_hash(height: int, block_hash: bytes) -> bytes:
    """The payload hash of a proposal, prepare vote or commit vote: ``blake3(encode({"height", "block"}))``."""
    return payload_hash(encode({"height": height, "block": block_hash}))


@functools.lru_cache(maxsize=8192)
def block_statement(chain_id: int, epoch: int, view: int, kind: Kind, height: int, block_hash: bytes) -> bytes:
    """The encoded statement of a proposal, prepare vote or commit vote (payload: :func:`block_payload_hash`).
    Memoised: a vote's bytes are rebuilt for every certificate that carries it."""
    return Statement(chain_id, epoch, view, kind, block_payload_hash(height, block_hash)).encode()


@dataclass(frozen=True, slots=True)
class SignedStatement:
    statement: Statement
    signature: bytes

    def verify(self, key: bytes) -> None:
        """Raises :class:`~lightning.crypto.BadSignature` unless ``key`` (an Ed25519 public key) signed it."""
        try:
            public = PublicKey(key)
        except ValueError as exc:
            raise BadSignature(str(exc)) from None
        public.verify(Domain.STATEMENT, self.statement.encode(), self.signature)

    def to_wire(self) -> dict[str, Any]:
        return {"statement": self.statement.to_wire(), "sig": self.signature}

    @classmethod
    def from_wire(cls, v: Any) -> SignedStatement:
        if not isinstance(v, dict) or set(v) != {"statement", "sig"}:
            raise StatementInvalid("a signed statement is a map of statement, sig")
        sig = v["sig"]
        if not isinstance(sig, bytes) or len(sig) != SIGNATURE_BYTES:
            raise StatementInvalid(f"statement sig: expected {SIGNATURE_BYTES} bytes")
        return cls(Statement.from_wire(v["statement"]), sig)


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Two conflicting signed statements by one key: the evidence a slashing transaction will carry. ``first`` sorts
    before ``second`` by their encoded statements, so one pair of statements is always one piece of evidence."""

    key: bytes  # the signer's Ed25519 public key (a consensus key for the consensus kinds)
    first: SignedStatement
    second: SignedStatement

    @classmethod
    def of(cls, key: bytes, a: SignedStatement, b: SignedStatement) -> Equivocation:
        """The evidence of ``a`` and ``b`` in canonical order (not checked: see :meth:`verify`)."""
        if b.statement.encode() < a.statement.encode():
            a, b = b, a
        return cls(key, a, b)

    @property
    def kind(self) -> Kind:
        return self.first.statement.kind

    def verify(self, *, chain_id: int) -> None:
        """Check that the statements are this chain's (``chain_id``: evidence from another chain, say a testnet with
        reused keys, proves nothing here), that they conflict, and both signatures by ``key``. Raises
        :class:`EvidenceInvalid`."""
        if self.first.statement.chain_id != chain_id:
            raise EvidenceInvalid(f"the statements are for chain {self.first.statement.chain_id}, not {chain_id}")
        if not self.first.statement.conflicts_with(self.second.statement):
            raise EvidenceInvalid("the two statements do not conflict (another kind, chain, epoch or view, or equal)")
        if self.first.statement.encode() >= self.second.statement.encode():
            raise EvidenceInvalid("evidence statements must be in canonical order")
        for which, signed in (("first", self.first), ("second", self.second)):
            try:
                signed.verify(self.key)
            except BadSignature as exc:
                raise EvidenceInvalid(f"the {which} statement: {exc}") from None

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key, "first": self.first.to_wire(), "second": self.second.to_wire()}

    @classmethod
    def from_wire(cls, v: Any) -> Equivocation:
        """Parse only; call :meth:`verify`. Raises :class:`StatementInvalid`."""
        if not isinstance(v, dict) or set(v) != {"key", "first", "second"}:
            raise StatementInvalid("equivocation evidence is a map of key, first, second")
        if not isinstance(v["key"], bytes) or len(v["key"]) != 32:
            raise StatementInvalid("evidence key: expected 32 bytes")
        return cls(v["key"], SignedStatement.from_wire(v["first"]), SignedStatement.from_wire(v["second"]))
