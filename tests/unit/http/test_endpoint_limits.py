"""Both HTTP endpoints serve with the limits of their own config table ([http], [rpc])."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import prometheus_client
import pytest
import trio

from lightning.http.config import HttpConfig, HttpLimits
from lightning.http.endpoint import ClientEndpoint
from lightning.rpc.config import RpcConfig
from lightning.rpc.endpoint import RpcEndpoint
from lightning.rpc.jsonrpc import Dispatcher


def _health() -> dict[str, str]:
    return {"status": "ok"}


def client_endpoint(**limits: int) -> ClientEndpoint:
    return ClientEndpoint(HttpConfig(port=0, **limits), host="127.0.0.1", health=_health)


def rpc_endpoint(**limits: int) -> RpcEndpoint:
    return RpcEndpoint(
        RpcConfig(port=0, **limits),
        host="127.0.0.1",
        dispatcher=Dispatcher(),
        registry=prometheus_client.CollectorRegistry(),
        health=_health,
    )


async def status_of(address: tuple[str, int], request: bytes) -> bytes:
    stream = await trio.open_tcp_stream(*address)
    async with stream:
        await stream.send_all(request)
        reply = b""
        while b"\r\n" not in reply:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            reply += chunk
    return reply.split(b" ", 2)[1]


@pytest.mark.parametrize("make", [client_endpoint, rpc_endpoint])
async def test_endpoints_enforce_their_tables_limits(
    nursery: trio.Nursery, make: Callable[..., ClientEndpoint | RpcEndpoint]
) -> None:
    endpoint = make(max_body_bytes=64, max_headers=3)
    address = await nursery.start(endpoint.run)
    post = b"POST /rpc/v0 HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n" + b"x" * 100
    assert await status_of(address, post) == b"413"
    many = b"GET /health HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(4)) + b"\r\n"
    assert await status_of(address, many) == b"431"
    assert await status_of(address, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n") == b"200"


def test_both_tables_carry_every_http_limit_with_the_servers_defaults() -> None:
    limits = {f.name: getattr(HttpLimits(), f.name) for f in dataclasses.fields(HttpLimits)}
    assert len(limits) == 9
    for config in (HttpConfig(), RpcConfig()):
        assert {name: getattr(config, name) for name in limits} == limits
        assert all(f.metadata.get("doc") for f in dataclasses.fields(config)), "every key documents itself"
