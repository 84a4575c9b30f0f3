"""Wall-clock time, injected wherever it is read (protocol logic runs on trio's clock).

Only a block proposer (the block timestamp), validators (the timestamp window) and broadcast (message timestamps)
read the wall clock; the state's epoch times come from committed blocks. A node passes :class:`SystemWallClock`;
simulations pass :class:`TrioWallClock`, which follows trio's clock (a ``MockClock``) from a fixed start.
"""

from __future__ import annotations

import time
from typing import Protocol

import trio

__all__ = ["SystemWallClock", "TrioWallClock", "WallClock"]


class WallClock(Protocol):
    """Unix time in milliseconds."""

    def now_ms(self) -> int: ...


class SystemWallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class TrioWallClock:
    """Wall time that follows trio's clock (a ``MockClock`` in simulation): ``base_ms`` at trio time 0."""

    def __init__(self, base_ms: int) -> None:
        self.base_ms = base_ms

    def now_ms(self) -> int:
        return self.base_ms + int(trio.current_time() * 1000)
