"""HTTP/1.1 server on trio + h11, for the client endpoint (4220) and the RPC endpoint (4240).

Theory of operation
-------------------
h11 is the sans-IO core: it parses request heads and bodies, frames responses (Content-Length, chunked, or
close-delimited for HTTP/1.0 peers) and decides keep-alive. This module is the trio adapter around it.

``serve_http`` binds, then runs one accept loop per listener and one task per connection, all in its own
nursery. At most ``max_connections`` connections are served at once: beyond that the accept loops stop
accepting, so new connections wait in the kernel's listen backlog (once that is full, the kernel drops their
SYNs and clients retry). Nothing is accepted only to be turned away.

``serve_connection`` runs request/response cycles on one stream. Its timeouts are enforced by one watchdog task
per connection, within ``_WATCHDOG_TICK_S`` (1 s) of the deadline:

    phase      deadline                                             on expiry
    idle       idle_timeout_s until the first byte of a request    close silently
    head       header_timeout_s from that first byte (from accept   408 if any byte arrived, else close
               for the connection's first request)
    body       body_timeout_s for the whole body                    408
    handler    none (the handler bounds its own work)               -
    response   send_timeout_s for each write of at most 1 MiB       abort

Everything the client controls is bounded: head size and header count (431), body size (413), malformed
input (400). Error responses are written as fixed bytes, bypassing h11 (whose state may already be ERROR), and
always end the connection: we write the response, half-close, and drain what the client still sends for a
moment, so the kernel doesn't turn our close into a reset that destroys the response before the client reads
it.

A streamed body (an async iterator) is written chunk by chunk, so memory stays bounded by one chunk. Meanwhile
a watcher task reads from the client: end-of-file or a reset cancels the body at once, so a client that leaves
stops the work that feeds it (as Go's net/http does). What the watcher reads is pipelined requests, handed to
h11 for the next cycle and capped at ``max_head_bytes``. The body iterator is always closed (``aclose``), also
when it was never iterated (HEAD) and when sending fails.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Final

import h11
import prometheus_client
import trio

from lightning.errors import LightningError
from lightning.hostport import bind_error_message, join_host_port
from lightning.http.config import HttpLimits

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

logger = logging.getLogger(__name__)

_SERVER: Final = b"lightning-py"
_RECV_BYTES: Final = 64 * 1024
# Responses up to this size go out in one write; above it the parts are written separately to avoid a copy.
_COALESCE_BYTES: Final = 64 * 1024
# Each write of at most this many bytes gets its own send_timeout_s: a slow but steady reader isn't dropped.
_WRITE_SLICE_BYTES: Final = 1024 * 1024
_LINGER_S: Final = 1.0
_LINGER_BYTES: Final = 256 * 1024
# How late a timeout may fire: the watchdog re-reads the deadline at least this often (see _Connection.serve).
_WATCHDOG_TICK_S: Final = 1.0
_ACCEPT_RETRY_S: Final = 0.1
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_FRAMING_HEADERS: Final = frozenset({"content-length", "transfer-encoding"})
_NO_BODY_STATUSES: Final = frozenset({204, 304})
_METHOD_LABELS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
_REASONS: Final = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_TCP_NOTSENT_LOWAT: Final[int | None] = getattr(trio.socket, "TCP_NOTSENT_LOWAT", None)


class HttpError(LightningError):
    """Root of the errors this package raises."""


class HttpBindError(HttpError):
    """The server could not listen on its address (port in use, address not local, no permission)."""


_DEFAULT_LIMITS: Final = HttpLimits()


@dataclass(frozen=True)
class Request:
    """One request, body read in full (at most ``max_body_bytes``)."""

    method: str
    target: str
    """Raw request target, e.g. ``/a%20b?x=1``."""
    path: str
    """Percent-decoded path of the target, e.g. ``/a b``."""
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    """In arrival order; names lowercased; values decoded as Latin-1."""
    body: bytes
    client: tuple[str, int]

    def header(self, name: str, default: str | None = None) -> str | None:
        """Value of the first header called ``name`` (case-insensitive), or ``default``."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass
