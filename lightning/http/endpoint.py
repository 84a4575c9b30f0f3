"""The client endpoint (default 0.0.0.0:4220): ``/health`` now; services mount routes under ``/services/<id>/``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from lightning.http.config import HttpConfig
from lightning.http.server import HttpMetrics, Request, Response, serve_http

__all__ = ["ClientEndpoint"]

logger = logging.getLogger(__name__)

Route = Callable[[Request], Awaitable[Response]]


class ClientEndpoint:
    def __init__(
        self,
        config: HttpConfig,
        *,
        host: str,
        health: Callable[[], dict[str, Any]],
        services: dict[int, Route] | None = None,
        http_metrics: HttpMetrics | None = None,
    ) -> None:
        self._config = config
        self._host = host
        self._health = health
        self._services = dict(services or {})
        self._http_metrics = http_metrics
        self.address: tuple[str, int] | None = None

    async def run(self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.address = await nursery.start(self._serve)
            logger.info("client endpoint listening on http://%s:%d", *self.address)
            task_status.started(self.address)

    async def _serve(self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_http(
            self.handle,
            self._host,
            self._config.port,
            limits=self._config,  # an HttpConfig is the HttpLimits of [http] plus the port
            name="client",
            metrics=self._http_metrics,
            task_status=task_status,
        )

    async def handle(self, request: Request) -> Response:
        if request.path == "/health" and request.method in ("GET", "HEAD"):
            health = self._health()
            return Response.json(health, status=200 if health.get("status") == "ok" else 503)
        if request.path.startswith("/services/"):
            head, _, _rest = request.path[len("/services/") :].partition("/")
            route = self._services.get(int(head)) if head.isdigit() else None
            if route is None:
                return Response.text(f"unknown service {head!r}\n", status=404)
            return await route(request)
        return Response.text("not found\n", status=404)
