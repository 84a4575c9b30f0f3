"""HTTP endpoints of a node: :class:`HttpEndpoint` (bind, serve, ``/health``) and the client endpoint (default
0.0.0.0:4220: ``/health``, services under ``/services/<id>/``). The RPC endpoint (``lightning/rpc/endpoint.py``) is
the other :class:`HttpEndpoint`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from lightning.http.config import HttpLimits, ListenPort
from lightning.http.server import HttpMetrics, Request, Response, serve_http

__all__ = ["ClientEndpoint", "HttpEndpoint"]

logger = logging.getLogger(__name__)

Route = Callable[[Request], Awaitable[Response]]


class HttpEndpoint:
    """One HTTP listener with its own limits (its config table is ``HttpLimits`` plus ``ListenPort``); subclasses
    route requests in :meth:`handle`."""

    name = "http"
    path = ""  # shown in the "listening on" line

    def __init__(
        self,
        config: HttpLimits,
        *,
        host: str,
        health: Callable[[], dict[str, Any]],
        http_metrics: HttpMetrics | None = None,
    ) -> None:
        assert isinstance(config, ListenPort), "an endpoint's config table is HttpLimits plus a port"
        self._config = config
        self._port = config.port
        self._host = host
        self._health = health
        self._http_metrics = http_metrics
        self.address: tuple[str, int] | None = None

    async def run(self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.address = await nursery.start(self._serve)
            logger.info("%s endpoint listening on http://%s:%d%s", self.name, *self.address, self.path)
            task_status.started(self.address)

    async def _serve(self, *, task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_http(
            self.handle,
            self._host,
            self._port,
            limits=self._config,
            name=self.name,
            metrics=self._http_metrics,
            task_status=task_status,
        )

    def health_response(self) -> Response:
        health = self._health()
        return Response.json(health, status=200 if health.get("status") == "ok" else 503)

    async def handle(self, request: Request) -> Response:
        raise NotImplementedError


class ClientEndpoint(HttpEndpoint):
    name = "client"

    def __init__(
        self,
        config: HttpLimits,
        *,
        host: str,
        health: Callable[[], dict[str, Any]],
        services: dict[int, Route] | None = None,
        http_metrics: HttpMetrics | None = None,
    ) -> None:
        super().__init__(config, host=host, health=health, http_metrics=http_metrics)
        self._services = dict(services or {})

    async def handle(self, request: Request) -> Response:
        if request.path == "/health" and request.method in ("GET", "HEAD"):
            return self.health_response()
        if request.path.startswith("/services/"):
            head, _, _rest = request.path[len("/services/") :].partition("/")
            route = self._services.get(int(head)) if head.isdigit() else None
            if route is None:
                return Response.text(f"unknown service {head!r}\n", status=404)
            return await route(request)
        return Response.text("not found\n", status=404)
