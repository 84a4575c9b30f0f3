"""Who may connect and use which scope, and where peers are reached.

ARCHITECTURE.md: staked nodes may use the sync, blocks and broadcast scopes; only the epoch's committee may use
consensus; genesis nodes are admitted from the start. The pool asks its :class:`Admission` on every new connection
and every incoming stream or message, so a change in the answers applies without reconnecting. Implementations:
:class:`StaticAdmission`, a fixed set — genesis nodes (consensus: the genesis committee) and a configured allow-list
(every scope but consensus) — which ``node.py`` passes today; ``lightning.chain.StateAdmission``, the same rules
read from the state's stakes and current committee (written and tested, not wired into the node yet);
:class:`OpenAdmission` for tools and tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from lightning.genesis import Genesis
from lightning.ids import NodeId
from lightning.net.wire import Scope

__all__ = ["AddressBook", "Admission", "OpenAdmission", "StaticAdmission", "parse_peer_address"]


class Admission(Protocol):
    def admits(self, peer: NodeId) -> bool:
        """May ``peer`` hold a connection to us at all?"""

    def allows(self, peer: NodeId, scope: Scope) -> bool:
        """May ``peer`` send us messages and requests in ``scope``?"""


class OpenAdmission:
    """Everyone, every scope (simulations and tests)."""

    def admits(self, peer: NodeId) -> bool:
        return True

    def allows(self, peer: NodeId, scope: Scope) -> bool:
        return True


class StaticAdmission:
    """A fixed set: genesis nodes (consensus: the genesis committee) and an allow-list (every scope but consensus)."""

    def __init__(
        self, *, nodes: Iterable[NodeId], committee: Iterable[NodeId], allow: Iterable[NodeId] = ()
    ) -> None:
        self.committee = frozenset(committee)
        self.members = frozenset(nodes) | self.committee | frozenset(allow)

    @classmethod
    def from_genesis(cls, genesis: Genesis, allow: Iterable[str] = ()) -> StaticAdmission:
        return cls(
            nodes=(NodeId.parse(n.node_key) for n in genesis.nodes),
            committee=(NodeId.parse(n.node_key) for n in genesis.committee),
            allow=(NodeId.parse(a) for a in allow),
        )

    def admits(self, peer: NodeId) -> bool:
        return peer in self.members

    def allows(self, peer: NodeId, scope: Scope) -> bool:
        if scope is Scope.CONSENSUS:
            return peer in self.committee
        return peer in self.members


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
