"""A minimal async JSON-RPC 2.0 client over HTTP/1.1 (trio + h11), for tools and benchmarks (``bench/``).

Nodes never call each other's RPC: between nodes there is only the pool (transactions over the TXS scope, blocks over
SYNC). One request per connection; every call has a deadline and a response size limit.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import h11
import trio

from lightning.errors import LightningError

__all__ = ["RpcCallError", "RpcClientError", "rpc_request"]

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class RpcClientError(LightningError):
    """The remote node could not be reached or did not answer with JSON-RPC."""


class RpcCallError(RpcClientError):
    """The remote node answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.remote_message = message
        self.data = data


async def rpc_request(url: str, method: str, params: list[Any] | dict[str, Any], *, timeout_s: float = 10.0) -> Any:
    """Call ``method`` at ``url``; return its result. Raises :class:`RpcClientError` / :class:`RpcCallError`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise RpcClientError(f"{url}: only http:// URLs are supported")
    host, port = parts.hostname, parts.port or 80
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                return _parse(url, await _exchange(stream, parts.netloc, parts.path or "/", body))
    except trio.TooSlowError:
        raise RpcClientError(f"{url}: no answer to {method} within {timeout_s} s") from None
    except OSError as exc:
        raise RpcClientError(f"{url}: {exc.strerror or exc}") from None
    except h11.ProtocolError as exc:
        raise RpcClientError(f"{url}: bad HTTP answer ({exc})") from None


async def rpc_batch(
    url: str, calls: list[tuple[str, list[Any]]], *, timeout_s: float = 10.0
) -> list[Any | RpcCallError]:
    """Several calls in one JSON-RPC batch request; per call its result or its :class:`RpcCallError`, in order.

    Raises :class:`RpcClientError` when the request itself fails."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise RpcClientError(f"{url}: only http:// URLs are supported")
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    ).encode()
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(parts.hostname, parts.port or 80)
            async with stream:
                raw = await _exchange(stream, parts.netloc, parts.path or "/", body)
    except trio.TooSlowError:
        raise RpcClientError(f"{url}: no answer to a batch of {len(calls)} within {timeout_s} s") from None
    except OSError as exc:
        raise RpcClientError(f"{url}: {exc.strerror or exc}") from None
    except h11.ProtocolError as exc:
        raise RpcClientError(f"{url}: bad HTTP answer ({exc})") from None
    try:
        answers = json.loads(raw)
    except ValueError:
        raise RpcClientError(f"{url}: answer is not JSON") from None
    if not isinstance(answers, list):
        raise RpcClientError(f"{url}: a batch answer must be a list")
    by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
    out: list[Any | RpcCallError] = []
    for i in range(len(calls)):
        answer = by_id.get(i)
        if answer is None:
            raise RpcClientError(f"{url}: batch answer lacks call {i}")
        if "error" in answer:
            err = answer["error"] if isinstance(answer["error"], dict) else {}
            out.append(RpcCallError(int(err.get("code", 0)), str(err.get("message", "")), err.get("data")))
        else:
            out.append(answer.get("result"))
    return out


async def _exchange(stream: trio.SocketStream, netloc: str, path: str, body: bytes) -> bytes:
    conn = h11.Connection(h11.CLIENT)
    headers = [
        ("host", netloc),
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("connection", "close"),
    ]
    out = b"".join(
        conn.send(event) or b""
        for event in (h11.Request(method="POST", target=path, headers=headers), h11.Data(data=body), h11.EndOfMessage())
    )
    await stream.send_all(out)
    status = 0
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_RESPONSE_BYTES:
                raise RpcClientError(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    if status != 200:
        raise RpcClientError(f"HTTP status {status}")
    return b"".join(chunks)


def _parse(url: str, raw: bytes) -> Any:
    try:
        answer = json.loads(raw)
    except ValueError:
        raise RpcClientError(f"{url}: answer is not JSON") from None
    if not isinstance(answer, dict):
        raise RpcClientError(f"{url}: answer is not a JSON-RPC response")
    if "error" in answer:
        err = answer["error"] if isinstance(answer["error"], dict) else {}
        raise RpcCallError(int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
    if "result" not in answer:
        raise RpcClientError(f"{url}: answer has neither result nor error")
    return answer["result"]
