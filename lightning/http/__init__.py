"""HTTP/1.1 server (trio + h11) behind the client endpoint and the RPC endpoint.

``serve_http`` binds and serves a ``Handler`` (an async function from ``Request`` to ``Response``);
``serve_connection`` serves one already-open stream (tests use in-memory streams).
"""

from lightning.http.server import (
    Handler,
    HttpBindError,
    HttpError,
    HttpLimits,
    HttpMetrics,
    Request,
    Response,
    serve_connection,
    serve_http,
)

__all__ = [
    "Handler",
    "HttpBindError",
    "HttpError",
    "HttpLimits",
    "HttpMetrics",
    "Request",
    "Response",
    "serve_connection",
    "serve_http",
]
