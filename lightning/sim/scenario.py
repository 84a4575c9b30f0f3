"""A scenario: the seeded schedule of faults (nemeses) and client inputs one simulated run goes through.

The same seed gives the same schedule — which node crashes when and for how long, which nodes a partition cuts off,
which links turn slow or lossy, whose wall clock is skewed, and when clients fetch and send transactions. trio's
scheduler is not deterministic, so a seed reproduces this schedule, not every interleaving (docs/simulation.md).

Faults start after a warm-up and all heal by ``heal_by`` (a fraction of the run), leaving time to check that commits
resume. At most ``f = (committee - 1) // 3`` committee members are down or cut off at once, so the committee keeps a
quorum. ``corrupt`` is not a timed fault: one node (never node 0, which holds the run's content) serves peers
corrupted content for the whole run (``byzantine.py``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FAULT_KINDS", "Fault", "Scenario", "plan"]

FAULT_KINDS = ("crash", "partition", "slow", "lossy", "skew", "corrupt")


@dataclass(frozen=True)
class Fault:
    kind: str  # one of FAULT_KINDS
    start_s: float
    end_s: float
    nodes: tuple[int, ...]  # indexes into the cluster's nodes
    amount: float = 0.0  # slow: added latency (s); lossy: loss rate; skew: wall-clock offset (ms)

    def describe(self) -> str:
        who = ",".join(str(n) for n in self.nodes)
        extra = {
            "slow": f" +{self.amount * 1000:.0f} ms",
            "lossy": f" {self.amount:.0%} loss",
            "skew": f" {self.amount:+.0f} ms",
        }
        return f"{self.kind}[{who}]{extra.get(self.kind, '')} {self.start_s:.1f}-{self.end_s:.1f} s"


@dataclass(frozen=True)
class Scenario:
    seed: int
    nodes: int
    committee: int
    seconds: float
    faults: tuple[Fault, ...]
    fetches: tuple[tuple[float, int], ...]  # (time, node index): a client fetches the run's content from that node
    transactions: tuple[tuple[float, int], ...]  # (time, node index): a client sends a transfer through that node
    byzantine: tuple[tuple[int, str], ...] = ()  # (node index, behaviour in lightning/sim/byzantine.py), whole run

    @property
    def last_heal_s(self) -> float:
        return max((f.end_s for f in self.faults), default=0.0)


def plan(
    seed: int,
    *,
    nodes: int,
    committee: int,
    seconds: float,
    kinds: Iterable[str] = FAULT_KINDS,
    warmup_s: float = 5.0,
    heal_by: float = 0.6,
    fetch_every_s: float = 2.0,
    tx_every_s: float = 1.0,
) -> Scenario:
    """The schedule for ``seed``. Raises ValueError for an unknown fault kind."""
    kinds = tuple(kinds)
    for k in kinds:
        if k not in FAULT_KINDS:
            raise ValueError(f"unknown fault {k!r} (known: {', '.join(FAULT_KINDS)})")
    rng = random.Random(seed)
    f = (committee - 1) // 3
    byzantine: tuple[tuple[int, str], ...] = ()
    if "corrupt" in kinds and nodes > 2:  # one node (never node 0, which holds the run's content) lies about content
        byzantine = ((rng.randrange(1, nodes), "corrupt"),)
    kinds = tuple(k for k in kinds if k != "corrupt")
    faults: list[Fault] = []
    end_by = max(warmup_s + 1.0, seconds * heal_by)
    t = warmup_s
    while kinds and t < end_by - 1.0:
        kind = rng.choice(kinds)
        length = rng.uniform(1.0, min(10.0, end_by - t))
        end = min(t + length, end_by)
        if kind in ("crash", "partition"):
            # committee members are indexes 0..committee-1: at most f of them, and any edge nodes
            members = rng.sample(range(committee), k=min(f, committee)) if f else []
            edges = rng.sample(range(committee, nodes), k=min(nodes - committee, rng.randint(0, 2)))
            who = tuple(sorted(members + edges))
            if who:
                faults.append(Fault(kind, t, end, who))
        elif kind == "slow":
            a, b = rng.sample(range(nodes), 2)
            faults.append(Fault(kind, t, end, (a, b), amount=rng.choice((0.05, 0.2, 0.5))))
        elif kind == "lossy":
            a, b = rng.sample(range(nodes), 2)
            faults.append(Fault(kind, t, end, (a, b), amount=rng.choice((0.05, 0.2, 0.5))))
        else:  # skew
            faults.append(
                Fault(kind, t, end, (rng.randrange(nodes),), amount=rng.choice((-1500.0, -300.0, 300.0, 1500.0)))
            )
        t = end + rng.uniform(0.5, 5.0)
    fetches = tuple((s, rng.randrange(nodes)) for s in _times(rng, warmup_s, seconds, fetch_every_s))
    txs = tuple((s, rng.randrange(nodes)) for s in _times(rng, warmup_s, seconds, tx_every_s))
    return Scenario(seed, nodes, committee, seconds, tuple(faults), fetches, txs, byzantine)


def _times(rng: random.Random, start: float, end: float, every: float) -> list[float]:
    out: list[float] = []
    t = start
    while True:
        t += rng.expovariate(1.0 / every)
        if t >= end:
            return out
        out.append(round(t, 3))
