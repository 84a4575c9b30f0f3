"""The peer-to-peer layer: one QUIC connection pool per node, scoped messaging, and its simulated twin.

Components use the :class:`Pool` interface (``send``, ``request``, ``open_stream``, handlers per :class:`Scope`).
:class:`QuicPool` is the production pool over QUIC (``endpoint.py``, ``driver.py``); ``lightning.net.sim`` provides
:class:`~lightning.net.sim.SimPool` on a seeded in-process network. The wire format, authentication, admission and
limits are described in docs/net.md.
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.net.admission import *  # noqa: F403
    from lightning.net.datagram import *  # noqa: F403
    from lightning.net.errors import *  # noqa: F403
    from lightning.net.known import *  # noqa: F403
    from lightning.net.pool import *  # noqa: F403
    from lightning.net.quic import *  # noqa: F403
    from lightning.net.replies import *  # noqa: F403
    from lightning.net.wire import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
