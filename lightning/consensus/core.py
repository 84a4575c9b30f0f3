"""The sans-IO consensus core of one committee member for one epoch (docs/consensus.md).

Theory of operation
-------------------
Views ``0, 1, 2 …`` of an epoch each have a leader, ``members[view % n]``. Each height needs one committed block;
the chain executes it, then works on the next height. In a view the leader proposes a block on the committed head
(or re-proposes the block it is locked on); members prepare-vote for it (all-to-all); 2f+1 prepare votes form a QC,
on which each member *locks* and then commit-votes (all-to-all); 2f+1 commit votes are the block's CommitProof, and
the block is committed and executed. A view whose leader does not get its block committed times out: members send
signed timeouts (carrying their lock); 2f+1 timeouts of a view form a TC that moves everyone to the next view, whose
leader proposes the highest locked block it knows (or a new one). Blocks carry the state root *before* them, so a
height is decided before the next is proposed: two rounds of votes per block instead of a pipelined chain.

Rules (all that safety needs; timing only affects liveness):

==================  =======================================================================================
prepare-vote        once per view (``voted_view`` < view, persisted first); the block extends the committed head
                    and passes the host's checks; and we hold no lock for this height, or it is on this block.
lock                on every valid QC for this height with a higher view than our lock (persisted first).
commit-vote         for a QC of view x only if ``voted_view`` <= x and ``commit_voted_view`` < x; then both := x.
commit              a CommitProof (2f+1 commit votes) for the block at head + 1; execute it.
propose             once per view as its leader (``proposed_view`` < view and the block's hash, persisted first), a
                    signed ``proposal`` statement; after a restart in that view only the same block again, or none.
timeout             after the view timer: stop prepare-voting in this view (``voted_view`` := view), send a timeout.
enter view v        by a TC of v-1, by the commit proof of round v-1, by a QC of view v, or by f+1 members'
                    timeouts beyond ours (then time out of it at once); a leader proposes only with a TC or proof.
==================  =======================================================================================

Outputs are returned in order; :class:`Persist` always precedes the messages that depend on it.

Every signature is a signed statement (lightning/statement.py). Proposals, prepare votes and commit votes are
slashable: the first of each kind per (view, member) is kept, and a second, different one that verifies is
*evidence* (:class:`~lightning.statement.Equivocation`, :meth:`Core.evidence`, the :class:`EvidenceFound` output)
— counted once, as before, and never voted on.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning.consensus.messages import (
    QC,
    TC,
    CommitVote,
    MessageInvalid,
    Proposal,
    Timeout,
    Vote,
    decode_message,
    verify_commit_proof,
)
from lightning.consensus.safety import SafetyState
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.state.block import Block, ChainHead, CommitProof, quorum
from lightning.statement import Equivocation, Kind, SignedStatement, Statement, block_payload_hash

__all__ = [
    "Commit",
    "Core",
    "CoreConfig",
    "EvidenceFound",
    "Member",
    "Output",
    "Persist",
    "ProposeReady",
    "Send",
    "SyncNeeded",
]

VIEW_WINDOW = 64  # messages for views further ahead than this are dropped (a peer controls them)
MAX_BODIES = 64
MAX_EVIDENCE = 64  # equivocations kept in memory until the slashing path takes them


@dataclass(frozen=True)
class Member:
    node_id: NodeId
    key: bytes  # consensus public key


@dataclass(frozen=True)
class CoreConfig:
    """The node's ``[consensus]`` fields of the same names (``lightning.consensus.service.core_config``)."""

    view_timeout_s: float = 2.0  # a view's timer; doubles with each consecutive timeout
    view_timeout_max_s: float = 30.0


@dataclass(frozen=True)
class Send:
    to: int | None  # a member index, or None: every other member
    msg: dict[str, Any]


@dataclass(frozen=True)
class Persist:
    state: SafetyState


@dataclass(frozen=True)
class Commit:
    block: Block
    proof: CommitProof


@dataclass(frozen=True)
class ProposeReady:
    """This member leads ``view``: the host should call :meth:`Core.propose` with a batch of transactions."""

    view: int


@dataclass(frozen=True)
class SyncNeeded:
    """Member ``peer`` has committed at least ``height``; fetch the blocks after our head from it."""

    peer: int
    height: int


