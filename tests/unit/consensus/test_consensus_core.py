"""The sans-IO consensus core driven by hand: exact outputs, no sockets, time set by the test."""

from __future__ import annotations

from typing import Any

import blake3
import pytest

from lightning.codec import decode, encode
from lightning.consensus import (
    Commit,
    Core,
    CoreConfig,
    FileSafetyStore,
    Member,
    MessageInvalid,
    Persist,
    ProposeReady,
    SafetyState,
    Send,
    SyncNeeded,
)
from lightning.consensus.messages import QC, TC, Proposal, Timeout, Vote
from lightning.crypto import SigningKey
from lightning.state.block import Block, ChainHead

CHAIN = 5
KEYS = [SigningKey(blake3.blake3(b"k%d" % i).digest()) for i in range(4)]
MEMBERS = [Member(blake3.blake3(b"n%d" % i).digest(), k.public.raw) for i, k in enumerate(KEYS)]
HEAD = ChainHead(0, b"\x01" * 32, b"\x02" * 32, 1_700_000_000_000, 0)


def _core(i: int, saved: SafetyState | None = None, check: Any = None) -> Core:
    return Core(
        chain_id=CHAIN,
        epoch=0,
        members=MEMBERS,
        me=i,
        key=KEYS[i],
        head=HEAD,
        saved=saved,
        check_block=check or (lambda b: None),
        now=0.0,
        config=CoreConfig(view_timeout_s=1.0, view_timeout_max_s=8.0),
    )


def _wire(msg: dict[str, Any]) -> Any:
    return decode(encode(msg))


class Committee:
    """Moves Send outputs between cores (all delivered, in order) and records everything else."""

    def __init__(self, cores: list[Core]) -> None:
        self.cores = cores
        self.commits: dict[int, list[Commit]] = {i: [] for i in range(len(cores))}
        self.persisted: dict[int, list[SafetyState]] = {i: [] for i in range(len(cores))}
        self.ready: list[tuple[int, int]] = []

    def run(self, i: int, outs: list[Any], now: float = 0.0) -> None:
        queue = [(i, o) for o in outs]
        while queue:
            src, o = queue.pop(0)
            if isinstance(o, Send):
                for j in range(len(self.cores)) if o.to is None else [o.to]:
                    if j != src:
                        queue += [(j, x) for x in self.cores[j].on_message(src, _wire(o.msg), now)]
            elif isinstance(o, Commit):
                self.commits[src].append(o)
            elif isinstance(o, Persist):
                self.persisted[src].append(o.state)
            elif isinstance(o, ProposeReady):
                self.ready.append((src, o.view))


def test_four_members_commit_a_block_with_a_quorum_proof() -> None:
    cores = [_core(i) for i in range(4)]
    net = Committee(cores)
    for i, c in enumerate(cores):
        net.run(i, c.start(0.0))
    assert net.ready == [(0, 0)]  # member 0 leads view 0
    net.run(0, cores[0].propose(0, [b"tx1", b"tx2"], HEAD.timestamp_ms + 5, 0.0))
    for i in range(4):
        assert len(net.commits[i]) == 1
        commit = net.commits[i][0]
        assert commit.block.txs == (b"tx1", b"tx2") and commit.block.height == 1
        commit.proof.verify(commit.block, [m.key for m in MEMBERS], chain_id=CHAIN)  # what edge nodes check
        assert commit.proof.kind == "quorum" and len(commit.proof.signatures) >= 3
        assert net.persisted[i][-1].voted_view == 0 and net.persisted[i][-1].lock is not None
    # executing it moves everyone to view 1, led by member 1
    for i, c in enumerate(cores):
        head = ChainHead(1, net.commits[i][0].proof.block_hash, b"\x03" * 32, HEAD.timestamp_ms + 5, 0)
        net.run(i, c.on_head(head, net.commits[i][0].proof, 0.1))
    assert [c.view for c in cores] == [1, 1, 1, 1] and (1, 1) in net.ready
    assert all(c.s.lock is None for c in cores)


def test_persist_precedes_the_vote_and_a_restarted_member_does_not_vote_twice() -> None:
    leader = _core(0)
    leader.start(0.0)
    outs = leader.propose(0, [b"a"], HEAD.timestamp_ms, 0.0)
    proposal = next(o.msg for o in outs if isinstance(o, Send) and o.msg["t"] == "proposal")
    member = _core(1)
    outs = member.on_message(0, _wire(proposal), 0.0)
    kinds = [type(o).__name__ if not isinstance(o, Send) else o.msg["t"] for o in outs]
    assert kinds[:2] == ["Persist", "vote"]
    saved = next(o.state for o in outs if isinstance(o, Persist))
    assert saved.voted_view == 0

    restarted = _core(1, saved=saved)
    assert restarted.on_message(0, _wire(proposal), 0.0) == []  # already voted in view 0


def _tc(view: int) -> TC:
    return TC(view, tuple((i, Timeout.sign(KEYS[i], CHAIN, 0, view, 1, None).sig) for i in (0, 1, 2)), None)


def _qc(view: int, block_hash: bytes) -> QC:
    return QC(view, 1, block_hash, tuple((i, Vote.sign(KEYS[i], CHAIN, 0, view, 1, block_hash).sig) for i in (0, 1, 2)))


