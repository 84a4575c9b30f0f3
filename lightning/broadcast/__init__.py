"""Broadcast (gossip): signed topic messages spread by advertise → want → message, deduplicated across restarts.

``broadcast.subscribe(Topic.X)`` gives a :class:`Subscription` (bounded); judge each message with ``propagate`` or
``reject``. ``await broadcast.send(Topic.X, payload, to=None)`` signs and sends. The protocol's bookkeeping is the
sans-IO :class:`BroadcastCore`; the peer set comes from :class:`lightning.net.topology.Topology`. See
docs/broadcast.md.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.broadcast.component import *  # noqa: F403
    from lightning.broadcast.core import *  # noqa: F403
    from lightning.broadcast.message import *  # noqa: F403
    from lightning.broadcast.rpc import *  # noqa: F403
    from lightning.broadcast.seen import *  # noqa: F403
    from lightning.broadcast.seen_store import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
