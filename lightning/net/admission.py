"""Peer admission: who may connect, which scopes each peer may use, and where peers are reached.

Every authenticated peer gets one :class:`Access` level (docs/net.md, "Peer admission"); each level includes the
ones below it:

=============  ==========================================  ====================================================
level          scopes                                      who (``lightning.chain.StateAdmission``, after genesis)
=============  ==========================================  ====================================================
``NONE``       none: the connection is refused             nobody (only :class:`StaticAdmission` refuses)
``LIMITED``    transactions and sync reads (rate-limited)  any other authenticated node
``FULL``       every scope but consensus                   nodes staked ``min_stake``, genesis nodes, allow-list
``CONSENSUS``  every scope                                 the current epoch's committee
=============  ==========================================  ====================================================

The pool asks its :class:`Admission` for a peer's level on every new connection and on every incoming stream and
message (so an answer must be a dictionary lookup: implementations cache what they read), counts and rate-limits
``LIMITED`` peers (``max_limited_peers``, :class:`TokenBucket`), and at an epoch change closes the connections of
peers whose level dropped (``PeerPool.recheck``). Implementations: ``lightning.chain.StateAdmission`` (the node's,
from the state), :class:`StaticAdmission` (a fixed set; tools and tests), :class:`OpenAdmission` (everyone).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final, Protocol

from lightning.genesis import Genesis
from lightning.ids import NodeId
from lightning.net.wire import Scope

__all__ = [
    "LIMITED_SCOPES",
    "Access",
    "AddressBook",
    "Admission",
    "OpenAdmission",
    "StaticAdmission",
    "TokenBucket",
    "parse_peer_address",
]


class Access(enum.IntEnum):
    """What a peer may do (see the module docstring); higher levels include the lower ones."""

    NONE = 0
    LIMITED = 1
    FULL = 2
    CONSENSUS = 3

    def allows(self, scope: Scope) -> bool:
        return scope in _SCOPES[self]


LIMITED_SCOPES: Final = frozenset({Scope.TXS, Scope.SYNC})
_SCOPES: Final = {
    Access.NONE: frozenset[Scope](),
    Access.LIMITED: LIMITED_SCOPES,
    Access.FULL: frozenset(Scope) - {Scope.CONSENSUS},
    Access.CONSENSUS: frozenset(Scope),
}


class Admission(Protocol):
    def access(self, peer: NodeId) -> Access:
        """``peer``'s level now. Called per incoming message: it must not read storage."""


class OpenAdmission:
    """Everyone, every scope (simulations and tests)."""

    def access(self, peer: NodeId) -> Access:
        return Access.CONSENSUS


class StaticAdmission:
    """A fixed set: ``nodes`` and ``allow`` get every scope but consensus, ``committee`` every scope, anyone else
    ``others`` (default: refused)."""

    def __init__(
        self,
        *,
        nodes: Iterable[NodeId],
        committee: Iterable[NodeId],
        allow: Iterable[NodeId] = (),
        others: Access = Access.NONE,
    ) -> None:
        self.committee = frozenset(committee)
        self.members = frozenset(nodes) | self.committee | frozenset(allow)
        self.others = others
        self._levels = {n: Access.FULL for n in self.members} | {n: Access.CONSENSUS for n in self.committee}

    @classmethod
    def from_genesis(
        cls, genesis: Genesis, allow: Iterable[str] = (), *, others: Access = Access.NONE
    ) -> StaticAdmission:
        return cls(
            nodes=(NodeId.parse(n.node_key) for n in genesis.nodes),
            committee=(NodeId.parse(n.node_key) for n in genesis.committee),
            allow=(NodeId.parse(a) for a in allow),
            others=others,
        )

    def access(self, peer: NodeId) -> Access:
        return self._levels.get(peer, self.others)

    def admits(self, peer: NodeId) -> bool:
        return self.access(peer) > Access.NONE

    def allows(self, peer: NodeId, scope: Scope) -> bool:
        return self.access(peer).allows(scope)


class TokenBucket:
    """Rate limit (sans-IO): ``rate_per_s`` tokens a second, at most ``burst`` saved up; each event takes one."""

    __slots__ = ("burst", "rate_per_s", "tokens", "updated")

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        assert rate_per_s > 0 and burst >= 1
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> bool:
        """Take a token if there is one; False means over the rate."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def parse_peer_address(text: str) -> tuple[NodeId, tuple[str, int]]:
    """``NODE_ID@HOST:PORT`` (IPv6 hosts in brackets). Raises LightningError with what was wrong."""
    from lightning.errors import LightningError

    node, sep, hostport = text.strip().partition("@")
    if not sep:
        raise LightningError(f"{text!r}: expected NODE_ID@HOST:PORT")
    key = NodeId.parse(node)
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise LightningError(f"{text!r}: expected NODE_ID@HOST:PORT with a port 1..65535")
    return key, (host.removeprefix("[").removesuffix("]"), int(port_text))


class AddressBook:
    """Where to dial each peer: genesis nodes' ``host``/``quic_port``, plus addresses learned or given."""

    def __init__(self, entries: Iterable[tuple[NodeId, tuple[str, int]]] = ()) -> None:
        self._addresses: dict[NodeId, tuple[str, int]] = dict(entries)

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> AddressBook:
        return cls((NodeId.parse(n.node_key), (n.host, n.quic_port)) for n in genesis.nodes)

    def add(self, peer: NodeId, address: tuple[str, int]) -> None:
        self._addresses[peer] = address

    def get(self, peer: NodeId) -> tuple[str, int] | None:
        return self._addresses.get(peer)

    def peers(self) -> list[NodeId]:
        return list(self._addresses)

    def __len__(self) -> int:
        return len(self._addresses)
