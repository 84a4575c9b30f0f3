"""Signed statements (lightning/statement.py, docs/wire.md "Signed statements"): the test vector, the closed set of
kinds, what conflicts, and equivocation evidence that a third party checks with the key alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lightning.codec import decode, encode
from lightning.crypto import BadSignature, Domain, SigningKey
from lightning.ids import NodeId
from lightning.state.block import Block, commit_message
from lightning.statement import (
    SLASHABLE,
    Equivocation,
    EvidenceInvalid,
    Kind,
    SignedStatement,
    Statement,
    StatementInvalid,
    block_payload_hash,
    payload_hash,
)

KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))

# docs/wire.md, "Signed statements": the same values, byte for byte
VECTOR_PUBLIC = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
VECTOR_PAYLOAD = "ec860b75f38245856256069e8713c3c3b7404f086d25d615a4fe905ae3d7a082"
VECTOR_BYTES = (
    "86a373657103a46b696e64a4766f7465a5636861696e01a565706f636802a6646f6d61696eb66c696768746e696e672f73746174656d65"
    "6e742f7631a77061796c6f6164c420ec860b75f38245856256069e8713c3c3b7404f086d25d615a4fe905ae3d7a082"
)
VECTOR_SIG = (
    "a32e3fa68aed16b37e1f270ddae053f1b743ba1dc73535c98b1f88f2beb27a8cb67475fcc493038f7ab20c5c9036c14543bf4779f00dcd2d"
    "3f265613f52ddb0c"
)


def _vote(seq: int, block: bytes, *, key: SigningKey = KEY, chain: int = 1, epoch: int = 2) -> SignedStatement:
    return Statement(chain, epoch, seq, Kind.VOTE, block_payload_hash(4, block)).sign(key)


def test_the_test_vector() -> None:
    assert KEY.public.hex == VECTOR_PUBLIC
    digest = block_payload_hash(4, b"\x05" * 32)
    assert digest == payload_hash(encode({"height": 4, "block": b"\x05" * 32})) and digest.hex() == VECTOR_PAYLOAD
    statement = Statement(1, 2, 3, Kind.VOTE, digest)
    assert statement.encode().hex() == VECTOR_BYTES
    assert decode(statement.encode()) == statement.to_wire()
    signed = statement.sign(KEY)
    assert signed.signature.hex() == VECTOR_SIG
    # what Ed25519 signs: the domain tag, a zero byte, the encoded statement
    assert KEY.public.is_valid(Domain.STATEMENT, statement.encode(), signed.signature)
    signed.verify(KEY.public.raw)


def test_the_docs_show_the_vectors() -> None:
    docs = Path(__file__).parents[2] / "docs"
    wire = docs / "wire.md"
    block_md = (docs / "block.md").read_text()
    text = wire.read_text()
    section = text[text.index("## Signed statements") :]
    block = section[section.index("```") + 3 :]
    block = block[: block.index("```")]
    digits = "".join(re.findall(r"\b[0-9a-f]{2,}\b", block.split("statement    =")[1].split("signature")[0]))
    assert digits == VECTOR_BYTES
    assert "".join(re.findall(r"[0-9a-f]{64}", block.split("signature    =")[1])) == VECTOR_SIG
    assert VECTOR_PUBLIC in section and VECTOR_PAYLOAD in block
    # docs/block.md: a sequencer commit proof's statement for its example block (round = height = 1, chain 1)
    example = Block(1, bytes(32), 0, NodeId(b"\x01" * 32), 1_700_000_000_000, b"\x02" * 32, bytes(32), ())
    assert example.hash().hex().startswith("74413bea89d2")
    statement = commit_message(1, example.hash(), 1, 0, 1)
    assert block_payload_hash(1, example.hash()).hex() in block_md
    assert statement.hex()[:90] in block_md


def test_wire_round_trip_and_refusals() -> None:
    signed = _vote(3, b"\x05" * 32)
    assert SignedStatement.from_wire(decode(encode(signed.to_wire()))) == signed
    wire = signed.statement.to_wire()
    for bad, why in [
        ({**wire, "domain": "lightning/statement/v2"}, "domain"),
        ({**wire, "kind": "gossip"}, "unknown"),
        ({**wire, "seq": -1}, "seq"),
        ({**wire, "chain": True}, "chain_id"),
        ({**wire, "payload": b"\x00" * 31}, "32-byte"),
        ({k: v for k, v in wire.items() if k != "epoch"}, "a map of"),
        ({**wire, "extra": 1}, "a map of"),
    ]:
        with pytest.raises(StatementInvalid, match=why):
            Statement.from_wire(bad)
    with pytest.raises(StatementInvalid, match="not one of"):
        Statement(1, 2, 3, "vote", b"\x00" * 32)  # type: ignore[arg-type]  # a bare string is not a Kind
    with pytest.raises(StatementInvalid, match="sig"):
        SignedStatement.from_wire({"statement": wire, "sig": b"\x00" * 63})


def test_a_signature_binds_key_chain_epoch_view_kind_and_payload() -> None:
    signed = _vote(3, b"\x05" * 32)
    with pytest.raises(BadSignature):
        signed.verify(OTHER.public.raw)
    s = signed.statement
    for changed in (
        Statement(s.chain_id + 1, s.epoch, s.seq, s.kind, s.payload_hash),
        Statement(s.chain_id, s.epoch + 1, s.seq, s.kind, s.payload_hash),
        Statement(s.chain_id, s.epoch, s.seq + 1, s.kind, s.payload_hash),
        Statement(s.chain_id, s.epoch, s.seq, Kind.COMMIT_VOTE, s.payload_hash),
        Statement(s.chain_id, s.epoch, s.seq, s.kind, b"\x00" * 32),
    ):
        with pytest.raises(BadSignature):
            SignedStatement(changed, signed.signature).verify(KEY.public.raw)
    # a signature under another domain over the same bytes is not a statement signature
    foreign = KEY.sign(Domain.BROADCAST, s.encode())
    with pytest.raises(BadSignature):
        SignedStatement(s, foreign).verify(KEY.public.raw)


def test_what_conflicts() -> None:
    assert {Kind.PROPOSAL, Kind.VOTE, Kind.COMMIT_VOTE, Kind.CHECKPOINT} == SLASHABLE
    a, b = (Statement(1, 2, 3, Kind.VOTE, block_payload_hash(4, h)) for h in (b"\x01" * 32, b"\x02" * 32))
    assert a.conflicts_with(b) and b.conflicts_with(a)
    assert not a.conflicts_with(a)  # the same statement twice is a resend, not an equivocation
    other_view = Statement(1, 2, 4, Kind.VOTE, b.payload_hash)
    other_epoch = Statement(1, 3, 3, Kind.VOTE, b.payload_hash)
    other_chain = Statement(2, 2, 3, Kind.VOTE, b.payload_hash)
    other_kind = Statement(1, 2, 3, Kind.COMMIT_VOTE, b.payload_hash)
    assert not any(a.conflicts_with(x) for x in (other_view, other_epoch, other_chain, other_kind))
    # kinds with their own sequence numbers never conflict, whatever they say
    for kind in set(Kind) - SLASHABLE:
        x, y = (Statement(1, 2, 3, kind, payload_hash(p)) for p in (b"x", b"y"))
        assert not x.conflicts_with(y)


def test_equivocation_evidence_is_checked_with_the_key_alone() -> None:
    a, b = _vote(3, b"\x01" * 32), _vote(3, b"\x02" * 32)
    evidence = Equivocation.of(KEY.public.raw, b, a)
    assert evidence == Equivocation.of(KEY.public.raw, a, b)  # one pair, one canonical order
    assert evidence.kind is Kind.VOTE
    evidence.verify(chain_id=1)
    back = Equivocation.from_wire(decode(encode(evidence.to_wire())))
    assert back == evidence
    back.verify(chain_id=1)

    with pytest.raises(EvidenceInvalid, match="signature"):
        Equivocation.of(OTHER.public.raw, a, b).verify(chain_id=1)  # not this key's statements
    with pytest.raises(EvidenceInvalid, match="signature"):
        Equivocation.of(KEY.public.raw, a, _vote(3, b"\x02" * 32, key=OTHER)).verify(chain_id=1)  # two signers
    with pytest.raises(EvidenceInvalid, match="do not conflict"):
        Equivocation.of(KEY.public.raw, a, a).verify(chain_id=1)
    with pytest.raises(EvidenceInvalid, match="do not conflict"):
        Equivocation.of(KEY.public.raw, a, _vote(4, b"\x02" * 32)).verify(chain_id=1)  # another view
    with pytest.raises(EvidenceInvalid, match="do not conflict"):
        Equivocation.of(KEY.public.raw, a, _vote(3, b"\x02" * 32, chain=9)).verify(chain_id=1)  # another chain
    with pytest.raises(EvidenceInvalid, match="not 7"):
        evidence.verify(chain_id=7)  # another chain's evidence proves nothing here
    with pytest.raises(EvidenceInvalid, match="canonical order"):
        Equivocation(KEY.public.raw, evidence.second, evidence.first).verify(chain_id=1)
    records = [Statement(1, 2, 3, Kind.RESOLVER_RECORD, payload_hash(p)).sign(KEY) for p in (b"x", b"y")]
    with pytest.raises(EvidenceInvalid, match="do not conflict"):
        Equivocation.of(KEY.public.raw, *records).verify(chain_id=1)
    forged = SignedStatement(b.statement, a.signature)
    with pytest.raises(EvidenceInvalid, match="signature"):
        Equivocation.of(KEY.public.raw, a, forged).verify(chain_id=1)
    with pytest.raises(StatementInvalid):
        Equivocation.from_wire({**evidence.to_wire(), "key": b"\x00"})
