"""JSON-RPC, metrics and health endpoint."""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.rpc.endpoint import *  # noqa: F403
    from lightning.rpc.jsonrpc import *  # noqa: F403
    from lightning.rpc.node_rpc import *  # noqa: F403
    from lightning.rpc.reference import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
