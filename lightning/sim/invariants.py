"""Invariants of a whole network, checked continuously while a simulation runs (sans-IO: events in, violations out).

The simulation reports every commit (node, height, block hash, state root), every restart (node, the height it had
committed before it went down, the height it came back with), every response a client verified or refused, and the
times faults start and heal. :class:`Invariants` raises :class:`InvariantViolation` at the first event that breaks
one of these:

=====================  ==========================================================================================
name                   what must hold
=====================  ==========================================================================================
``agreement``          no two nodes commit different blocks at the same height
``state``              every node's state root after height ``h`` is the same
``durability``         a node's committed height never goes back, across restarts included
``verified``           every byte a client received from a node verified against the content's blake3 root
``liveness``           after the last fault heals, commits resume within ``resume_bound_s`` (checked by
                       :meth:`Invariants.check_liveness` at the end of a run, and whenever asked)
=====================  ==========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning.errors import LightningError
from lightning.ids import NodeId

__all__ = ["InvariantViolation", "Invariants"]


class InvariantViolation(LightningError):
    """An invariant broke; ``name`` is its row in the table above."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"invariant {name!r} broken: {message}")
        self.name = name


@dataclass
class Invariants:
    resume_bound_s: float = 30.0
    blocks: dict[int, tuple[bytes, NodeId]] = field(default_factory=dict)  # height -> (block hash, first committer)
    roots: dict[int, tuple[bytes, NodeId]] = field(default_factory=dict)  # height -> (state root, first committer)
    heights: dict[NodeId, int] = field(default_factory=dict)  # node -> highest committed height seen
    last_commit_at: float = 0.0
    healed_at: float | None = None  # when the last fault healed (None: faults still active, or none yet)
    commits: int = 0
    verified_bytes: int = 0

    def on_commit(self, node: NodeId, height: int, block_hash: bytes, state_root: bytes, now: float) -> None:
        seen = self.blocks.setdefault(height, (block_hash, node))
        if seen[0] != block_hash:
            raise InvariantViolation(
                "agreement",
                f"height {height}: {node.short()} committed {block_hash.hex()[:16]}, "
                f"{seen[1].short()} committed {seen[0].hex()[:16]}",
            )
        root = self.roots.setdefault(height, (state_root, node))
        if root[0] != state_root:
            raise InvariantViolation(
                "state",
                f"height {height}: {node.short()} has root {state_root.hex()[:16]}, "
                f"{root[1].short()} has {root[0].hex()[:16]}",
            )
        before = self.heights.get(node, 0)
        if height <= before:
            raise InvariantViolation("durability", f"{node.short()} committed height {height} again (had {before})")
        self.heights[node] = height
        self.commits += 1
        self.last_commit_at = now

    def on_restart(self, node: NodeId, height: int) -> None:
        """``node`` came back from its storage with its head at ``height``."""
        before = self.heights.get(node, 0)
        if height < before:
            raise InvariantViolation(
                "durability", f"{node.short()} restarted at height {height}, had committed {before}"
            )

    def on_served(self, node: NodeId, what: str, verified: bool, length: int, detail: str = "") -> None:
        if not verified:
            raise InvariantViolation("verified", f"{node.short()} served {what} that does not verify: {detail}")
        self.verified_bytes += length

    def on_faults(self, active: bool, now: float) -> None:
        self.healed_at = None if active else now

    def check_liveness(self, now: float) -> None:
        """Commits must have resumed within ``resume_bound_s`` of the last heal (if that long has passed)."""
        if self.healed_at is None or now < self.healed_at + self.resume_bound_s:
            return
        if self.last_commit_at < self.healed_at:
            raise InvariantViolation(
                "liveness",
                f"no commit in the {now - self.healed_at:.1f} s since the faults healed at {self.healed_at:.1f} s "
                f"(bound {self.resume_bound_s:.0f} s)",
            )