@dataclass(frozen=True)
class EvidenceFound:
    """Member ``member`` signed two conflicting statements; ``evidence`` proves it to anyone with its key."""

    member: int
    evidence: Equivocation


Output = Send | Persist | Commit | ProposeReady | SyncNeeded | EvidenceFound
CheckBlock = Callable[[Block], "str | None"]


@dataclass(frozen=True)
class CoreStatistics:
    """A snapshot of a member's counters (:meth:`Core.statistics`)."""

    proposals: int = 0
    votes: int = 0
    timeouts: int = 0
    view_changes: int = 0
    rejected: int = 0
    last_reject: str = ""
    syncs: int = 0
    equivocations: int = 0


@dataclass
class _Collect:
    sigs: dict[int, bytes] = field(default_factory=dict)
    done: bool = False


class Core:
    def __init__(
        self,
        *,
        chain_id: int,
        epoch: int,
        members: Sequence[Member],
        me: int,
        key: SigningKey,
        head: ChainHead,
        saved: SafetyState | None,
        check_block: CheckBlock,
        now: float,
        config: CoreConfig = CoreConfig(),
    ) -> None:
        assert 0 <= me < len(members)
        self.chain_id = chain_id
        self.epoch = epoch
        self.members = tuple(members)
        self.keys = [m.key for m in members]
        self.n = len(members)
        self.f = (self.n - 1) // 3
        self._height_claims: dict[int, int] = {}  # member → highest height it claimed in a timeout
        self.q = quorum(self.n)
        self.me = me
        self._key = key
        self.head = head
        self.config = config
        self._check_block = check_block
        self.s = saved if saved is not None and saved.epoch == epoch else SafetyState.initial(epoch)
        self._dirty = saved is None or saved.epoch != epoch
        self._stats = CoreStatistics()
        self._out: list[Output] = []
        self._view_started = now
        self._in_row = 0
        self._entry: TC | CommitProof | None = None
        self._last_proof: CommitProof | None = None
        self._bodies: dict[bytes, Block] = {}
        self._proposals: dict[int, tuple[Proposal, bytes]] = {}
        self._votes: dict[tuple[int, int, bytes], _Collect] = {}
        # (kind, view, member) -> the first (height, block hash, signature) of a slashable kind: one counts, and a
        # different second one is evidence
        self._signed: dict[tuple[Kind, int, int], tuple[int, bytes, bytes]] = {}
        self._reported: set[tuple[Kind, int, int]] = set()
        self._evidence: deque[Equivocation] = deque(maxlen=MAX_EVIDENCE)
        self._commit_votes: dict[tuple[int, int, bytes], _Collect] = {}
        self._certs: dict[bytes, CommitProof] = {}
        self._timeouts: dict[int, dict[int, Timeout]] = {}
        self._peer_views: dict[int, int] = {}
        self._proposed_view = -1
        self._ready_view = -1
        self._executing = False
        self._sync_asked = -1
        self._sync_at = now
        self._now = now
        self._deferred: list[tuple[int, Vote | CommitVote]] = []
        if self.s.lock is not None and self.s.lock.height <= head.height:
            self._set(lock=None)

    # -- public interface --------------------------------------------------------------------------------------
    def statistics(self) -> CoreStatistics:
        return self._stats  # frozen: a snapshot as it is

    def evidence(self) -> tuple[Equivocation, ...]:
        """The equivocations this member has seen (the latest :data:`MAX_EVIDENCE`), oldest first."""
        return tuple(self._evidence)

    def _bump(self, **deltas: int) -> None:
        s = self._stats
        self._stats = dataclasses.replace(s, **{k: getattr(s, k) + v for k, v in deltas.items()})

    @property
    def view(self) -> int:
        return self.s.view

    def leader(self, view: int) -> int:
        return view % self.n

    def deadline(self) -> float:
        backoff: float = self.config.view_timeout_s * 2.0 ** min(self._in_row, 16)
        return self._view_started + min(self.config.view_timeout_max_s, backoff)

    def start(self, now: float) -> list[Output]:
        self._now = now
        self._view_started = now
        self._maybe_ready()
        return self._flush()

    def on_message(self, sender: int, wire: Any, now: float) -> list[Output]:
        """Handle a message from member ``sender``. Raises :class:`MessageInvalid` (nothing changed by it)."""
        self._now = now
        if not 0 <= sender < self.n or sender == self.me:
            raise MessageInvalid(f"message from a non-member ({sender})")
        epoch, msg = decode_message(wire, self.n)
        if epoch != self.epoch:
            return []
        if isinstance(msg, Vote | CommitVote) and msg.height == self.head.height + 2:
            # the next height's votes while we still execute this one: replayed by on_head
            if len(self._deferred) < 4 * self.n:
                self._deferred.append((sender, msg))
            return []
        try:
            if isinstance(msg, Proposal):
                self._on_proposal(sender, msg, now)
            elif isinstance(msg, Vote):
                self._add_vote(sender, msg)
            elif isinstance(msg, CommitVote):
                self._add_commit_vote(sender, msg, now)
            else:
                self._add_timeout(sender, msg, now)
        finally:
            out = self._flush()
        return out

    def on_timer(self, now: float) -> list[Output]:
        self._now = now
        if now >= self.deadline():
            self._timeout(now)
        return self._flush()

    def on_head(self, head: ChainHead, proof: CommitProof | None, now: float) -> list[Output]:
        """The host executed blocks up to ``head`` (``proof``: the head block's commit proof)."""
        self._now = now
        self._executing = False
        if head.height > self.head.height:
            self.head = head
            self._sync_asked = -1
            self._in_row = 0
            self._bodies = {h: b for h, b in self._bodies.items() if b.height > head.height}
            self._certs = {h: p for h, p in self._certs.items() if p.height > head.height}
            self._votes = {k: v for k, v in self._votes.items() if k[1] > head.height}
            self._commit_votes = {k: v for k, v in self._commit_votes.items() if k[1] > head.height}
            if self.s.lock is not None and self.s.lock.height <= head.height:
                self._set(lock=None)
            for p, block_hash in self._proposals.values():
                self._store_body(p.block, block_hash)
            deferred, self._deferred = self._deferred, []
            for sender, msg in deferred:
                try:
                    if isinstance(msg, Vote):
                        self._add_vote(sender, msg)
                    else:
                        self._add_commit_vote(sender, msg, now)
                except MessageInvalid:
                    self._reject(f"deferred message from member {sender} does not verify")
        if proof is not None and proof.epoch == self.epoch and proof.height == head.height:
            self._last_proof = proof
            self._enter(proof.round + 1, proof, now)
        self._after_progress(now)
        return self._flush()

    def propose(self, view: int, txs: Sequence[bytes], timestamp_ms: int, now: float) -> list[Output]:
        """As the leader of ``view``: propose the locked block, or a new one of ``txs`` on the head."""
        self._now = now
        if not self._may_propose(view):
            return []
        lock = self.s.lock
        if lock is not None and lock.height == self.head.height + 1:
            block = self._bodies.get(lock.block_hash)
            if block is None:
                return []  # a member that has it will lead a later view
        else:
            block = Block.build(
                head=self.head,
                proposer=self.members[self.me].node_id,
                timestamp_ms=max(timestamp_ms, self.head.timestamp_ms),
                txs=txs,
                epoch=self.epoch,
            )
        block_hash = block.hash()
        self._proposed_view = view
        if self.s.proposed_view == view and self.s.proposed_block != block_hash:
            return []  # restarted after proposing another block in this view: proposing this one would equivocate
        tc = self._entry if isinstance(self._entry, TC) else None
        parent = self._last_proof if self._last_proof and self._last_proof.height == self.head.height else None
        proposal = Proposal.sign(self._key, self.chain_id, self.epoch, view, block, lock, tc, parent)
        self._set(proposed_view=view, proposed_block=block_hash)
        self._bump(proposals=1)
        self._send(None, proposal.to_wire(self.epoch))
        self._on_proposal(self.me, proposal, now)
        return self._flush()

    # -- internals ----------------------------------------------------------------------------------------------
    def _set(self, **kw: Any) -> None:
        self.s = self.s.with_(**kw)
        self._dirty = True

    def _flush(self) -> list[Output]:
        if self._dirty:
            self._out.append(Persist(self.s))
            self._dirty = False
        out, self._out = self._out, []
        return out

    def _send(self, to: int | None, msg: dict[str, Any]) -> None:
        if self._dirty:
            self._out.append(Persist(self.s))
            self._dirty = False
        self._out.append(Send(to, msg))

    def _may_propose(self, view: int) -> bool:
        return (
            view == self.s.view
            and self.leader(view) == self.me
            and self._proposed_view < view
            and not self._executing
            and (view == 0 or self._entry is not None)
            and (self.s.proposed_view < view or self._may_resend(view))
        )

    def _may_resend(self, view: int) -> bool:
        """After a restart in a view we proposed in: only that block again, and only if we hold it as our lock."""
        lock = self.s.lock
        return (
            self.s.proposed_view == view
            and lock is not None
            and lock.block_hash == self.s.proposed_block
            and lock.height == self.head.height + 1
            and lock.block_hash in self._bodies
        )

    def _maybe_ready(self) -> None:
        if self._may_propose(self.s.view) and self._ready_view < self.s.view:
            self._ready_view = self.s.view
            self._out.append(ProposeReady(self.s.view))

    def _enter(self, view: int, entry: TC | CommitProof | None, now: float) -> None:
        if view > self.s.view:
            self._set(view=view)
            self._view_started = now
            self._entry = entry
            self._bump(view_changes=1)
            self._proposals = {v: p for v, p in self._proposals.items() if v >= view}
            self._timeouts = {v: t for v, t in self._timeouts.items() if v >= view}
            if len(self._signed) > 8 * VIEW_WINDOW * self.n:
                self._signed = {k: v for k, v in self._signed.items() if k[1] >= view - VIEW_WINDOW}
                self._reported = {k for k in self._reported if k[1] >= view - VIEW_WINDOW}
        elif view == self.s.view and self._entry is None and entry is not None:
            self._entry = entry
        else:
            return
        self._maybe_ready()
        self._try_vote()

    def _after_progress(self, now: float) -> None:
        nxt = self.head.height + 1
        for h, proof in list(self._certs.items()):
            if proof.height == nxt and h in self._bodies and not self._executing:
                self._commit(self._bodies[h], proof)
        self._maybe_ready()
        self._try_vote()

    def _commit(self, block: Block, proof: CommitProof) -> None:
        self._executing = True
        self._out.append(Commit(block, proof))

    def _sync(self, peer: int) -> None:
        if peer == self.me:
            peer = (peer + 1) % self.n
        if peer == self.me or self._executing:
            return
        # one request per height at a time; again after a timer period (a reply may be lost, or the peer lagged too)
        if self._sync_asked != self.head.height or self._now - self._sync_at >= self.config.view_timeout_s:
            self._sync_asked, self._sync_at = self.head.height, self._now
            self._bump(syncs=1)
            self._out.append(SyncNeeded(peer, self.head.height + 1))

    def _reject(self, why: str) -> None:
        self._bump(rejected=1)
        self._stats = dataclasses.replace(self._stats, last_reject=why)

    def _on_proposal(self, sender: int, p: Proposal, now: float) -> None:
        if sender != self.leader(p.view):
            raise MessageInvalid(f"member {sender} does not lead view {p.view}")
        if p.view > self.s.view + VIEW_WINDOW:
            return
        block_hash = p.block.hash()
        if not p.valid(self.chain_id, self.epoch, self.keys[sender], block_hash):
            raise MessageInvalid(f"bad proposal signature from member {sender}")
        if not self._first(Kind.PROPOSAL, p.view, sender, p.block.height, block_hash, p.sig):
            return
        if p.qc is not None:
            p.qc.verify(self.chain_id, self.epoch, self.keys)
        if p.tc is not None:
            if p.tc.view + 1 != p.view:
                raise MessageInvalid("a proposal's TC must be of the previous view")
            p.tc.verify(self.chain_id, self.epoch, self.keys)
        if p.parent_proof is not None:
            pp = p.parent_proof
            if (pp.block_hash, pp.height) != (p.block.parent, p.block.height - 1):
                raise MessageInvalid("a proposal's parent proof must be of its parent")
            verify_commit_proof(pp, self.chain_id, self.epoch, self.keys)
        self._store_body(p.block, block_hash)
        if p.view >= self.s.view:
            self._proposals[p.view] = (p, block_hash)
        if p.qc is not None:
            self._learn_qc(p.qc, sender, now)
        if p.tc is not None:
            self._learn_tc(p.tc, sender, now)
        if p.parent_proof is not None:
            self._learn_cert(p.parent_proof, sender, now)
        self._try_vote()

    def _store_body(self, block: Block, block_hash: bytes) -> None:
        if block.height == self.head.height + 1 and len(self._bodies) < MAX_BODIES:
            self._bodies.setdefault(block_hash, block)
            proof = self._certs.get(block_hash)
            if proof is not None and not self._executing:
                self._commit(block, proof)

    def _try_vote(self) -> None:
        entry = self._proposals.get(self.s.view)
        if entry is None or self._executing or self.s.voted_view >= self.s.view:
            return
        p, block_hash = entry
        block, head = p.block, self.head
        if block.height != head.height + 1:
            return  # not yet: we lag (a sync or a commit is under way) — or a stale proposal, dropped by _enter
        problem = None
        if block.parent != head.block_hash or block.prev_state_root != head.state_root:
            problem = "does not extend the committed head"
        elif block.epoch != self.epoch or block.proposer not in {m.node_id for m in self.members}:
            problem = "wrong epoch or proposer"
        else:
            problem = self._check_block(block)
        lock = self.s.lock
        if problem is None and lock is not None and lock.height == block.height and lock.block_hash != block_hash:
            problem = f"locked on another block (view {lock.view})"
        if problem is not None:
            del self._proposals[self.s.view]
            self._reject(f"view {p.view}: block {block.height} {problem}")
            return
        self._set(voted_view=self.s.view)
        vote = Vote.sign(self._key, self.chain_id, self.epoch, p.view, block.height, block_hash)
        self._bump(votes=1)
        self._send(None, vote.to_wire(self.epoch))
        self._add_vote(self.me, vote)

    def _first(self, kind: Kind, view: int, member: int, height: int, block_hash: bytes, sig: bytes) -> bool:
        """Whether this (verified) statement is the member's first of ``kind`` in ``view``; a different second one is
        recorded as evidence (once per kind, view and member)."""
        key = (kind, view, member)
        seen = self._signed.get(key)
        if seen is None:
            self._signed[key] = (height, block_hash, sig)
            return True
        if (seen[0], seen[1]) != (height, block_hash) and key not in self._reported:
            self._reported.add(key)
            a, b = (self._statement(kind, view, h, bh, sg) for h, bh, sg in (seen, (height, block_hash, sig)))
            evidence = Equivocation.of(self.keys[member], a, b)
            self._evidence.append(evidence)
            self._bump(equivocations=1)
            self._out.append(EvidenceFound(member, evidence))
        return False

    def _statement(self, kind: Kind, view: int, height: int, block_hash: bytes, sig: bytes) -> SignedStatement:
        digest = block_payload_hash(height, block_hash)
        return SignedStatement(Statement(self.chain_id, self.epoch, view, kind, digest), sig)

    def _in_window(self, view: int, height: int) -> bool:
        return height == self.head.height + 1 and self.s.view - VIEW_WINDOW <= view <= self.s.view + VIEW_WINDOW

    def _add_vote(self, sender: int, vote: Vote) -> None:
        if not self._in_window(vote.view, vote.height):
            return
        if not vote.valid(self.chain_id, self.epoch, self.keys[sender]):
            raise MessageInvalid(f"bad vote signature from member {sender}")
        if not self._first(Kind.VOTE, vote.view, sender, vote.height, vote.block_hash, vote.sig):
            return
        c = self._votes.setdefault((vote.view, vote.height, vote.block_hash), _Collect())
        c.sigs[sender] = vote.sig
        if len(c.sigs) >= self.q and not c.done:
            c.done = True
            qc = QC(vote.view, vote.height, vote.block_hash, tuple(sorted(c.sigs.items())))
            self._learn_qc(qc, sender, None)

    def _learn_qc(self, qc: QC, sender: int, now: float | None) -> None:
        if qc.height > self.head.height + 1:
            self._sync(sender)
            return
        if qc.height <= self.head.height:
            return
        lock = self.s.lock
        if lock is None or qc.view > lock.view:
            self._set(lock=qc)
        if self.s.voted_view <= qc.view and self.s.commit_voted_view < qc.view:
            self._set(voted_view=qc.view, commit_voted_view=qc.view)
            cv = CommitVote.sign(self._key, self.chain_id, self.epoch, qc.view, qc.height, qc.block_hash)
            self._send(None, cv.to_wire(self.epoch))
            self._add_commit_vote(self.me, cv, now)

    def _add_commit_vote(self, sender: int, cv: CommitVote, now: float | None) -> None:
        if not self._in_window(cv.view, cv.height):
            return
        if not cv.valid(self.chain_id, self.epoch, self.keys[sender]):
            raise MessageInvalid(f"bad commit vote signature from member {sender}")
        if not self._first(Kind.COMMIT_VOTE, cv.view, sender, cv.height, cv.block_hash, cv.sig):
            return
        c = self._commit_votes.setdefault((cv.view, cv.height, cv.block_hash), _Collect())
        c.sigs[sender] = cv.sig
        if len(c.sigs) >= self.q and not c.done:
            c.done = True
            proof = CommitProof(cv.block_hash, cv.height, self.epoch, cv.view, "quorum", tuple(sorted(c.sigs.items())))
            self._learn_cert(proof, sender, now)

    def _learn_cert(self, proof: CommitProof, sender: int, now: float | None) -> None:
        if proof.height > self.head.height + 1:
            self._sync(sender)
            return
        if proof.height <= self.head.height:
            if proof.height == self.head.height and proof.block_hash == self.head.block_hash and now is not None:
                self._last_proof = self._last_proof or proof
                self._enter(proof.round + 1, proof, now)
            return
        self._certs[proof.block_hash] = proof
        block = self._bodies.get(proof.block_hash)
        if block is not None and not self._executing:
            self._commit(block, proof)

    def _learn_tc(self, tc: TC, sender: int, now: float) -> None:
        if tc.high_qc is not None:
            self._learn_qc(tc.high_qc, sender, now)
        self._enter(tc.view + 1, tc, now)

    def _timeout(self, now: float) -> None:
        view = self.s.view
        self._in_row += 1
        self._view_started = now
        self._bump(timeouts=1)
        if self.s.voted_view < view:
            self._set(voted_view=view)
        # No progress in this view: ask a member (in turn) for blocks after our head. A lost sync, or peers whose
        # messages do not reach us (a stale connection to our previous incarnation), must not keep us behind.
        self._sync_asked = -1
        waiting = [p for p in self._certs.values() if p.height == self.head.height + 1]
        if waiting:
            self._sync(next(i for i, _ in waiting[0].signatures if i != self.me))
        else:
            self._sync((self.me + self._in_row) % self.n)
        t = Timeout.sign(self._key, self.chain_id, self.epoch, view, self.head.height + 1, self.s.lock)
        self._send(None, t.to_wire(self.epoch))
        self._add_timeout(self.me, t, now)

    def _add_timeout(self, sender: int, t: Timeout, now: float) -> None:
        if t.view > self.s.view + VIEW_WINDOW:
            return
        if not t.valid(self.chain_id, self.epoch, self.keys[sender]):
            raise MessageInvalid(f"bad timeout signature from member {sender}")
        if t.qc is not None:
            if sender != self.me:
                t.qc.verify(self.chain_id, self.epoch, self.keys)
            self._learn_qc(t.qc, sender, now)
        if t.height > self.head.height + 1:
            # A timeout's height is not signed: one member's claim alone must not send us syncing (a Byzantine
            # member could keep every honest one busy catching up from it). f+1 claims include an honest one.
            self._height_claims[sender] = max(self._height_claims.get(sender, 0), t.height)
            ahead = sorted(i for i, h in self._height_claims.items() if h > self.head.height + 1)
            if len(ahead) >= self.f + 1:
                self._sync(ahead[self._stats.syncs % len(ahead)])
        self._peer_views[sender] = max(self._peer_views.get(sender, -1), t.view)
        if t.view >= self.s.view:
            got = self._timeouts.setdefault(t.view, {})
            got.setdefault(sender, t)
            if len(got) >= self.q:
                qcs = [x.qc for x in got.values() if x.qc is not None and x.qc.height == self.head.height + 1]
                high = max(qcs, key=lambda q: q.view, default=None)
                tc = TC(t.view, tuple(sorted((i, x.sig) for i, x in got.items())), high)
                self._enter(t.view + 1, tc, now)
                return
        ahead = sorted((v for i, v in self._peer_views.items() if i != self.me), reverse=True)
        if len(ahead) > self.f and ahead[self.f] > self.s.view:
            # f+1 members (one of them honest) are beyond our view: join the highest view they all passed.
            self._enter(ahead[self.f], None, now)
            self._timeout(now)
