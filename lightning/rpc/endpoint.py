"""The RPC endpoint (default 127.0.0.1:4240): JSON-RPC 2.0 at ``/rpc/v0``, Prometheus ``/metrics``, ``/health``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio
from prometheus_client import CollectorRegistry

from lightning.http.server import HttpMetrics, Request, Response, serve_http
from lightning.metrics import CONTENT_TYPE, render
from lightning.rpc.config import RpcConfig
from lightning.rpc.jsonrpc import Dispatcher

__all__ = ["RpcEndpoint"]

logger = logging.getLogger(__name__)

RPC_PATH = "/rpc/v0"


class RpcEndpoint:
    def __init__(
        self,
        config: RpcConfig,
        *,
        host: str,
        dispatcher: Dispatcher,
        registry: CollectorRegistry,
        health: Callable[[], dict[str, Any]],
        http_metrics: HttpMetrics | None = None,
    ) -> None:
        self._config = config
        self._host = host
        self._dispatcher = dispatcher
        self._registry = registry
        self._health = health
        self._http_metrics = http_metrics
        self.address: tuple[str, int] | None = None

    async def run(self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.address = await nursery.start(self._serve)
            logger.info("rpc listening on http://%s:%d%s", self.address[0], self.address[1], RPC_PATH)
            task_status.started(self.address)

    async def _serve(self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_http(
            self.handle,
            self._host,
            self._config.port,
            limits=self._config,  # an RpcConfig is the HttpLimits of [rpc] plus the port
            name="rpc",
            metrics=self._http_metrics,
            task_status=task_status,
        )

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
            health = self._health()
            return Response.json(health, status=200 if health.get("status") == "ok" else 503)
        return Response.text("not found\n", status=404)