def _proposal(view: int, block: Block, qc: QC | None, tc: TC | None) -> Proposal:
    return Proposal.sign(KEYS[view % 4], CHAIN, 0, view, block, qc, tc, None)


def _block(txs: list[bytes], proposer: int) -> Block:
    return Block.build(head=HEAD, proposer=MEMBERS[proposer].node_id, timestamp_ms=HEAD.timestamp_ms, txs=txs, epoch=0)


def test_a_locked_member_refuses_another_block_until_shown_a_higher_qc() -> None:
    member = _core(3)
    member.start(0.0)
    a, b = _block([b"a"], 0), _block([b"b"], 1)
    qc_a = _qc(0, a.hash())
    member.on_message(0, _wire(_proposal(0, a, None, None).to_wire(0)), 0.0)
    member.on_message(2, _wire(Timeout.sign(KEYS[2], CHAIN, 0, 0, 1, qc_a).to_wire(0)), 0.0)
    assert member.s.lock == qc_a
    # view 1: its leader proposes another block with only a TC: refused
    outs = member.on_message(1, _wire(_proposal(1, b, None, _tc(0)).to_wire(0)), 1.0)
    assert member.view == 1 and not [o for o in outs if isinstance(o, Send) and o.msg["t"] == "vote"]
    assert "locked on another block" in member.statistics().last_reject
    # view 2: that block again, with a QC of view 1 (above the lock): the lock moves and the member votes
    outs = member.on_message(2, _wire(_proposal(2, b, _qc(1, b.hash()), _tc(1)).to_wire(0)), 2.0)
    votes = [o.msg for o in outs if isinstance(o, Send) and o.msg["t"] == "vote"]
    assert member.s.lock is not None and member.s.lock.block_hash == b.hash()
    assert len(votes) == 1 and votes[0]["block"] == b.hash() and votes[0]["view"] == 2


def test_timeouts_form_a_tc_and_move_to_the_next_view() -> None:
    cores = [_core(i) for i in range(4)]
    net = Committee(cores)
    for i in range(1, 4):  # member 0 (view 0's leader) is silent
        net.run(i, cores[i].on_timer(1.0), 1.0)
    assert [c.view for c in cores[1:]] == [1, 1, 1]
    assert (1, 1) in net.ready  # member 1 leads view 1, with the TC
    net.run(1, cores[1].propose(1, [b"late"], HEAD.timestamp_ms, 1.1), 1.1)
    assert all(len(net.commits[i]) == 1 for i in range(1, 4))
    assert net.commits[1][0].proof.round == 1


def test_a_member_behind_by_a_height_asks_to_sync() -> None:
    member = _core(3)
    member.start(0.0)
    # one member's (unsigned) height claim is not enough: it could be Byzantine and never answer
    outs = member.on_message(0, _wire(Timeout.sign(KEYS[0], CHAIN, 0, 0, 6, None).to_wire(0)), 0.0)
    assert not any(isinstance(o, SyncNeeded) for o in outs)
    # f+1 = 2 claims include an honest member: sync from one of the claimers
    outs = member.on_message(1, _wire(Timeout.sign(KEYS[1], CHAIN, 0, 0, 6, None).to_wire(0)), 0.0)
    assert [o for o in outs if isinstance(o, SyncNeeded)] in ([SyncNeeded(0, 1)], [SyncNeeded(1, 1)])


def test_bad_messages_are_typed_errors() -> None:
    member = _core(1)
    with pytest.raises(MessageInvalid):
        member.on_message(0, {"t": "vote"}, 0.0)
    forged = Vote.sign(KEYS[2], CHAIN, 0, 0, 1, b"\x05" * 32)  # signed by member 2, sent as member 0
    with pytest.raises(MessageInvalid, match="signature"):
        member.on_message(0, _wire(forged.to_wire(0)), 0.0)
    with pytest.raises(MessageInvalid, match="non-member"):
        member.on_message(7, _wire(forged.to_wire(0)), 0.0)
    # a proposal from a member that does not lead the view
    leader = _core(0)
    outs = leader.propose(0, [], HEAD.timestamp_ms, 0.0)
    proposal = _wire(next(o.msg for o in outs if isinstance(o, Send)))
    with pytest.raises(MessageInvalid, match="does not lead"):
        member.on_message(2, proposal, 0.0)
    assert member.s.voted_view == -1


def test_a_block_the_host_refuses_gets_no_vote() -> None:
    leader = _core(0)
    outs = leader.propose(0, [b"t"], HEAD.timestamp_ms, 0.0)
    proposal = _wire(next(o.msg for o in outs if isinstance(o, Send)))
    member = _core(1, check=lambda b: "timestamp too far ahead")
    member.start(0.0)
    assert member.on_message(0, proposal, 0.0) == []
    assert member.statistics().rejected == 1 and "timestamp" in member.statistics().last_reject


def test_file_safety_store_round_trip(tmp_path) -> None:
    store = FileSafetyStore(tmp_path / "consensus" / "safety")
    assert store.load() is None
    qc = QC(3, 9, b"\x07" * 32, ((0, b"\x01" * 64), (2, b"\x02" * 64)))
    state = SafetyState(2, 5, 4, 3, qc)
    store.save(state)
    assert store.load() == state
    store.save(SafetyState.initial(3))
    assert store.load() == SafetyState(3, 0, -1, -1, None)
