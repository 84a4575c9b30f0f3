"""Config of the consensus service (``[consensus]``). Stdlib only: see :mod:`lightning.config_fields`.

The sans-IO core takes the fields it shares with this config by name (``CoreConfig`` has ``view_timeout_s`` and
``view_timeout_max_s``); see :func:`lightning.consensus.service.core_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning.config_fields import doc, positive

__all__ = ["ConsensusConfig"]


@dataclass(frozen=True)
class ConsensusConfig:
    view_timeout_s: float = field(
        default=2.0, metadata=doc("a view without a committed block times out after this (doubling)", positive)
    )
    view_timeout_max_s: float = field(default=30.0, metadata=doc("the longest view timeout", positive))
    empty_block_s: float = field(
        default=1.0,
        metadata=doc("a leader with no transactions proposes an empty block after this", positive),
    )
