"""Consensus signatures as signed statements: leaders sign proposals and members check them before voting; a member
keeps two different slashable statements of one member in one view as evidence; a restarted leader never proposes a
different block in a view it proposed in; and, over seeded simulations with restarts, honest members never sign two
conflicting statements."""

from __future__ import annotations

from typing import Any

import blake3
import pytest

from lightning.codec import decode, encode
from lightning.consensus import Core, CoreConfig, EvidenceFound, Member, MessageInvalid, Persist, ProposeReady, Send
from lightning.consensus.messages import CommitVote, Proposal, Vote
from lightning.consensus.safety import FileSafetyStore, SafetyState
from lightning.consensus.sim import SimConfig, run_simulation
from lightning.crypto import SigningKey
from lightning.state.block import Block, ChainHead
from lightning.statement import Kind

CHAIN = 5
KEYS = [SigningKey(blake3.blake3(b"k%d" % i).digest()) for i in range(4)]
MEMBERS = [Member(blake3.blake3(b"n%d" % i).digest(), k.public.raw) for i, k in enumerate(KEYS)]
HEAD = ChainHead(0, b"\x01" * 32, b"\x02" * 32, 1_700_000_000_000, 0)


def _core(i: int, saved: SafetyState | None = None) -> Core:
    return Core(
        chain_id=CHAIN,
        epoch=0,
        members=MEMBERS,
        me=i,
        key=KEYS[i],
        head=HEAD,
        saved=saved,
        check_block=lambda b: None,
        now=0.0,
        config=CoreConfig(view_timeout_s=1.0, view_timeout_max_s=8.0),
    )


def _wire(msg: dict[str, Any]) -> Any:
    return decode(encode(msg))


def _block(txs: list[bytes], proposer: int = 0) -> Block:
    return Block.build(head=HEAD, proposer=MEMBERS[proposer].node_id, timestamp_ms=HEAD.timestamp_ms, txs=txs, epoch=0)


def _proposal(block: Block, *, key: SigningKey = KEYS[0], chain: int = CHAIN) -> Any:
    return _wire(Proposal.sign(key, chain, 0, 0, block, None, None, None).to_wire(0))


def _sent(outs: list[Any], t: str) -> list[dict[str, Any]]:
    return [o.msg for o in outs if isinstance(o, Send) and o.msg["t"] == t]


def test_members_vote_only_for_proposals_their_leader_signed() -> None:
    member = _core(1)
    member.start(0.0)
    block = _block([b"a"])
    for bad, why in [
        (_proposal(block, key=KEYS[2]), "signed by another member"),
        (_proposal(block, chain=CHAIN + 1), "signed for another chain"),
        ({**_proposal(block), "sig": b"\x00" * 64}, "garbage signature"),
    ]:
        with pytest.raises(MessageInvalid, match="bad proposal signature"):
            member.on_message(0, bad, 0.0)
        assert member.s.voted_view == -1, why
    unsigned = {k: v for k, v in _proposal(block).items() if k != "sig"}
    with pytest.raises(MessageInvalid, match="not a consensus message"):
        member.on_message(0, unsigned, 0.0)
    outs = member.on_message(0, _proposal(block), 0.0)
    assert [v["block"] for v in _sent(outs, "vote")] == [block.hash()]


def test_a_second_different_proposal_in_a_view_is_evidence_and_gets_no_vote() -> None:
    member = _core(1)
    member.start(0.0)
    a, b = _block([b"a"]), _block([b"b"])
    assert len(_sent(member.on_message(0, _proposal(a), 0.0), "vote")) == 1
    assert member.on_message(0, _proposal(a), 0.0) == []  # the same proposal again: a resend
    outs = member.on_message(0, _proposal(b), 0.0)
    assert not _sent(outs, "vote")
    found = [o for o in outs if isinstance(o, EvidenceFound)]
    assert len(found) == 1 and found[0].member == 0
    evidence = found[0].evidence
    assert member.evidence() == (evidence,) and member.statistics().equivocations == 1
    evidence.verify(chain_id=CHAIN)  # a third party needs only the leader's key
    assert evidence.key == MEMBERS[0].key and evidence.kind is Kind.PROPOSAL
    assert {evidence.first.statement.seq, evidence.second.statement.seq} == {0}
    member.on_message(0, _proposal(_block([b"c"])), 0.0)  # a third one: still one piece of evidence per view
    assert member.statistics().equivocations == 1


