"""The trio + h11 HTTP server.

Protocol behaviour runs over real loopback sockets (port 0 on 127.0.0.1), checked byte-exactly with an h11 client;
timeouts run over in-memory streams under trio's autojump MockClock, so no test sleeps or measures real time.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from collections.abc import Iterable
from typing import Any

import h11
import httpx
import prometheus_client
import pytest
import trio
import trio.testing

from lightning.http import (
    Handler,
    HttpBindError,
    HttpLimits,
    HttpMetrics,
    Request,
    Response,
    serve_connection,
    serve_http,
)

CLIENT = ("10.0.0.7", 40000)
BIG = random.Random(4220).randbytes(8 * 1024 * 1024)


class TrackedBody:
    """A streamed response body that records whether it was iterated and closed; may block after its chunks."""

    def __init__(self, chunks: Iterable[bytes] = (), *, then_block: bool = False, then_fail: bool = False):
        self._chunks = iter(chunks)
        self._then_block = then_block
        self._then_fail = then_fail
        self.iterated = False
        self.yielded = 0
        self.closed = trio.Event()

    def __aiter__(self) -> TrackedBody:
        return self

    async def __anext__(self) -> bytes:
        self.iterated = True
        await trio.lowlevel.checkpoint()
        chunk = next(self._chunks, None)
        if chunk is not None:
            self.yielded += len(chunk)
            return chunk
        if self._then_block:
            await trio.sleep_forever()
        if self._then_fail:
            raise RuntimeError("origin went away")
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed.set()


async def app(request: Request) -> Response:
    if request.path == "/hello":
        return Response.text("hello")
    if request.path == "/echo":
        return Response(200, [("content-type", "application/octet-stream")], request.body)
    if request.path.startswith("/info"):
        return Response.json(
            {
                "method": request.method,
                "target": request.target,
                "path": request.path,
                "query": request.query,
                "x-test": request.header("X-Test"),
                "missing": request.header("x-missing", "dflt"),
                "client": list(request.client),
            }
        )
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    if request.path == "/big-bytes":
        return Response(200, body=BIG)
    if request.path in ("/big-stream", "/big-stream-sized"):
        chunks = (BIG[i : i + 65536] for i in range(0, len(BIG), 65536))
        sized = request.path == "/big-stream-sized"
        return Response(200, body=TrackedBody(chunks), content_length=len(BIG) if sized else None)
    return Response.text("not found\n", status=404)


class RawClient:
    """HTTP/1.1 over one trio stream, framed and parsed by an h11 client so tests see exact protocol events."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        self.informational: list[h11.InformationalResponse] = []

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> RawClient:
        return cls(await trio.open_tcp_stream(*address))

    def encode(self, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> bytes:
        all_headers = [("host", "test"), *headers]
        if body:
            all_headers.append(("content-length", str(len(body))))
        data = self.conn.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            data += self.conn.send(h11.Data(data=body))
        return data + self.conn.send(h11.EndOfMessage())

    async def send_request(
        self, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> None:
        await self.stream.send_all(self.encode(method, target, headers, body))

    async def next_event(self) -> object:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(bytes(await self.stream.receive_some(65536)))

    async def read_response(self) -> tuple[h11.Response, bytes]:
        response: h11.Response | None = None
        body = bytearray()
        while True:
            event = await self.next_event()
            if isinstance(event, h11.InformationalResponse):
                self.informational.append(event)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
                    self.conn.start_next_cycle()
                return response, bytes(body)
            else:
                raise AssertionError(f"unexpected {event!r}")

    async def request(
        self, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> tuple[h11.Response, bytes]:
        await self.send_request(method, target, headers, body)
        return await self.read_response()

    async def read_to_eof(self) -> bytes:
        chunks = []
        while data := await self.stream.receive_some(65536):
            chunks.append(data)
        return b"".join(chunks)


def header(response: h11.Response, name: bytes) -> bytes | None:
    return next((value for key, value in response.headers if key == name), None)


async def start_server(nursery: trio.Nursery, handler: Handler = app, **kwargs: Any) -> tuple[str, int]:
    address: tuple[str, int] = await nursery.start(functools.partial(serve_http, handler, "127.0.0.1", 0, **kwargs))
    return address


def start_connection(nursery: trio.Nursery, handler: Handler = app, **kwargs: Any) -> RawClient:
    """serve_connection on one end of an in-memory stream pair; returns a client on the other end."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(functools.partial(serve_connection, server_stream, handler, client=CLIENT, **kwargs))
    return RawClient(client_stream)


# -- requests and responses over loopback ---------------------------------------------------------------------


async def test_get_head_and_json_with_httpx(nursery: trio.Nursery) -> None:
    host, port = await start_server(nursery)
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        r = await client.get("/hello")
        assert (r.status_code, r.text, r.headers["content-type"]) == (200, "hello", "text/plain; charset=utf-8")
        assert r.headers["server"] == "lightning-py" and r.headers["date"].endswith(" GMT")
        r = await client.head("/hello")
        assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "5")
        r = await client.get("/info/a%20b/%E2%9C%93", params=[("x", "1"), ("x", "2"), ("y", "")])
        info = r.json()
        assert info["path"] == "/info/a b/✓"
        assert info["target"] == "/info/a%20b/%E2%9C%93?x=1&x=2&y="
        assert info["query"] == {"x": ["1", "2"], "y": [""]}
        assert info["client"][0] == "127.0.0.1"
        r = await client.post("/echo", content=b"payload")
        assert (r.status_code, r.content) == (200, b"payload")
        r = await client.get("/nope")
        assert r.status_code == 404


async def test_request_fields(nursery: trio.Nursery) -> None:
    client = start_connection(nursery)
    response, body = await client.request("GET", "/info?q=a+b", [("X-Test", "v1"), ("x-test", "v2")])
    info = json.loads(body)
    assert response.status_code == 200 and header(response, b"content-type") == b"application/json"
    assert info == {
        "method": "GET",
        "target": "/info?q=a+b",
        "path": "/info",
        "query": {"q": ["a b"]},
        "x-test": "v1",
        "missing": "dflt",
        "client": list(CLIENT),
    }


async def test_absolute_form_target(nursery: trio.Nursery) -> None:
    client = start_connection(nursery)
    _, body = await client.request("GET", "http://example.org/info/a%20b?x=1")
    info = json.loads(body)
    assert (info["path"], info["query"]) == ("/info/a b", {"x": ["1"]})


async def test_keep_alive_and_pipelining_on_one_connection(nursery: trio.Nursery) -> None:
    seen: list[tuple[str, int]] = []

    async def handler(request: Request) -> Response:
        seen.append(request.client)
        return await app(request)

    client = await RawClient.connect(await start_server(nursery, handler))
    for _ in range(3):
        response, body = await client.request("GET", "/hello")
        assert (response.status_code, body) == (200, b"hello")
    # Two requests in one write: both answered in order on the same connection.
    first = client.encode("GET", "/hello")
    second = h11.Connection(h11.CLIENT)
    second_bytes = second.send(
        h11.Request(method="POST", target="/echo", headers=[("host", "t"), ("content-length", "3")])
    )
    second_bytes += second.send(h11.Data(data=b"abc")) + second.send(h11.EndOfMessage())
    await client.stream.send_all(first + second_bytes)
    response, body = await client.read_response()
    assert (response.status_code, body) == (200, b"hello")
    client.encode("POST", "/echo", body=b"abc")  # keeps our h11 client's state in step with what was sent
    response, body = await client.read_response()
    assert (response.status_code, body) == (200, b"abc")
    assert len(seen) == 5 and len(set(seen)) == 1


async def test_connection_close_and_http_1_0(nursery: trio.Nursery) -> None:
    address = await start_server(nursery)
    client = await RawClient.connect(address)
    response, body = await client.request("GET", "/hello", [("connection", "close")])
    assert (response.status_code, body, header(response, b"connection")) == (200, b"hello", b"close")
    assert await client.read_to_eof() == b""

    stream = await trio.open_tcp_stream(*address)
    await stream.send_all(b"GET /hello HTTP/1.0\r\n\r\n")
    raw = RawClient(stream)
    raw_bytes = await raw.read_to_eof()
    assert raw_bytes.startswith(b"HTTP/1.1 200 OK\r\n") and raw_bytes.endswith(b"\r\n\r\nhello")

    # HTTP/1.0 and a body of unknown length: delimited by closing the connection.
    stream = await trio.open_tcp_stream(*address)
    await stream.send_all(b"GET /big-stream HTTP/1.0\r\n\r\n")
    raw_bytes = await RawClient(stream).read_to_eof()
    head, _, body = raw_bytes.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and body == BIG


@pytest.mark.parametrize("target", ["/big-stream", "/big-stream-sized", "/big-bytes"])
async def test_large_body_delivered_whole(nursery: trio.Nursery, target: str) -> None:
    client = await RawClient.connect(await start_server(nursery))
    response, body = await client.request("GET", target)
    assert response.status_code == 200 and body == BIG
    if target == "/big-stream":
        assert header(response, b"transfer-encoding") == b"chunked"
    else:
        assert header(response, b"content-length") == str(len(BIG)).encode()
    response, body = await client.request("GET", "/hello")  # the connection is still in step
    assert body == b"hello"


async def test_head_with_streamed_body_closes_it_without_iterating(nursery: trio.Nursery) -> None:
    bodies: list[TrackedBody] = []

    async def handler(request: Request) -> Response:
        bodies.append(TrackedBody([b"x" * 1234]))
        return Response(200, [("content-type", "video/mp4")], bodies[-1], content_length=1234)

    client = await RawClient.connect(await start_server(nursery, handler))
    response, body = await client.request("HEAD", "/video")
    assert (response.status_code, body, header(response, b"content-length")) == (200, b"", b"1234")
    assert bodies[0].closed.is_set() and not bodies[0].iterated
    response, body = await client.request("GET", "/video")  # and the connection is reusable
    assert response.status_code == 200


async def test_head_of_a_bytes_response_keeps_content_length(nursery: trio.Nursery) -> None:
    async def handler(request: Request) -> Response:
        return Response(200, body=b"", content_length=99) if request.method == "HEAD" else Response(200, body=b"x")

    client = start_connection(nursery, handler)
    response, body = await client.request("HEAD", "/")
    assert (body, header(response, b"content-length")) == (b"", b"99")
    response, body = await client.request("GET", "/")
    assert (body, header(response, b"content-length")) == (b"x", b"1")


# -- limits and errors -----------------------------------------------------------------------------------------


async def test_request_body_too_large_is_413_before_reading_it(nursery: trio.Nursery) -> None:
    address = await start_server(nursery, limits=HttpLimits(max_body_bytes=1024))
    client = await RawClient.connect(address)
    # Announced too large: answered without waiting for (or asking, with 100-continue, for) the body.
    await client.stream.send_all(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 2048\r\nexpect: 100-continue\r\n\r\n"
    )
    raw = await client.read_to_eof()
    assert raw.startswith(b"HTTP/1.1 413 Content Too Large\r\n") or raw.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in raw and b"100 Continue" not in raw

    # Chunked, found too large while reading.
    client = await RawClient.connect(address)
    await client.stream.send_all(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n" + b"400\r\n" + b"a" * 1024 + b"\r\n"
        b"1\r\nb\r\n0\r\n\r\n"
    )
    assert (await client.read_to_eof()).startswith(b"HTTP/1.1 413 ")

    # Exactly at the limit is fine.
    client = await RawClient.connect(address)
    response, body = await client.request("POST", "/echo", body=b"z" * 1024)
    assert (response.status_code, len(body)) == (200, 1024)


async def test_expect_100_continue(nursery: trio.Nursery) -> None:
    client = await RawClient.connect(await start_server(nursery))
    conn = client.conn
    data = conn.send(
        h11.Request(
            method="POST",
            target="/echo",
            headers=[("host", "t"), ("content-length", "5"), ("expect", "100-continue")],
        )
    )
    await client.stream.send_all(data)
    event = await client.next_event()
    assert isinstance(event, h11.InformationalResponse) and event.status_code == 100
    await client.stream.send_all(conn.send(h11.Data(data=b"hello")) + conn.send(h11.EndOfMessage()))
    response, body = await client.read_response()
    assert (response.status_code, body) == (200, b"hello")


async def test_too_many_headers_is_431(nursery: trio.Nursery) -> None:
    client = await RawClient.connect(await start_server(nursery, limits=HttpLimits(max_headers=5)))
    await client.stream.send_all(
        b"GET / HTTP/1.1\r\nhost: t\r\n" + b"".join(b"x-%d: v\r\n" % i for i in range(5)) + b"\r\n"
    )
    assert (await client.read_to_eof()).startswith(b"HTTP/1.1 431 ")


@pytest.mark.parametrize("complete", [True, False])
async def test_too_long_head_is_431(nursery: trio.Nursery, complete: bool) -> None:
    client = start_connection(nursery, limits=HttpLimits(max_head_bytes=4096))
    head = b"GET / HTTP/1.1\r\nhost: t\r\nx-big: " + b"v" * 5000 + b"\r\n"
    # Complete in one read (our own check) or still incomplete past the limit (h11's check).
    await client.stream.send_all(head + b"\r\n" if complete else head)
    assert (await client.read_to_eof()).startswith(b"HTTP/1.1 431 ")


@pytest.mark.parametrize(
    "raw",
    [
        b"NOT A REQUEST\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: nope\r\n\r\n",
        b"GET http://[::1/x HTTP/1.1\r\nhost: t\r\n\r\n",  # absolute-form that can't be split
    ],
)
async def test_malformed_request_is_400(nursery: trio.Nursery, raw: bytes) -> None:
    client = await RawClient.connect(await start_server(nursery))
    await client.stream.send_all(raw)
    response = await client.read_to_eof()
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert response.endswith(b"\r\n\r\nBad Request\n")


async def test_handler_exception_is_500_then_close(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    client = await RawClient.connect(await start_server(nursery))
    response, _ = await client.request("GET", "/hello")
    assert response.status_code == 200
    with caplog.at_level(logging.ERROR, logger="lightning.http.server"):
        await client.send_request("GET", "/boom")
        raw = await client.read_to_eof()
    assert raw.startswith(b"HTTP/1.1 500 Internal Server Error\r\n") and b"connection: close" in raw
    assert any("handler failed on GET /boom" in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    "bad",
    [
        Response(200, [("x-bad", "line\r\nbreak")]),
        Response(200, body=b"abc", content_length=4),
        Response(204, body=b"not allowed"),
        Response(200, [("x-bad", "☃")]),
    ],
)
async def test_invalid_response_is_500(nursery: trio.Nursery, bad: Response) -> None:
    async def handler(request: Request) -> Response:
        return bad

    client = start_connection(nursery, handler)
    await client.send_request("GET", "/")
    assert (await client.read_to_eof()).startswith(b"HTTP/1.1 500 ")


async def test_streamed_body_error_aborts_the_connection(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    body = TrackedBody([b"a" * 1000], then_fail=True)

    async def handler(request: Request) -> Response:
        return Response(200, body=body, content_length=2000)

    client = await RawClient.connect(await start_server(nursery, handler))
    with caplog.at_level(logging.ERROR, logger="lightning.http.server"):
        await client.send_request("GET", "/")
        with pytest.raises(h11.RemoteProtocolError):
            await client.read_response()
    assert body.closed.is_set()
    assert any("failed after 1000 bytes" in r.getMessage() for r in caplog.records)


async def test_no_content_response_has_no_length(nursery: trio.Nursery) -> None:
    async def handler(request: Request) -> Response:
        return Response(204)

    client = start_connection(nursery, handler)
    response, body = await client.request("GET", "/")
    assert (response.status_code, body, header(response, b"content-length")) == (204, b"", None)


# -- timeouts (in-memory streams, virtual time) ----------------------------------------------------------------


async def test_slow_request_head_is_408(autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    client = start_connection(nursery, limits=HttpLimits(header_timeout_s=10))
    start = trio.current_time()
    await client.stream.send_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n")
    raw = await client.read_to_eof()
    assert raw.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert 10 <= trio.current_time() - start <= 11  # timeouts fire within a watchdog tick (1 s)


async def test_silent_connection_is_closed_without_a_response(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    client = start_connection(nursery, limits=HttpLimits(header_timeout_s=10, idle_timeout_s=60))
    start = trio.current_time()
    assert await client.read_to_eof() == b""
    assert 10 <= trio.current_time() - start <= 11  # timeouts fire within a watchdog tick (1 s)


async def test_idle_keep_alive_connection_is_closed(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    client = start_connection(nursery, limits=HttpLimits(header_timeout_s=10, idle_timeout_s=60))
    response, _ = await client.request("GET", "/hello")
    assert response.status_code == 200
    start = trio.current_time()
    assert await client.read_to_eof() == b""
    assert 60 <= trio.current_time() - start <= 61


async def test_keep_alive_head_timeout_starts_at_first_byte(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    client = start_connection(nursery, limits=HttpLimits(header_timeout_s=10, idle_timeout_s=60))
    await client.request("GET", "/hello")
    await trio.sleep(20)  # virtual: idle, well within idle_timeout_s
    start = trio.current_time()
    await client.stream.send_all(b"GET /hel")
    assert (await client.read_to_eof()).startswith(b"HTTP/1.1 408 ")
    assert 10 <= trio.current_time() - start <= 11  # timeouts fire within a watchdog tick (1 s)


async def test_slow_request_body_is_408(autojump_clock: trio.testing.MockClock, nursery: trio.Nursery) -> None:
    client = start_connection(nursery, limits=HttpLimits(body_timeout_s=30))
    await client.stream.send_all(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc")
    assert (await client.read_to_eof()).startswith(b"HTTP/1.1 408 ")


async def test_client_that_stops_reading_is_dropped(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    body = TrackedBody([b"x" * 65536] * 100)

    async def handler(request: Request) -> Response:
        return Response(200, body=body)

    client_stream, server_stream = trio.testing.lockstep_stream_pair()  # no buffering: writes wait for reads
    done = trio.Event()

    async def serve() -> None:
        await serve_connection(server_stream, handler, client=CLIENT, limits=HttpLimits(send_timeout_s=60))
        done.set()

    nursery.start_soon(serve)
    await client_stream.send_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
    await client_stream.receive_some(100)  # then never read again
    await done.wait()
    assert body.closed.is_set() and body.yielded < 100 * 65536


# -- the client leaves during a streamed body ------------------------------------------------------------------


async def test_disconnect_while_body_waits_closes_it(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    body = TrackedBody([b"first chunk"], then_block=True)  # e.g. waiting on a slow origin

    async def handler(request: Request) -> Response:
        return Response(200, body=body)

    client = start_connection(nursery, handler)
    await client.send_request("GET", "/")
    assert isinstance(await client.next_event(), h11.Response)
    assert isinstance(await client.next_event(), h11.Data)
    await client.stream.aclose()
    with trio.fail_after(1000):  # virtual time: fails fast instead of hanging if aclose never comes
        await body.closed.wait()


async def test_disconnect_over_loopback_closes_the_body(nursery: trio.Nursery) -> None:
    body = TrackedBody(b"y" * 65536 for _ in range(1_000_000))

    async def handler(request: Request) -> Response:
        return Response(200, body=body)

    client = await RawClient.connect(await start_server(nursery, handler))
    await client.send_request("GET", "/")
    await client.stream.receive_some(65536)
    await client.stream.aclose()
    with trio.fail_after(30):  # a hang guard, not a timing assertion
        await body.closed.wait()


async def test_cancellation_is_not_swallowed(nursery: trio.Nursery) -> None:
    entered = trio.Event()
    cancelled = False

    async def handler(request: Request) -> Response:
        nonlocal cancelled
        entered.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled = True
            raise
        raise AssertionError("unreachable")

    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = RawClient(client_stream)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as inner:
            inner.start_soon(functools.partial(serve_connection, server_stream, handler, client=CLIENT))
            await client.send_request("GET", "/")
            await entered.wait()
            scope.cancel()
    assert scope.cancelled_caught and cancelled
    assert await client.read_to_eof() == b""  # no 500 for a cancellation


# -- serve_http: binding, connection limit, metrics -------------------------------------------------------------


async def test_port_in_use_is_a_bind_error() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    try:
        with pytest.raises(HttpBindError, match=rf"rpc: cannot listen on 127\.0\.0\.1:{port}: .*already in use"):
            await serve_http(app, "127.0.0.1", port, name="rpc")
    finally:
        await listeners[0].aclose()


async def test_address_not_local_is_a_bind_error() -> None:
    with pytest.raises(HttpBindError, match=r"192\.0\.2\.1:4220"):
        await serve_http(app, "192.0.2.1", 4220)


async def test_max_connections_makes_new_connections_wait(nursery: trio.Nursery) -> None:
    served: list[tuple[str, int]] = []

    async def handler(request: Request) -> Response:
        served.append(request.client)
        return Response.text("ok")

    address = await start_server(nursery, handler, limits=HttpLimits(max_connections=1))
    first = await RawClient.connect(address)
    await first.request("GET", "/")
    second = await RawClient.connect(address)  # completes in the kernel's backlog
    await second.send_request("GET", "/")
    await trio.testing.wait_all_tasks_blocked()
    assert len(served) == 1
    await first.stream.aclose()
    response, body = await second.read_response()
    assert (response.status_code, body, len(served)) == (200, b"ok", 2)


async def test_metrics(nursery: trio.Nursery) -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = HttpMetrics(registry)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"server": "rpc", **labels})

    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = RawClient(client_stream)
    async with trio.open_nursery() as inner:
        inner.start_soon(
            functools.partial(serve_connection, server_stream, app, client=CLIENT, name="rpc", metrics=metrics)
        )
        await client.request("GET", "/hello")
        await client.request("GET", "/hello")
        await client.request("HEAD", "/hello")
        await client.request("GET", "/missing")
        await client.request("GET", "/big-stream")
        assert sample("lightning_http_connections") == 1
        await client.stream.send_all(b"BREW /pot HTTP/1.1\r\n\r\n")  # no Host: 400, counted as "other"
        await client.read_to_eof()
    assert sample("lightning_http_connections") == 0
    assert sample("lightning_http_requests_total", method="GET", status="200") == 3
    assert sample("lightning_http_requests_total", method="HEAD", status="200") == 1
    assert sample("lightning_http_requests_total", method="GET", status="404") == 1
    assert sample("lightning_http_requests_total", method="other", status="400") == 1
    assert sample("lightning_http_request_duration_seconds_count") == 5  # not the 400: it has no complete head
    assert sample("lightning_http_response_body_bytes_total") == 5 + 5 + len("not found\n") + len(BIG)

    # Through serve_http, on its own label, on the same collectors.
    client = await RawClient.connect(await start_server(nursery, name="client", metrics=metrics))
    await client.request("GET", "/hello")
    # A request is counted after its last byte is written, so the client may see the response first; the
    # server reads the next request only after counting the previous one.
    await client.request("GET", "/missing")
    value = registry.get_sample_value(
        "lightning_http_requests_total", {"server": "client", "method": "GET", "status": "200"}
    )
    assert value == 1


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        HttpLimits(max_connections=0)
    with pytest.raises(ValueError, match="header_timeout_s"):
        HttpLimits(header_timeout_s=0)


def test_response_helpers() -> None:
    r = Response.json({"a": [1, "é"]}, status=201)
    assert (r.status, r.headers, r.body) == (201, [("content-type", "application/json")], '{"a":[1,"é"]}'.encode())
    r = Response.text("hi", status=503, content_type="text/html")
    assert (r.status, r.headers, r.body) == (503, [("content-type", "text/html")], b"hi")
