"""Config of the RPC endpoint (``[rpc]``): JSON-RPC at ``/rpc/v0``, ``/metrics`` and ``/health`` on ``node.rpc_host``.
Stdlib only: see :mod:`lightning.config_fields`."""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning.config_fields import check_port, doc
from lightning.http.config import HttpLimits, ListenPort

__all__ = ["RpcConfig"]


@dataclass(frozen=True)
class RpcConfig(HttpLimits, ListenPort):
    """The port, every :class:`~lightning.http.config.HttpLimits` field (the same defaults as the client endpoint's),
    and who may call admin methods."""

    port: int = field(default=4240, metadata=doc("JSON-RPC, /metrics and /health TCP port (0 = any)", check_port))
    admin_loopback_only: bool = field(
        default=True, metadata=doc("admin methods answer loopback callers only, whatever rpc_host is")
    )