class Response:
    """What a handler returns.

    ``body`` is bytes, or an async iterator of chunks, streamed with backpressure and closed (``aclose``)
    when done, on error or when the client leaves. A streamed body is sent chunked unless ``content_length``
    is given (then it must yield exactly that many bytes, or the connection is aborted). For bytes,
    ``content_length`` may differ from ``len(body)`` only for HEAD (``body=b""`` plus the length a GET would
    have). Content-Length and Transfer-Encoding set in ``headers`` are ignored: framing is the server's. Date
    and Server are added unless set.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncIterator[bytes | memoryview] = b""
    content_length: int | None = None

    @classmethod
    def json(cls, obj: object, status: int = 200) -> Response:
        """Compact UTF-8 JSON; raises TypeError/ValueError if ``obj`` can't be encoded."""
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return cls(status, [("content-type", "application/json")], body)

    @classmethod
    def text(cls, s: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
        return cls(status, [("content-type", content_type)], s.encode("utf-8"))


Handler = Callable[[Request], Awaitable[Response]]


class HttpMetrics:
    """Prometheus collectors for every HTTP server of one node.

    Registered on the given registry (never the global one, so several nodes can share a process). Create one
    per registry and pass it to each server; the ``server`` label is the server's ``name``.
    """

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        self.requests = prometheus_client.Counter(
            "lightning_http_requests",
            "HTTP responses sent, by server, request method (other = unparsed or unusual) and status",
            ["server", "method", "status"],
            registry=registry,
        )
        self.request_duration = prometheus_client.Histogram(
            "lightning_http_request_duration_seconds",
            "Time from a complete request head to the last response byte",
            ["server"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.connections = prometheus_client.Gauge(
            "lightning_http_connections", "Open HTTP connections", ["server"], registry=registry
        )
        self.response_body_bytes = prometheus_client.Counter(
            "lightning_http_response_body_bytes",
            "Response body bytes written (HEAD and error responses excluded)",
            ["server"],
            registry=registry,
        )
        self._servers: dict[str, _ServerMetrics] = {}

    def _server(self, name: str) -> _ServerMetrics:
        bound = self._servers.get(name)
        if bound is None:
            bound = self._servers[name] = _ServerMetrics(self, name)
        return bound


class _ServerMetrics:
    """The collectors with the ``server`` label applied; children cached because ``labels()`` is slow."""

    def __init__(self, metrics: HttpMetrics, server: str) -> None:
        self._requests = metrics.requests
        self._server = server
        self._request_children: dict[tuple[str, int], prometheus_client.Counter] = {}
        self.connections = metrics.connections.labels(server)
        self._duration = metrics.request_duration.labels(server)
        self._body_bytes = metrics.response_body_bytes.labels(server)

    def request_done(self, method: str | None, status: int, duration_s: float | None, body_bytes: int) -> None:
        label = method if method in _METHOD_LABELS else "other"
        child = self._request_children.get((label, status))
        if child is None:
            child = self._requests.labels(self._server, label, str(status))
            self._request_children[(label, status)] = child
        child.inc()
        if duration_s is not None:
            self._duration.observe(duration_s)
        if body_bytes:
            self._body_bytes.inc(body_bytes)


class _DateCache:
    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        # Wall-clock by definition (the Date header), and formatting it once a second is enough.
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value


_DATE: Final = _DateCache()


class _Reject(Exception):
    """End the connection with this error status (nothing of the response sent yet)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Close(Exception):
    """End the connection without a response: the peer left, timed out idle, or we can't send anymore."""


class _ConnLog(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        assert self.extra is not None
        return f"[{self.extra['conn']}] {msg}", kwargs


def _canned(status: int, with_body: bool) -> bytes:
    reason = _REASONS.get(status, b"Error")
    body = reason + b"\n"
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"date: %s\r\nserver: %s\r\n" % (_DATE.get(), _SERVER),
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body if with_body else b"",
        ]
    )


def _split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    raw_path, _, raw_query = target.partition("?")
    if not raw_path.startswith("/") and raw_path != "*":
        parts = urllib.parse.urlsplit(target)  # absolute-form, as sent to proxies
        raw_path, raw_query = parts.path or "/", parts.query
    path = urllib.parse.unquote(raw_path) if "%" in raw_path else raw_path
    query = urllib.parse.parse_qs(raw_query, keep_blank_values=True) if raw_query else {}
    return path, query


async def _close_body(body: object, log: _ConnLog) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        log.exception("closing the response body failed")


class _Connection:
    def __init__(
        self,
        stream: trio.abc.Stream,
        handler: Handler,
        client: tuple[str, int],
        limits: HttpLimits,
        name: str,
        metrics: _ServerMetrics | None,
    ) -> None:
        self._stream = stream
        self._handler = handler
        self._client = client
        self._limits = limits
        self._metrics = metrics
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        self._log = _ConnLog(logger, {"conn": f"{name} {client[0]}:{client[1]}"})
        # Finite only while blocked reading or writing; the watchdog enforces it. On expiry, 408 or just close.
        self._deadline = math.inf
        self._expiry_is_408 = False
        # Per request/response cycle:
        self._method: str | None = None
        self._started_at: float | None = None
        self._head_sent = False
        self._body_bytes = 0
        self._peer_gone = False

    async def serve(self) -> None:
        # Timeouts: a cancel scope per read and write would cost about a fifth of the throughput for small
        # responses (each one enters trio's deadline heap), so reads and writes only set self._deadline and one
        # watchdog task per connection cancels everything when it passes.
        reject: int | None = None
        with trio.CancelScope() as work:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watchdog, work)
                reject = await self._cycles()
                nursery.cancel_scope.cancel()
        if work.cancelled_caught:
            self._log.debug("timed out")
            reject = 408 if self._expiry_is_408 else None
        if reject is not None:
            await self._reject(reject)

    async def _watchdog(self, work: trio.CancelScope) -> None:
        while True:
            now = trio.current_time()
            if now >= self._deadline:
                work.cancel()
                return
            # The deadline may have moved earlier while we slept (idle -> head, or a write began); the tick bounds
            # how late we notice.
            await trio.sleep_until(min(self._deadline, now + _WATCHDOG_TICK_S))

    async def _cycles(self) -> int | None:
        """Serve requests until the connection should end; returns the error status to send, if any."""
        first = True
        try:
            while True:
                self._method = None
                self._started_at = None
                self._head_sent = False
                self._body_bytes = 0
                request = await self._receive_request(first)
                first = False
                response = await self._call_handler(request)
                await self._respond(request, response)
                if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
                    return None  # Connection: close, HTTP/1.0, or a close-delimited body
                self._h11.start_next_cycle()
        except _Reject as reject:
            return reject.status
        except _Close as close:
            self._log.debug("closing: %s", close)
            return None

    # -- receiving -------------------------------------------------------------------------------------------

    async def _receive(self, deadline: float, expiry_is_408: bool) -> bytes:
        """Some bytes, or b"" at end of file."""
        self._deadline = deadline
        self._expiry_is_408 = expiry_is_408
        try:
            data = await self._stream.receive_some(_RECV_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _Close(f"receive failed: {exc!r}") from exc
        finally:
            self._deadline = math.inf
        return data if isinstance(data, bytes) else bytes(data)

    def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        try:
            return self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            self._log.debug("bad request: %s", exc)
            raise _Reject(exc.error_status_hint) from None

    async def _receive_request(self, first: bool) -> Request:
        limits = self._limits
        conn = self._h11
        got_bytes = bool(conn.trailing_data[0])  # pipelined
        deadline = trio.current_time() + (limits.header_timeout_s if first or got_bytes else limits.idle_timeout_s)
        while True:
            event = self._next_event()
            if event is h11.NEED_DATA:
                data = await self._receive(deadline, got_bytes)
                if not data:
                    raise _Close("peer closed")
                if not got_bytes:
                    got_bytes = True
                    if not first:
                        deadline = trio.current_time() + limits.header_timeout_s
                conn.receive_data(data)
            elif type(event) is h11.Request:
                break
            elif type(event) is h11.ConnectionClosed:
                raise _Close("peer closed")
            else:
                raise AssertionError(f"unexpected h11 event {event!r} while waiting for a request")

        self._started_at = trio.current_time()
        self._method = method = event.method.decode("ascii")
        raw_headers = event.headers
        if len(raw_headers) > limits.max_headers:
            raise _Reject(431)
        # h11 caps only an incomplete head; one that arrived whole in a read can be up to a read larger.
        head_bytes = len(event.target)
        headers: list[tuple[str, str]] = []
        content_length: int | None = None
        for name, value in raw_headers:
            head_bytes += len(name) + len(value) + 4
            headers.append((name.decode("ascii"), value.decode("latin-1")))
            if name == b"content-length":
                content_length = int(value)
        if head_bytes > limits.max_head_bytes:
            raise _Reject(431)
        if content_length is not None and content_length > limits.max_body_bytes:
            raise _Reject(413)
        target = event.target.decode("latin-1")
        try:
            path, query = _split_target(target)
        except ValueError:  # an absolute-form target urllib can't split, e.g. "http://[::1/"
            raise _Reject(400) from None
        body = await self._receive_body()
        return Request(method, target, path, query, headers, body, self._client)

    async def _receive_body(self) -> bytes:
        conn = self._h11
        chunks: list[bytes] = []
        size = 0
        deadline: float | None = None
        while True:
            event = self._next_event()
            if type(event) is h11.EndOfMessage:
                return b"".join(chunks)
            if type(event) is h11.Data:
                size += len(event.data)
                if size > self._limits.max_body_bytes:
                    raise _Reject(413)
                chunks.append(event.data)
            elif event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    await self._write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                if deadline is None:
                    deadline = trio.current_time() + self._limits.body_timeout_s
                data = await self._receive(deadline, True)
                if not data:
                    raise _Close("peer closed during the request body")
                conn.receive_data(data)
            else:
                raise AssertionError(f"unexpected h11 event {event!r} in a request body")

    # -- handling --------------------------------------------------------------------------------------------

    async def _call_handler(self, request: Request) -> Response:
        try:
            return await self._handler(request)
        except Exception:
            self._log.exception("handler failed on %s %s", request.method, request.target)
            raise _Reject(500) from None

    def _head(self, response: Response, content_length: int | None) -> bytes:
        headers: list[tuple[bytes, bytes]] = []
        has_server = has_date = False
        for name, value in response.headers:
            lname = name.lower()
            if lname in _FRAMING_HEADERS:
                continue
            has_server = has_server or lname == "server"
            has_date = has_date or lname == "date"
            headers.append((name.encode("ascii"), value.encode("latin-1")))
        if not has_date:
            headers.append((b"date", _DATE.get()))
        if not has_server:
            headers.append((b"server", _SERVER))
        if content_length is not None and response.status not in _NO_BODY_STATUSES:
            headers.append((b"content-length", b"%d" % content_length))
        status = response.status
        return self._h11.send(h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b"")))

    async def _respond(self, request: Request, response: Response) -> None:
        try:
            body = response.body
            if isinstance(body, bytes):
                await self._respond_bytes(request, response, body)
            else:
                await self._respond_stream(request, response, body)
        finally:
            if self._head_sent:
                self._request_done(response.status)

    async def _respond_bytes(self, request: Request, response: Response, body: bytes) -> None:
        conn = self._h11
        is_head = request.method == "HEAD"
        try:
            declared = len(body) if response.content_length is None else response.content_length
            if declared != len(body) and not is_head:
                raise ValueError(f"content_length={declared} but the body has {len(body)} bytes")
            parts = [self._head(response, declared)]
            if body and not is_head:
                parts += conn.send_with_data_passthrough(h11.Data(data=body)) or []
            parts += conn.send_with_data_passthrough(h11.EndOfMessage()) or []
        except Exception:
            self._log.exception("invalid response to %s %s", request.method, request.target)
            raise _Reject(500) from None
        self._head_sent = True
        await self._write_parts(parts)
        if not is_head:
            self._body_bytes = len(body)

    async def _respond_stream(
        self, request: Request, response: Response, body: AsyncIterator[bytes | memoryview]
    ) -> None:
        conn = self._h11
        try:
            head = self._head(response, response.content_length)
        except Exception:
            self._log.exception("invalid response to %s %s", request.method, request.target)
            await _close_body(body, self._log)
            raise _Reject(500) from None
        self._head_sent = True
        if request.method == "HEAD":
            await _close_body(body, self._log)  # before waiting on the client: none of it is needed
            await self._write(head + conn.send(h11.EndOfMessage()))
            return
        try:
            await self._write(head)
            failure: _Close | None = None
            self._peer_gone = False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_peer, nursery.cancel_scope)
                try:
                    await self._pump(body)
                except _Close as exc:
                    failure = exc
                except Exception:
                    self._log.exception(
                        "response body of %s %s failed after %d bytes; aborting the connection",
                        request.method,
                        request.target,
                        self._body_bytes,
                    )
                    failure = _Close("response body failed")
                nursery.cancel_scope.cancel()
            if failure is not None:
                raise failure
            if self._peer_gone:
                raise _Close(f"peer left after {self._body_bytes} body bytes")
        finally:
            await _close_body(body, self._log)

    async def _pump(self, body: AsyncIterator[bytes | memoryview]) -> None:
        conn = self._h11
        async for chunk in body:
            if not chunk:
                continue  # an empty Data would end a chunked body early
            data = h11.Data(data=chunk)  # type: ignore[arg-type]  # h11 passes any buffer through untouched
            await self._write_parts(conn.send_with_data_passthrough(data) or [])
            self._body_bytes += len(chunk)
        tail = conn.send(h11.EndOfMessage())
        if tail:
            await self._write(tail)

    async def _watch_peer(self, cancel_body: trio.CancelScope) -> None:
        budget = self._limits.max_head_bytes - len(self._h11.trailing_data[0])
        while budget > 0:
            try:
                data = await self._stream.receive_some(_RECV_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._peer_gone = True
                cancel_body.cancel()
                return
            self._h11.receive_data(bytes(data))  # pipelined requests, for the next cycle
            budget -= len(data)

    # -- sending ---------------------------------------------------------------------------------------------

    async def _send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._deadline = trio.current_time() + self._limits.send_timeout_s
        self._expiry_is_408 = False
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _Close(f"send failed: {exc!r}") from exc
        finally:
            self._deadline = math.inf

    async def _write(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) <= _WRITE_SLICE_BYTES:
            await self._send_all(data)
            return
        view = memoryview(data)
        for start in range(0, len(view), _WRITE_SLICE_BYTES):
            await self._send_all(view[start : start + _WRITE_SLICE_BYTES])

    async def _write_parts(self, parts: Iterable[bytes | bytearray | memoryview]) -> None:
        parts = list(parts)
        if sum(len(part) for part in parts) <= _COALESCE_BYTES:
            await self._send_all(b"".join(parts))
            return
        for part in parts:
            if part:
                await self._write(part)

    async def _reject(self, status: int) -> None:
        """Send an error response and end the connection (after the watchdog is gone: own timeouts)."""
        assert not self._head_sent, "a rejection after the response head was sent"
        with trio.move_on_after(self._limits.send_timeout_s) as scope:
            try:
                await self._stream.send_all(_canned(status, with_body=self._method != "HEAD"))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
        if scope.cancelled_caught:
            return
        self._request_done(status)
        # Half-close, then drain: closing with unread input makes the kernel send a reset, which can destroy
        # the response before the client reads it.
        with trio.move_on_after(_LINGER_S):
            try:
                if isinstance(self._stream, trio.abc.HalfCloseableStream):
                    await self._stream.send_eof()
                drained = 0
                while drained < _LINGER_BYTES:
                    data = await self._stream.receive_some(_RECV_BYTES)
                    if not data:
                        break
                    drained += len(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    def _request_done(self, status: int) -> None:
        if self._metrics is None:
            return
        duration = None if self._started_at is None else trio.current_time() - self._started_at
        self._metrics.request_done(self._method, status, duration, self._body_bytes)


async def serve_connection(
    stream: trio.abc.Stream,
    handler: Handler,
    *,
    client: tuple[str, int],
    limits: HttpLimits = _DEFAULT_LIMITS,
    name: str = "http",
    metrics: HttpMetrics | None = None,
) -> None:
    """Serve HTTP/1.1 on one connection until it ends, then close ``stream``.

    Every client-caused end (close, reset, timeout, bad request) returns normally; only ``trio.Cancelled``
    (and our own bugs) propagate. ``client`` is the peer address handed to the handler and used in log lines.
    """
    bound = metrics._server(name) if metrics is not None else None
    if bound is not None:
        bound.connections.inc()
    try:
        await _Connection(stream, handler, client, limits, name, bound).serve()
    finally:
        if bound is not None:
            bound.connections.dec()
        await trio.aclose_forcefully(stream)


def _bind_error(name: str, host: str, port: int, exc: OSError) -> HttpBindError:
    return HttpBindError(bind_error_message(name, host, port, exc))


async def serve_http(
    handler: Handler,
    host: str,
    port: int,
    *,
    limits: HttpLimits = _DEFAULT_LIMITS,
    name: str = "http",
    metrics: HttpMetrics | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve HTTP/1.1 on ``host:port`` until cancelled.

    ``port`` 0 picks a free port (if ``host`` resolves to several addresses, only the first is bound, so
    there is one port to report). Calls ``task_status.started((bound_host, bound_port))`` once listening.
    ``name`` labels metrics and log lines.

    Raises:
        HttpBindError: can't bind (port in use, address not local, no permission, host unresolvable).
    """
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise _bind_error(name, host, port, exc) from exc
    if port == 0:
        for extra in listeners[1:]:
            extra.socket.close()
        del listeners[1:]
    sockname = listeners[0].socket.getsockname()
    bound = (str(sockname[0]), int(sockname[1]))
    slots = trio.Semaphore(limits.max_connections)

    async def serve_one(stream: trio.SocketStream) -> None:
        try:
            try:
                peer = stream.socket.getpeername()
                if limits.notsent_lowat_bytes and _TCP_NOTSENT_LOWAT is not None:
                    stream.setsockopt(trio.socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, limits.notsent_lowat_bytes)
            except OSError as exc:  # the peer already reset the connection
                logger.debug("%s: connection lost before serving it: %r", name, exc)
                return
            client = (str(peer[0]), int(peer[1]))
            await serve_connection(stream, handler, client=client, limits=limits, name=name, metrics=metrics)
        except Exception:
            # One client must not be able to stop the node through a bug of ours: log, drop the connection.
            logger.exception("%s: connection task failed", name)
        finally:
            slots.release()
            await trio.aclose_forcefully(stream)

    async def accept_loop(listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                await slots.acquire()
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    slots.release()
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    logger.error("%s: accept failed (%s); retrying in %s s", name, exc, _ACCEPT_RETRY_S)
                    await trio.sleep(_ACCEPT_RETRY_S)
                    continue
                except BaseException:
                    slots.release()
                    raise
                nursery.start_soon(serve_one, stream)

    try:
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(accept_loop, listener, nursery)
            logger.debug("%s: listening on %s", name, join_host_port(*bound))
            task_status.started(bound)
    finally:
        for listener in listeners:
            listener.socket.close()
