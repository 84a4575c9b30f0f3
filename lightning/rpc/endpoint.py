"""The RPC endpoint (default 127.0.0.1:4240): JSON-RPC 2.0 at ``/rpc/v0``, Prometheus ``/metrics``, ``/health``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from lightning.http.config import HttpLimits
from lightning.http.endpoint import HttpEndpoint
from lightning.http.server import HttpMetrics, Request, Response
from lightning.metrics import CONTENT_TYPE, render
from lightning.rpc.jsonrpc import Dispatcher

__all__ = ["RpcEndpoint"]

logger = logging.getLogger(__name__)

RPC_PATH = "/rpc/v0"


class RpcEndpoint(HttpEndpoint):
    name = "rpc"
    path = RPC_PATH

    def __init__(
        self,
        config: HttpLimits,
        *,
        host: str,
        dispatcher: Dispatcher,
        registry: CollectorRegistry,
        health: Callable[[], dict[str, Any]],
        http_metrics: HttpMetrics | None = None,
    ) -> None:
        super().__init__(config, host=host, health=health, http_metrics=http_metrics)
        self._dispatcher = dispatcher
        self._registry = registry

    async def handle(self, request: Request) -> Response:
        if request.path == RPC_PATH:
            if request.method != "POST":
                return Response.text("JSON-RPC wants POST\n", status=405)
            answer = await self._dispatcher.handle(request.body, request.client[0])
            if answer is None:
                return Response(status=204)
            return Response(status=200, headers=[("content-type", "application/json")], body=answer)
        if request.path == "/metrics" and request.method in ("GET", "HEAD"):
            return Response(status=200, headers=[("content-type", CONTENT_TYPE)], body=render(self._registry))
        if request.path == "/health" and request.method in ("GET", "HEAD"):
            return self.health_response()
        return Response.text("not found\n", status=404)
