"""A member's persisted safety state: what it must remember across restarts so it never signs two conflicting
statements (lightning/statement.py: proposals, prepare votes and commit votes are slashable).

The core emits :class:`~lightning.consensus.core.Persist` *before* any message that depends on it; the adapter writes
it durably (write to a temporary file, fsync, rename, fsync the directory) and only then sends. A member that
restarts loads it and so never prepare-votes twice in one view, never commit-votes below a view it voted in, never
proposes a different block in a view it proposed in, and keeps its lock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from lightning.codec import CodecError, decode, encode
from lightning.consensus.messages import QC, ConsensusError, MessageInvalid

__all__ = ["FileSafetyStore", "MemorySafetyStore", "SafetyState", "SafetyStore", "SafetyStoreCorrupt"]


class SafetyStoreCorrupt(ConsensusError):
    """The persisted safety state cannot be read: refusing to vote is safer than guessing."""


@dataclass(frozen=True)
class SafetyState:
    epoch: int
    view: int  # the view this member is in
    voted_view: int  # highest view it prepare-voted in (or timed out of); -1: none
    commit_voted_view: int  # highest view it commit-voted in; -1: none
    lock: QC | None  # the highest QC it has seen for the height it works on
    proposed_view: int = -1  # highest view it proposed in as leader; -1: none
    proposed_block: bytes = b""  # the hash of the block it proposed then

    def with_(self, **kw: Any) -> SafetyState:
        return replace(self, **kw)

    def to_wire(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "view": self.view,
            "voted_view": self.voted_view + 1,
            "commit_voted_view": self.commit_voted_view + 1,
            "lock": None if self.lock is None else self.lock.to_wire(),
            "proposed_view": self.proposed_view + 1,
            "proposed_block": self.proposed_block,
        }

    @classmethod
    def from_wire(cls, v: Any) -> SafetyState:
        lock = None if v["lock"] is None else QC.from_wire(v["lock"], 1024)
        if "proposed_view" in v:
            proposed_view, proposed_block = v["proposed_view"] - 1, v["proposed_block"]
        else:  # written before leaders signed proposals: assume it proposed in its view (costs at most that view)
            proposed_view, proposed_block = v["view"], b""
        if not isinstance(proposed_block, bytes) or len(proposed_block) not in (0, 32):
            raise TypeError("proposed_block: expected a 32-byte block hash")
        return cls(
            v["epoch"], v["view"], v["voted_view"] - 1, v["commit_voted_view"] - 1, lock, proposed_view, proposed_block
        )

    @classmethod
    def initial(cls, epoch: int) -> SafetyState:
        return cls(epoch, 0, -1, -1, None)


class SafetyStore(Protocol):
    def load(self) -> SafetyState | None: ...

    def save(self, state: SafetyState) -> None: ...


class MemorySafetyStore:
    """For simulations: survives a simulated crash because the simulator keeps it, not the core."""

    def __init__(self) -> None:
        self.state: SafetyState | None = None
        self.saves = 0

    def load(self) -> SafetyState | None:
        return self.state

    def save(self, state: SafetyState) -> None:
        self.state = state
        self.saves += 1


class FileSafetyStore:
    """One small file, replaced atomically and durably on every save (``durable=False`` skips the fsyncs: for a
    simulation, whose crashes are process crashes, not power cuts)."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable

    def load(self) -> SafetyState | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return SafetyState.from_wire(decode(raw))
        except (CodecError, MessageInvalid, KeyError, TypeError) as exc:
            raise SafetyStoreCorrupt(
                f"{self.path}: unreadable consensus safety state ({exc}); move it away only "
                "if this member never voted in the current epoch"
            ) from None

    def save(self, state: SafetyState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(encode(state.to_wire()))
            f.flush()
            if self.durable:
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        if not self.durable:
            return
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
