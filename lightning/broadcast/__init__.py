"""Broadcast (gossip): signed topic messages spread by advertise → want → message, deduplicated across restarts.

``broadcast.subscribe(Topic.X)`` gives a :class:`Subscription` (bounded); judge each message with ``propagate`` or
``reject``. ``await broadcast.send(Topic.X, payload, to=None)`` signs and sends. The protocol's bookkeeping is the
sans-IO :class:`BroadcastCore`; the peer set comes from :class:`lightning.net.topology.Topology`. See
docs/broadcast.md.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.broadcast.component import Broadcast, BroadcastStatistics, Subscription
    from lightning.broadcast.core import BroadcastCore, Received
    from lightning.broadcast.message import BroadcastError, InvalidMessage, Message, Topic, sign_message
    from lightning.broadcast.rpc import DebugLog, register_broadcast_rpc
    from lightning.broadcast.seen import SeenCache
    from lightning.broadcast.seen_store import SeenStore, SeenStoreError

__all__ = [
    "Broadcast",
    "BroadcastCore",
    "BroadcastError",
    "BroadcastStatistics",
    "DebugLog",
    "InvalidMessage",
    "Message",
    "Received",
    "SeenCache",
    "SeenStore",
    "SeenStoreError",
    "Subscription",
    "Topic",
    "register_broadcast_rpc",
    "sign_message",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Broadcast": "component",
        "BroadcastStatistics": "component",
        "Subscription": "component",
        "BroadcastCore": "core",
        "Received": "core",
        "BroadcastError": "message",
        "InvalidMessage": "message",
        "Message": "message",
        "Topic": "message",
        "sign_message": "message",
        "DebugLog": "rpc",
        "register_broadcast_rpc": "rpc",
        "SeenCache": "seen",
        "SeenStore": "seen_store",
        "SeenStoreError": "seen_store",
    },
)
