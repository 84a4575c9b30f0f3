"""HTTP/1.1 server (trio + h11) behind the client endpoint and the RPC endpoint.

``serve_http`` binds and serves a ``Handler`` (an async function from ``Request`` to ``Response``);
``serve_connection`` serves one already-open stream (tests use in-memory streams).
"""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.http.server import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
