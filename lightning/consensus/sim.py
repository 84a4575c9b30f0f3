"""Deterministic discrete-event simulation of a committee of sans-IO consensus cores (docs/consensus.md).

One heap of ``(time, seq, event)``, one seeded ``random.Random``, no threads, nothing iterated in hash order: a seed
replays exactly. Each member runs a :class:`~lightning.consensus.core.Core` over an in-memory chain (the state root
of a block is a hash of the previous root and the block). The network delays every message independently (so links
reorder), drops what crosses a partition or reaches a crashed member, and the schedule injects faults until
``fault_s``; then every partition heals and every crashed member restarts from its persisted safety state and chain,
and the run continues until ``end_s``.

Faults: ``crash`` (honest members crash and restart), ``bounce`` (the current leader, if honest, crashes and
restarts at once, usually in the view it proposed in), ``partition`` (random splits, then heals), ``delay`` (slow,
jittery links), ``equivocate`` (a Byzantine leader signs different blocks for different members in one view, and
sends both to some), ``byzvote`` (a Byzantine member prepare- and commit-votes for every block it sees). At most f
members are Byzantine.

Checked after every run: no two different blocks committed at one height on honest members; equal state roots at
every height; every honest member at least two blocks beyond the highest height at the heal (progress resumes).
Checked as it runs: every statement an honest member signs (each message it sends, its signature verified against
the statement) never conflicts with one it signed before, across view changes and restarts; and every equivocation
a core reports verifies and names a Byzantine member.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import blake3

from lightning.codec import decode, encode
from lightning.consensus.core import (
    Commit,
    Core,
    CoreConfig,
    EvidenceFound,
    Member,
    Output,
    Persist,
    ProposeReady,
    Send,
    SyncNeeded,
)
from lightning.consensus.messages import (
    CommitVote,
    MessageInvalid,
    Proposal,
    Vote,
    decode_message,
    verify_commit_proof,
    verify_signature,
)
from lightning.consensus.safety import MemorySafetyStore
from lightning.crypto import Domain, SigningKey
from lightning.ids import NodeId
from lightning.state.block import Block, ChainHead, CommitProof
from lightning.statement import Equivocation, EvidenceInvalid, Kind, Statement, block_payload_hash, payload_hash

__all__ = ["ALL_FAULTS", "SIM_CHAIN_ID", "SimConfig", "SimResult", "run_simulation"]

ALL_FAULTS = ("crash", "bounce", "partition", "delay", "equivocate", "byzvote")
GENESIS_TS_MS = 1_700_000_000_000
SIM_CHAIN_ID = 77
_WIRE_KINDS = {"proposal": Kind.PROPOSAL, "vote": Kind.VOTE, "commit": Kind.COMMIT_VOTE, "timeout": Kind.TIMEOUT}


@dataclass(frozen=True)
class SimConfig:
    committee: int = 4
    seed: int = 0
    faults: tuple[str, ...] = ALL_FAULTS
    fault_s: float = 6.0  # faults happen before this
    end_s: float = 16.0
    block_interval_s: float = 0.1  # a leader waits this long before proposing
    latency_s: tuple[float, float] = (0.002, 0.03)
    timeout_s: float = 0.5
    timeout_max_s: float = 3.0
    txs_per_block: int = 4


@dataclass
class SimResult:
    seed: int
    committee: int
    heights: dict[int, int]  # honest member -> committed height
    violations: list[str]
    trace: list[str]
    byzantine: dict[int, str]
    events: int
    height_at_heal: int
    stats: dict[str, int] = field(default_factory=dict)
    statements: int = 0  # statements honest members signed (and sent), all checked pairwise for conflicts
    evidence: int = 0  # equivocations honest cores reported (each verified, each naming a Byzantine member)

    @property
    def ok(self) -> bool:
        return not self.violations


class _Chain:
    def __init__(self, genesis: bytes) -> None:
        self.blocks: list[tuple[Block, CommitProof]] = []
        self.head = ChainHead(0, genesis, blake3.blake3(b"genesis-state").digest(), GENESIS_TS_MS, 0)
        self.roots = [self.head.state_root]

    def apply(self, block: Block, proof: CommitProof) -> None:
        assert block.height == self.head.height + 1 and block.parent == self.head.block_hash
        root = blake3.blake3(self.head.state_root + block.hash()).digest()
        self.blocks.append((block, proof))
        self.roots.append(root)
        self.head = ChainHead(block.height, proof.block_hash, root, block.timestamp_ms, 0)


class _Sim:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        n = cfg.committee
        self.n, self.f = n, (n - 1) // 3
        self.keys = [SigningKey(blake3.blake3(b"sim-key-%d" % i).digest()) for i in range(n)]
        self.members = [
            Member(NodeId(blake3.blake3(b"sim-node-%d" % i).digest()), k.public.raw) for i, k in enumerate(self.keys)
        ]
        genesis = blake3.blake3(b"sim-genesis").digest()
        self.chains = [_Chain(genesis) for _ in range(n)]
        self.stores = [MemorySafetyStore() for _ in range(n)]
        self.cores: list[Core | None] = [None] * n
        self.heap: list[tuple[float, int, str, tuple[Any, ...]]] = []
        self.seq = 0
        self.now = 0.0
        self.trace: deque[str] = deque(maxlen=400)
        self.violations: list[str] = []
        self.committed: dict[int, tuple[bytes, bytes]] = {}
        self.groups: list[int] = [0] * n  # partition group per member
        self.slow: set[tuple[int, int]] = set()
        self.timer_at: list[float | None] = [None] * n
        self.executing: list[bool] = [False] * n
        self.incarnation = [0] * n
        self.tx_counter = 0
        self.events = 0
        self.byz: dict[int, str] = {}
        byz_kinds = [k for k in ("equivocate", "byzvote") if k in cfg.faults]
        self.rng.shuffle(byz_kinds)
        candidates = list(range(n))
        self.rng.shuffle(candidates)
        for kind in byz_kinds[: self.f]:
            self.byz[candidates.pop()] = kind
        self.honest = [i for i in range(n) if i not in self.byz]
        # what each honest member signed: (kind, view) -> statement (the first; a different second is a violation)
        self.signed: list[dict[tuple[Kind, int], Statement]] = [{} for _ in range(n)]
        self.statements = 0
        self.evidence: set[tuple[int, Kind, int]] = set()  # (member, kind, view) reported by any honest core
        self.verified: set[Equivocation] = set()

    # -- plumbing -----------------------------------------------------------------------------------------------
    def at(self, t: float, kind: str, *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, args))

    def log(self, text: str) -> None:
        self.trace.append(f"{self.now:9.4f} {text}")

    def up(self, i: int) -> bool:
        return self.cores[i] is not None

    def start(self, i: int) -> None:
        chain = self.chains[i]
        core = Core(
            chain_id=SIM_CHAIN_ID,
            epoch=0,
            members=self.members,
            me=i,
            key=self.keys[i],
            head=chain.head,
            saved=self.stores[i].load(),
            check_block=lambda b: None if len(b.txs) <= 64 else "too many transactions",
            now=self.now,
            config=CoreConfig(view_timeout_s=self.cfg.timeout_s, view_timeout_max_s=self.cfg.timeout_max_s),
        )
        self.cores[i] = core
        self.incarnation[i] += 1
        self.executing[i] = False
        self.timer_at[i] = None
        self.log(f"n{i} start view {core.view} height {chain.head.height}")
        self.handle(i, core.start(self.now))
        if self.incarnation[i] > 1 and chain.blocks:
            # a restarted member learns its head's commit proof again (a late commit vote or a parent proof does
            # the same): a leader whose view that proof entered may lead it again — and must not equivocate
            self.handle(i, core.on_head(chain.head, chain.blocks[-1][1], self.now))

    def crash(self, i: int) -> None:
        if self.cores[i] is not None:
            self.log(f"n{i} CRASH")
            self.cores[i] = None

    def handle(self, i: int, outs: list[Output]) -> None:
        core = self.cores[i]
        if core is None:
            return
        for o in outs:
            if isinstance(o, Persist):
                self.stores[i].save(o.state)
            elif isinstance(o, Send):
                self.send(i, o.to, o.msg)
            elif isinstance(o, Commit):
                self.executing[i] = True
                self.at(self.now + 0.001, "exec", i, self.incarnation[i], o.block, o.proof)
            elif isinstance(o, ProposeReady):
                self.at(self.now + self.cfg.block_interval_s, "propose", i, self.incarnation[i], o.view)
            elif isinstance(o, SyncNeeded):
                self.log(f"n{i} sync from n{o.peer} at {o.height}")
                self.deliver_later(i, o.peer, ("sync_req", o.height))
            elif isinstance(o, EvidenceFound):
                self.on_evidence(i, o)
        deadline = core.deadline()
        at = self.timer_at[i]
        if at is None or deadline < at or at < self.now:
            self.timer_at[i] = deadline
            self.at(deadline, "timer", i, self.incarnation[i])

    def send(self, src: int, to: int | None, msg: dict[str, Any]) -> None:
        # what a peer gets: canonical msgpack (lists, not tuples); votes and timeouts are flat, proposals are not
        wire = decode(encode(msg)) if msg["t"] == "proposal" else msg
        if src not in self.byz:
            self.check_signed(src, wire)
        targets = [j for j in range(self.n) if j != src] if to is None else [to]
        if self.byz.get(src) == "equivocate" and msg["t"] == "proposal" and to is None:
            other = self.equivocation(src, wire)
            self.log(f"n{src} EQUIVOCATES in view {msg['view']}")
            for j in targets:
                self.deliver_later(src, j, ("msg", other if j % 2 else wire))
                if j % 3 == 0:  # and shows some members both: they keep evidence
                    self.deliver_later(src, j, ("msg", wire if j % 2 else other))
            return
        for j in targets:
            self.deliver_later(src, j, ("msg", wire))

    def equivocation(self, src: int, wire: dict[str, Any]) -> dict[str, Any]:
        block = Block.from_wire(wire["block"])
        self.tx_counter += 1
        alt = Block.build(
            head=ChainHead(block.height - 1, block.parent, block.prev_state_root, 0, 0),
            proposer=block.proposer,
            timestamp_ms=block.timestamp_ms,
            txs=[*block.txs, b"equivocation-%d" % self.tx_counter],
            epoch=block.epoch,
        )
        _, p = decode_message(wire, self.n)
        assert isinstance(p, Proposal)
        signed = Proposal.sign(self.keys[src], SIM_CHAIN_ID, 0, p.view, alt, p.qc, p.tc, p.parent_proof)
        out: dict[str, Any] = decode(encode(signed.to_wire(0)))
        return out

    def check_signed(self, src: int, wire: dict[str, Any]) -> None:
        """Record the statement honest member ``src`` signed in this message; a conflict with an earlier one (in this
        incarnation or before a restart) is a violation."""
        kind = _WIRE_KINDS[wire["t"]]
        if kind is Kind.TIMEOUT:
            digest = payload_hash(b"")
        elif kind is Kind.PROPOSAL:
            block = Block.from_wire(wire["block"])
            digest = block_payload_hash(block.height, block.hash())
        else:
            digest = block_payload_hash(wire["height"], wire["block"])
        statement = Statement(SIM_CHAIN_ID, wire["epoch"], wire["view"], kind, digest)
        if not verify_signature(self.members[src].key, Domain.STATEMENT, statement.encode(), wire["sig"]):
            self.violations.append(f"n{src} sent a {kind.value} whose signature is not over its statement")
            return
        self.statements += 1
        first = self.signed[src].setdefault((kind, statement.seq), statement)
        if first.conflicts_with(statement):
            self.violations.append(f"honest n{src} signed two {kind.value} statements in view {statement.seq}")

    def on_evidence(self, i: int, found: EvidenceFound) -> None:
        evidence = found.evidence
        if evidence not in self.verified:  # honest cores report the same evidence many times: check it once
            try:
                evidence.verify(chain_id=SIM_CHAIN_ID)
            except EvidenceInvalid as exc:
                self.violations.append(f"n{i} reported evidence that does not verify: {exc}")
                return
            self.verified.add(evidence)
        if evidence.key != self.members[found.member].key:
            self.violations.append(f"n{i} reported evidence against n{found.member} under another key")
        elif found.member not in self.byz:
            self.violations.append(f"n{i} reported evidence against honest n{found.member}")
        elif i not in self.byz:
            self.log(f"n{i} holds evidence: n{found.member} {evidence.kind.value} view {evidence.first.statement.seq}")
            self.evidence.add((found.member, evidence.kind, evidence.first.statement.seq))

    def delay(self, a: int, b: int) -> float:
        lo, hi = self.cfg.latency_s
        d = self.rng.uniform(lo, hi)
        if (min(a, b), max(a, b)) in self.slow:
            d += self.rng.uniform(0.05, 0.6)
        return d

    def deliver_later(self, src: int, dst: int, payload: tuple[Any, ...]) -> None:
        self.at(self.now + self.delay(src, dst), "deliver", src, dst, payload)

    # -- events -------------------------------------------------------------------------------------------------
    def on_deliver(self, src: int, dst: int, payload: tuple[Any, ...]) -> None:
        core = self.cores[dst]
        if core is None or self.groups[src] != self.groups[dst]:
            return
        kind = payload[0]
        if kind == "sync_req":
            chain = self.chains[dst]
            start = payload[1]
            blocks = chain.blocks[start - 1 : start - 1 + 32]
            if blocks:
                self.deliver_later(dst, src, ("sync_resp", [(b.to_wire(), p.to_wire()) for b, p in blocks]))
            return
        if kind == "sync_resp":
            self.on_sync(dst, payload[1])
            return
        wire = payload[1]
        if self.byz.get(dst) == "byzvote" and wire.get("t") == "proposal":
            self.vote_for_anything(dst, wire)
        try:
            self.handle(dst, core.on_message(src, wire, self.now))
        except MessageInvalid as exc:
            self.log(f"n{dst} refused a message from n{src}: {exc}")

    def vote_for_anything(self, i: int, wire: dict[str, Any]) -> None:
        _, p = decode_message(wire, self.n)
        assert isinstance(p, Proposal)
        h = p.block.hash()
        for view in (p.view, p.view + 1):
            v = Vote.sign(self.keys[i], SIM_CHAIN_ID, 0, view, p.block.height, h)
            c = CommitVote.sign(self.keys[i], SIM_CHAIN_ID, 0, view, p.block.height, h)
            self.send(i, None, v.to_wire(0))
            self.send(i, None, c.to_wire(0))

    def on_sync(self, i: int, records: list[Any]) -> None:
        core, chain = self.cores[i], self.chains[i]
        assert core is not None
        last: CommitProof | None = None
        for bw, pw in records:
            block, proof = Block.from_wire(bw), CommitProof.from_wire(pw)
            if block.height != chain.head.height + 1 or self.executing[i]:
                continue
            try:
                verify_commit_proof(proof, SIM_CHAIN_ID, 0, [m.key for m in self.members])
            except MessageInvalid:
                self.violations.append(f"n{i} got a sync block with a bad proof at {block.height}")
                return
            if proof.block_hash != block.hash() or block.parent != chain.head.block_hash:
                return
            self.apply(i, block, proof)
            last = proof
        if last is not None:
            self.handle(i, core.on_head(chain.head, last, self.now))

    def apply(self, i: int, block: Block, proof: CommitProof) -> None:
        chain = self.chains[i]
        chain.apply(block, proof)
        self.log(f"n{i} commit {block.height} {proof.block_hash.hex()[:8]} round {proof.round}")
        if i in self.byz:
            return
        seen = self.committed.setdefault(block.height, (proof.block_hash, chain.head.state_root))
        if seen[0] != proof.block_hash:
            self.violations.append(f"two blocks committed at height {block.height} (n{i})")
        elif seen[1] != chain.head.state_root:
            self.violations.append(f"state roots differ at height {block.height} (n{i})")

    def on_exec(self, i: int, block: Block, proof: CommitProof) -> None:
        core, chain = self.cores[i], self.chains[i]
        assert core is not None
        self.executing[i] = False
        if block.height == chain.head.height + 1:
            if block.parent != chain.head.block_hash:
                self.violations.append(f"n{i} committed block {block.height} that does not extend its head")
                return
            self.apply(i, block, proof)
            self.handle(i, core.on_head(chain.head, proof, self.now))
        else:
            self.handle(i, core.on_head(chain.head, None, self.now))

    def on_propose(self, i: int, view: int) -> None:
        core = self.cores[i]
        assert core is not None
        txs = []
        for _ in range(self.cfg.txs_per_block):
            self.tx_counter += 1
            txs.append(b"tx-%d" % self.tx_counter)
        ts = GENESIS_TS_MS + int(self.now * 1000)
        self.handle(i, core.propose(view, txs, ts, self.now))

    def on_fault(self, action: str, args: tuple[Any, ...]) -> None:
        self.log(f"FAULT {action} {args}")
        if action == "crash":
            self.crash(args[0])
            self.at(self.now + args[1], "fault", "restart", (args[0],))
        elif action == "bounce":
            # the leader of the highest view, if honest, crashes and is back before that view times out: it
            # restarts in the view it may have proposed and voted in
            view = max((c.view for c in self.cores if c is not None), default=0)
            leader = view % self.n
            if leader not in self.byz and self.cores[leader] is not None:
                self.crash(leader)
                self.at(self.now + args[0], "fault", "restart", (leader,))
        elif action == "restart":
            if self.cores[args[0]] is None and self.now < self.cfg.fault_s:
                self.start(args[0])
        elif action == "partition":
            self.groups = list(args[0])
        elif action == "slow":
            self.slow.add(args[0])
        elif action == "heal":
            self.groups = [0] * self.n
            self.slow.clear()
            for i in range(self.n):
                if self.cores[i] is None:
                    self.start(i)

    def schedule_faults(self) -> None:
        cfg, rng = self.cfg, self.rng
        t = 0.5
        while t < cfg.fault_s:
            choices = [k for k in ("crash", "bounce", "partition", "delay") if k in cfg.faults]
            if not choices:
                break
            kind = rng.choice(choices)
            if kind == "crash":
                victim = rng.choice(self.honest)
                self.at(t, "fault", "crash", (victim, rng.uniform(0.2, 3.0)))
            elif kind == "bounce":
                self.at(t, "fault", "bounce", (rng.uniform(0.0, 0.05),))
            elif kind == "partition":
                groups = [rng.randrange(2) for _ in range(self.n)]
                self.at(t, "fault", "partition", (tuple(groups),))
                self.at(t + rng.uniform(0.3, 2.5), "fault", "partition", (tuple([0] * self.n),))
            else:
                a, b = sorted(rng.sample(range(self.n), 2))
                self.at(t, "fault", "slow", ((a, b),))
            t += rng.uniform(0.3, 2.0)
        self.at(cfg.fault_s, "fault", "heal", ())

    def run(self) -> SimResult:
        for i in range(self.n):
            self.start(i)
        self.schedule_faults()
        height_at_heal = 0
        healed = False
        while self.heap:
            t, _, kind, args = heapq.heappop(self.heap)
            if t > self.cfg.end_s:
                break
            if not healed and t >= self.cfg.fault_s:
                healed = True
                height_at_heal = max(self.chains[i].head.height for i in self.honest)
            self.now = t
            self.events += 1
            if kind == "deliver":
                self.on_deliver(*args)
            elif kind == "fault":
                self.on_fault(*args)
            else:
                i, inc = args[0], args[1]
                core = self.cores[i]
                if core is None or inc != self.incarnation[i]:
                    continue
                if kind == "timer":
                    self.timer_at[i] = None
                    self.handle(i, core.on_timer(t))
                elif kind == "exec":
                    self.on_exec(i, args[2], args[3])
                elif kind == "propose":
                    self.on_propose(i, args[2])
            if self.violations:
                break
        heights = {i: self.chains[i].head.height for i in self.honest}
        if not self.violations:
            for i in self.honest:
                if heights[i] < height_at_heal + 2:
                    self.violations.append(
                        f"no progress after the heal: n{i} at height {heights[i]}, {height_at_heal} at the heal"
                    )
        stats: dict[str, int] = {"timeouts": 0, "view_changes": 0, "rejected": 0}
        for c in self.cores:
            if c is not None:
                stats["timeouts"] += c.statistics().timeouts
                stats["view_changes"] += c.statistics().view_changes
                stats["rejected"] += c.statistics().rejected
        return SimResult(
            self.cfg.seed,
            self.n,
            heights,
            self.violations,
            list(self.trace),
            self.byz,
            self.events,
            height_at_heal,
            stats,
            self.statements,
            len(self.evidence),
        )


def run_simulation(cfg: SimConfig, *, on_event: Callable[[str], None] | None = None) -> SimResult:
    """Run one seeded simulation; the same config always gives the same result and trace."""
    return _Sim(cfg).run()
