import json

from lightning.rpc import Dispatcher, RpcError, is_loopback


def make():
    d = Dispatcher()

    async def add(a, b):
        return a + b

    async def fail():
        raise RpcError(-32010, "nope", {"why": "test"})

    async def secret():
        return "s3cret"

    d.add("add", add)
    d.add("fail", fail)
    d.add("admin_secret", secret, admin=True)
    return d


async def call(d, body, host="127.0.0.1"):
    out = await d.handle(json.dumps(body).encode() if not isinstance(body, bytes) else body, host)
    return None if out is None else json.loads(out)


async def test_call_positional_and_named():
    d = make()
    assert await call(d, {"jsonrpc": "2.0", "id": 1, "method": "add", "params": [1, 2]}) == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": 3,
    }
    assert (await call(d, {"jsonrpc": "2.0", "id": "x", "method": "add", "params": {"a": 1, "b": 5}}))["result"] == 6


async def test_errors():
    d = make()
    assert (await call(d, b"{nope"))["error"]["code"] == -32700
    assert (await call(d, {"id": 1, "method": "add"}))["error"]["code"] == -32600
    assert (await call(d, {"jsonrpc": "2.0", "id": 1, "method": "nope"}))["error"]["code"] == -32601
    assert (await call(d, {"jsonrpc": "2.0", "id": 1, "method": "add", "params": [1]}))["error"]["code"] == -32602
    err = (await call(d, {"jsonrpc": "2.0", "id": 1, "method": "fail"}))["error"]
    assert err == {"code": -32010, "message": "nope", "data": {"why": "test"}}


async def test_notifications_and_batches():
    d = make()
    assert await call(d, {"jsonrpc": "2.0", "method": "add", "params": [1, 2]}) is None
    out = await call(
        d,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "add", "params": [1, 1]},
            {"jsonrpc": "2.0", "method": "add", "params": [1, 1]},
            {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        ],
    )
    assert [a["id"] for a in out] == [1, 2]
    assert (await call(d, []))["error"]["code"] == -32600


async def test_admin_methods_loopback_only():
    d = make()
    req = {"jsonrpc": "2.0", "id": 1, "method": "admin_secret"}
    assert (await call(d, req, "127.0.0.1"))["result"] == "s3cret"
    assert (await call(d, req, "127.0.0.9"))["result"] == "s3cret"
    assert (await call(d, req, "::1"))["result"] == "s3cret"
    assert (await call(d, req, "10.0.0.5"))["error"]["code"] == -32001
    assert (await call(d, req, "::ffff:8.8.8.8"))["error"]["code"] == -32001


def test_is_loopback():
    assert is_loopback("127.1.2.3") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.168.1.1") and not is_loopback("garbage")
