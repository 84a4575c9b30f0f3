"""Broadcast (gossip): signed topic messages spread by advertise → want → message, deduplicated across restarts.

``broadcast.subscribe(Topic.X)`` gives a :class:`Subscription` (bounded); judge each message with ``propagate`` or
``reject``. ``await broadcast.send(Topic.X, payload, to=None)`` signs and sends. The protocol's bookkeeping is the
sans-IO :class:`BroadcastCore`; the peer set comes from :class:`lightning.net.topology.Topology`. See
docs/broadcast.md.
"""

from lightning.broadcast.component import Broadcast, BroadcastStatistics, Subscription, WallClock
from lightning.broadcast.core import BroadcastCore, Received
from lightning.broadcast.message import BroadcastError, InvalidMessage, Message, Topic, sign_message
from lightning.broadcast.rpc import DebugLog, register_broadcast_rpc
from lightning.broadcast.seen import SeenCache, SeenStore, SeenStoreError

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
    "WallClock",
    "register_broadcast_rpc",
    "sign_message",
]