@pytest.mark.parametrize("vote_type", [Vote, CommitVote])
def test_two_different_votes_of_a_member_in_a_view_are_evidence(vote_type: type[Vote] | type[CommitVote]) -> None:
    member = _core(3)
    member.start(0.0)
    a, b = b"\x0a" * 32, b"\x0b" * 32
    first = vote_type.sign(KEYS[2], CHAIN, 0, 0, 1, a)
    assert not [o for o in member.on_message(2, _wire(first.to_wire(0)), 0.0) if isinstance(o, EvidenceFound)]
    assert member.on_message(2, _wire(first.to_wire(0)), 0.0) == []  # the same vote twice: nothing
    outs = member.on_message(2, _wire(vote_type.sign(KEYS[2], CHAIN, 0, 0, 1, b).to_wire(0)), 0.0)
    (found,) = [o for o in outs if isinstance(o, EvidenceFound)]
    assert found.member == 2 and found.evidence.kind is (Kind.VOTE if vote_type is Vote else Kind.COMMIT_VOTE)
    found.evidence.verify(chain_id=CHAIN)
    # votes of one member in two views are not evidence
    member.on_message(2, _wire(vote_type.sign(KEYS[2], CHAIN, 0, 1, 1, b).to_wire(0)), 0.0)
    assert member.statistics().equivocations == 1
    # a vote signed for another chain is refused outright
    with pytest.raises(MessageInvalid, match="signature"):
        member.on_message(2, _wire(vote_type.sign(KEYS[2], CHAIN + 1, 0, 2, 1, b).to_wire(0)), 0.0)


def test_a_leader_persists_its_proposal_before_sending_it() -> None:
    leader = _core(0)
    assert ProposeReady(0) in leader.start(0.0)
    outs = leader.propose(0, [b"a"], HEAD.timestamp_ms, 0.0)
    kinds = [type(o).__name__ if not isinstance(o, Send) else o.msg["t"] for o in outs]
    assert kinds[:2] == ["Persist", "proposal"]
    saved = outs[0].state
    assert isinstance(outs[0], Persist) and saved.proposed_view == 0
    assert saved.proposed_block == Block.from_wire(_sent(outs, "proposal")[0]["block"]).hash()


def test_a_restarted_leader_never_proposes_another_block_in_its_view(tmp_path) -> None:
    store = FileSafetyStore(tmp_path / "safety")
    leader = _core(0)
    leader.start(0.0)
    outs = leader.propose(0, [b"a"], HEAD.timestamp_ms, 0.0)
    for o in outs:
        if isinstance(o, Persist):
            store.save(o.state)
    first = _sent(outs, "proposal")[0]

    restarted = _core(0, saved=store.load())  # crashed after sending; same view
    assert restarted.view == 0
    assert not [o for o in restarted.start(0.1) if isinstance(o, ProposeReady)]
    assert restarted.propose(0, [b"b"], HEAD.timestamp_ms + 7, 0.1) == []  # another block: never
    assert restarted.statistics().proposals == 0

    # the members that got the first proposal vote for it; the restarted leader locks on it and later leads
    # again only in another view
    members = [_core(i) for i in (1, 2, 3)]
    for m in members:
        m.start(0.0)
        assert len(_sent(m.on_message(0, first, 0.0), "vote")) == 1


def test_safety_state_files_from_before_signed_proposals_are_read_conservatively(tmp_path) -> None:
    store = FileSafetyStore(tmp_path / "safety")
    state = SafetyState(0, 6, 5, 4, None, 6, b"\x09" * 32)
    store.save(state)
    assert store.load() == state
    old = {k: v for k, v in state.to_wire().items() if k not in ("proposed_view", "proposed_block")}
    (tmp_path / "safety").write_bytes(encode(old))
    loaded = store.load()
    assert loaded is not None and loaded.proposed_view == 6  # as if it proposed in its view: it will not again


@pytest.mark.parametrize(("committee", "seed"), [(4, s) for s in range(8)] + [(7, s) for s in range(4)])
def test_honest_members_never_sign_conflicting_statements_across_view_changes_and_restarts(
    committee: int, seed: int
) -> None:
    """Only honest faults: crashes, leaders bounced within their view, partitions, slow links. The simulator checks
    every statement each honest member sends (its signature against the statement, and against everything that
    member signed before, in any incarnation); no core may report evidence."""
    cfg = SimConfig(committee=committee, seed=seed, faults=("crash", "bounce", "partition", "delay"))
    result = run_simulation(cfg)
    assert result.ok, f"seed {seed}: {result.violations}\n" + "\n".join(result.trace[-30:])
    assert result.statements > 100 and result.evidence == 0
    assert result.stats["view_changes"] > 0


def test_byzantine_members_are_caught_and_honest_ones_never_are() -> None:
    """With an equivocating leader and a Byzantine voter, honest cores report evidence; the simulator verifies each
    piece and fails the run if one names an honest member."""
    caught = 0
    for seed in range(6):
        result = run_simulation(SimConfig(committee=4, seed=seed))
        assert result.ok, f"seed {seed}: {result.violations}"
        caught += result.evidence
    assert caught > 0
