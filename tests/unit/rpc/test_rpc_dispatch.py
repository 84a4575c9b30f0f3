"""The dispatcher's parameter checks (messages naming the parameter, never a Python signature), the documentation it
reads from handlers, and the OpenRPC document it serves at ``rpc.discover``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lightning.rpc import Dispatcher
from lightning.rpc.jsonrpc import json_type_text, parse_docstring, schema_of


async def publish(text: str, to: str | None = None) -> dict[str, Any]:
    """Publish a debug message.

    A longer description
    over two lines.

    Args:
        text: the message
        to: a node id; omit to send it
            to every node
    Returns: {digest}.
    """
    return {"text": text, "to": to}


async def fetch(root: str, peer: str | list[str] | None = None, pin: bool = False, epoch: int | None = None) -> str:
    """Fetch.

    Args:
        root: a root
        peer: one or several peers
        pin: keep it
        epoch: an epoch
    Returns: the root.
    """
    return root


async def buggy() -> int:
    """A handler with a bug of its own.

    Returns: never.
    """
    return len(5)  # type: ignore[arg-type]  # the TypeError a bug raises inside a handler


def make() -> Dispatcher:
    d = Dispatcher()
    d.add("admin_broadcast_debug", publish, admin=True)
    d.add("fetch", fetch)
    d.add("buggy", buggy)
    return d


async def call(d: Dispatcher, method: str, params: Any) -> dict[str, Any]:
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode()
    answer = await d.handle(body, "127.0.0.1")
    assert answer is not None
    return dict(json.loads(answer))


@pytest.mark.parametrize(
    ("method", "params", "message", "param"),
    [
        (
            "admin_broadcast_debug",
            [],
            "invalid params: missing param 'text' (admin_broadcast_debug takes text, to?)",
            "text",
        ),
        (
            "admin_broadcast_debug",
            {"to": "ab"},
            "invalid params: missing param 'text' (admin_broadcast_debug takes text, to?)",
            "text",
        ),
        (
            "admin_broadcast_debug",
            ["hi", None, 3],
            "invalid params: 3 given, but admin_broadcast_debug takes text, to?",
            None,
        ),
        (
            "admin_broadcast_debug",
            {"text": "hi", "too": "ab"},
            "invalid params: unknown param 'too' (admin_broadcast_debug takes text, to?)",
            "too",
        ),
        (
            "admin_broadcast_debug",
            [5],
            "invalid params: param 'text' must be a string, got the number 5",
            "text",
        ),
        (
            "admin_broadcast_debug",
            ["hi", ["ab"]],
            "invalid params: param 'to' must be a string or null, got an array",
            "to",
        ),
        (
            "fetch",
            ["ab", [1]],
            "invalid params: param 'peer' must be a string, an array of strings or null, got an array",
            "peer",
        ),
        ("fetch", ["ab", None, 1], "invalid params: param 'pin' must be a boolean, got the number 1", "pin"),
        (
            "fetch",
            ["ab", None, False, True],
            "invalid params: param 'epoch' must be an integer or null, got a boolean",
            "epoch",
        ),
        ("fetch", "ab", "invalid params: params must be an array or an object", None),
        ("buggy", [1], "invalid params: 1 given, but buggy takes no params", None),
    ],
)
async def test_invalid_params_name_the_parameter(method: str, params: Any, message: str, param: str | None) -> None:
    err = (await call(make(), method, params))["error"]
    assert err["code"] == -32602
    assert err["message"] == message
    assert err.get("data") == (None if param is None else {"param": param})
    assert "positional argument" not in err["message"] and "()" not in err["message"]


async def test_valid_calls_by_position_and_by_name() -> None:
    d = make()
    assert (await call(d, "admin_broadcast_debug", ["hi"]))["result"] == {"text": "hi", "to": None}
    assert (await call(d, "admin_broadcast_debug", {"to": "ab", "text": "hi"}))["result"] == {"text": "hi", "to": "ab"}
    assert (await call(d, "fetch", ["ab", ["n@h:1", "m@h:2"], True, None]))["result"] == "ab"
    assert (await call(d, "fetch", {"root": "ab", "peer": "n@h:1"}))["result"] == "ab"


async def test_a_type_error_inside_a_handler_is_not_blamed_on_the_caller() -> None:
    with pytest.raises(TypeError):
        await call(make(), "buggy", [])


def test_documentation_from_signature_and_docstring() -> None:
    doc = make().doc("admin_broadcast_debug")
    assert doc.summary == "Publish a debug message."
    assert doc.description == "A longer description\nover two lines."
    assert [(p.name, p.required, p.schema, p.description) for p in doc.params] == [
        ("text", True, {"type": "string"}, "the message"),
        ("to", False, {"type": ["string", "null"]}, "a node id; omit to send it to every node"),
    ]
    assert doc.result == "{digest}." and doc.result_schema == {"type": "object"}
    assert doc.missing() == []

    async def bare(x: int) -> int:
        return x

    d = Dispatcher()
    d.add("bare", bare)
    assert d.doc("bare").missing() == [
        "a summary",
        "a description of param 'x'",
        "a description of the result (Returns:)",
    ]


def test_a_docstring_describing_a_param_the_handler_lacks_is_refused_at_registration() -> None:
    async def wrong(a: int) -> int:
        """Wrong.

        Args:
            b: not a param
        Returns: a.
        """
        return a

    with pytest.raises(AssertionError, match=r"describes params it does not take: \['b'\]"):
        Dispatcher().add("wrong", wrong)


def test_schemas_and_their_text() -> None:
    assert schema_of(str | list[str] | None) == {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    }
    assert schema_of(dict[str, Any] | None) == {"type": ["object", "null"]}
    assert schema_of(Any) == {} and schema_of(int | Any) == {}
    assert json_type_text({"type": ["integer", "null"]}) == "an integer or null"
    assert json_type_text({}) == "any value"
    assert parse_docstring(None) == ("", "", {}, "")


async def test_rpc_discover_serves_the_openrpc_document() -> None:
    d = make()
    doc = (await call(d, "rpc.discover", []))["result"]
    assert doc["openrpc"].startswith("1.") and doc["info"]["title"] and doc["info"]["version"]
    by_name = {m["name"]: m for m in doc["methods"]}
    assert sorted(by_name) == ["admin_broadcast_debug", "buggy", "fetch", "rpc.discover"]
    debug = by_name["admin_broadcast_debug"]
    assert debug["tags"] == [{"name": "admin", "description": "answers loopback callers only"}]
    assert debug["params"][1] == {
        "name": "to",
        "description": "a node id; omit to send it to every node",
        "required": False,
        "schema": {"type": ["string", "null"]},
    }
    assert debug["result"] == {"name": "result", "description": "{digest}.", "schema": {"type": "object"}}
    assert "tags" not in by_name["fetch"]
    assert by_name["rpc.discover"]["summary"] and by_name["rpc.discover"]["params"] == []
