"""BFT consensus among the epoch's committee: a sans-IO two-round HotStuff-family core (``core.py``), its messages and
certificates (``messages.py``), persisted safety state (``safety.py``), a deterministic simulator (``sim.py``) and
the trio adapter over the pool's consensus scope (``service.py``). See docs/consensus.md."""

from lightning.consensus.core import Commit, Core, CoreConfig, Member, Persist, ProposeReady, Send, SyncNeeded
from lightning.consensus.messages import QC, TC, ConsensusError, MessageInvalid
from lightning.consensus.safety import FileSafetyStore, MemorySafetyStore, SafetyState

__all__ = [
    "QC",
    "TC",
    "Commit",
    "ConsensusError",
    "Core",
    "CoreConfig",
    "FileSafetyStore",
    "Member",
    "MemorySafetyStore",
    "MessageInvalid",
    "Persist",
    "ProposeReady",
    "SafetyState",
    "Send",
    "SyncNeeded",
]
