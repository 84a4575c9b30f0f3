"""Noticing that another process runs with this node's keys, and saying so loudly.

Why it matters. A node's keys are its identity: restoring ``keystore/`` on a second server while the first still
runs gives two processes that sign as one node. Both vote, both sign checkpoints, and sooner or later they sign two
different things for one slot — equivocation, which any peer can prove and the state slashes. Nothing in the
protocol can tell the copies apart, so the node must notice and the operator must stop one.

What is checked where.

* **Same home, same machine**: ``run`` holds ``<home>/run/lock`` (``Home.lock``); a second process on that home
  stops at once with ``home is in use by a running node (pid N); stop it first``.
* **Same keys elsewhere** (another home, another server): the pool keeps one connection per peer, and a peer that
  receives a new connection authenticated with a node key it already has a connection from closes the older one
  with the reason :data:`~lightning.net.pool.SUPERSEDED` (a node that restarted dials again and its old connection
  is dead). A *running* node that receives that close on a connection it still uses learns that someone else
  proved its node key to that peer moments ago: another process holds the key. Its pool reports it
  (``PeerPool.on_superseded``) and :class:`DuplicateKeyWatch` logs an error naming the peer, counts it
  (``lightning_net_duplicate_key_signs_total``) and keeps it for status. The copies then keep displacing each
  other's connections as each dials again, so both of them see it within their first exchanges with any common
  peer — in practice right after the second one starts.

Limits. It is a warning, not a stop: a peer can send any close reason, so a hostile peer could fake it, and a node
that stopped on a peer's word could be taken out of its committee by one peer. It is only a sign from one peer;
several peers reporting it is a near-certainty. Two copies that share no peer (a network partition) see nothing.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import trio
from prometheus_client import CollectorRegistry, Counter

from lightning.ids import NodeId
from lightning.net.pool import PeerPool

__all__ = ["LOG_INTERVAL_S", "DuplicateKeyStatistics", "DuplicateKeyWatch"]

logger = logging.getLogger(__name__)

LOG_INTERVAL_S = 60.0  # at most one error line a minute while the copies keep displacing each other
RECENT_PEERS = 8


@dataclass(frozen=True)
class DuplicateKeyStatistics:
    signs: int  # connections a peer replaced with a newer one proving our node key
    peers: tuple[NodeId, ...]  # the peers that did, most recent last (at most RECENT_PEERS)
    last_s: float | None  # trio time of the last sign

    @property
    def suspected(self) -> bool:
        return self.signs > 0


class DuplicateKeyWatch:
    """Watches ``pool`` for signs of a second process with our node key (see the module docstring); never raises."""

    def __init__(
        self,
        pool: PeerPool,
        *,
        registry: CollectorRegistry | None = None,
        log_interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.node_id = pool.node_id
        self._clock = clock
        self._log_interval_s = log_interval_s
        self._signs = 0
        self._unlogged = 0
        self._log_at = -float("inf")
        self._last: float | None = None
        self._peers: deque[NodeId] = deque(maxlen=RECENT_PEERS)
        self._counter = Counter(
            "lightning_net_duplicate_key_signs",
            "Connections a peer replaced with a newer one proving this node's key (another process has the keys)",
            registry=registry,
        )
        pool.on_superseded = self.superseded

    def superseded(self, peer: NodeId) -> None:
        """``peer`` closed a connection we were using because a newer one proved our node key to it."""
        now = self._clock()
        self._signs += 1
        self._unlogged += 1
        self._last = now
        if peer in self._peers:
            self._peers.remove(peer)
        self._peers.append(peer)
        self._counter.inc()
        if now < self._log_at:
            return
        logger.error(
            "another process is running with this node's keys (node %s): peer %s… replaced our connection with a "
            "newer one that proved our node key (%d such signs%s). Two processes with one node key sign conflicting "
            "votes and checkpoints, which is equivocation and is slashed: stop every copy but one "
            "(docs/operator.md, 'One node, one process')",
            self.node_id,
            peer.short(),
            self._unlogged,
            f" from {len(self._peers)} peers" if len(self._peers) > 1 else "",
        )
        self._unlogged = 0
        self._log_at = now + self._log_interval_s

    @property
    def suspected(self) -> bool:
        return self._signs > 0

    def statistics(self) -> DuplicateKeyStatistics:
        return DuplicateKeyStatistics(self._signs, tuple(self._peers), self._last)
