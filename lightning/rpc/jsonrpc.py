"""JSON-RPC 2.0 dispatch, sans-IO: bytes and the caller's address in, bytes out.

Methods are registered with :meth:`Dispatcher.add` (or the :meth:`Dispatcher.method` decorator); ``admin=True`` marks
methods that answer loopback callers only (whatever address the RPC binds), so exposing the RPC port for ``/metrics``
never exposes control of the node.

A handler documents itself, and the dispatcher reads that documentation both to check a call's parameters and to
describe the method in the OpenRPC document it serves at ``rpc.discover`` (docs/rpc.md is generated from it):

- its **signature** gives the parameter names, which are required (no default) and their JSON types, from the
  annotations (``str`` → string, ``int`` → integer, ``X | None`` → X or null, ``list[str]`` → array of strings, …);
- its **docstring** gives the summary (first paragraph), a description (the paragraphs before the sections), one line
  per parameter under ``Args:`` (``name: text``, continuation lines indented) and the result after ``Returns:`` (on
  the same line or the lines below).

A call whose params do not fit the signature is answered ``-32602`` naming the parameter (missing, unknown, one too
many, or of the wrong JSON type) with ``data: {"param": name}``, before the handler runs; the handler still checks
the values themselves (hex, ranges) and raises :class:`RpcError` naming the parameter.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import logging
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

import lightning
from lightning.errors import LightningError

__all__ = ["Dispatcher", "MethodDoc", "ParamDoc", "RpcError", "is_loopback", "json_type_text"]

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHORIZED = -32001
MAX_BATCH = 100
OPENRPC_VERSION = "1.2.6"

Handler = Callable[..., Awaitable[Any]]
Schema = dict[str, Any]


class RpcError(LightningError):
    """Raised by a method to answer with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def is_loopback(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


# -- documentation: signature + docstring -> MethodDoc ---------------------------------------------------------------
@dataclass(frozen=True)
class ParamDoc:
    name: str
    description: str  # "" when the docstring has no ``Args:`` line for it
    schema: Schema  # JSON Schema of the accepted values ({} = anything)
    required: bool


@dataclass(frozen=True)
class MethodDoc:
    summary: str
    description: str
    params: tuple[ParamDoc, ...]
    result: str  # what the result holds ("" when undocumented)
    result_schema: Schema

    def missing(self) -> list[str]:
        """What a complete documentation lacks: [] when the summary, every param and the result are described."""
        out = [] if self.summary else ["a summary"]
        out += [f"a description of param {p.name!r}" for p in self.params if not p.description]
        return out + ([] if self.result else ["a description of the result (Returns:)"])


_SIMPLE: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    float: {"type": "number"},
    type(None): {"type": "null"},
    None: {"type": "null"},
    dict: {"type": "object"},
    list: {"type": "array"},
    tuple: {"type": "array"},
}


def schema_of(tp: Any) -> Schema:
    """The JSON Schema of values a Python annotation accepts (the subset handlers use)."""
    if tp is Any or tp is inspect.Parameter.empty:
        return {}
    if tp in _SIMPLE:
        return dict(_SIMPLE[tp])
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        options = [schema_of(a) for a in args]
        if any(o == {} for o in options):
            return {}
        if all(set(o) == {"type"} and isinstance(o["type"], str) for o in options):
            return {"type": [o["type"] for o in options]}
        return {"anyOf": options}
    if origin in (list, tuple):
        return {"type": "array", **({"items": schema_of(args[0])} if args and args[0] is not Ellipsis else {})}
    if origin is dict:
        return {"type": "object"}
    return {}


_SECTION = re.compile(r"^(Args|Arguments|Params|Returns|Raises):\s*(.*)$")
_ARG = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, str, dict[str, str], str]:
    """(summary, description, {param: text}, returns) from a Google-style docstring."""
    lines = inspect.cleandoc(doc or "").splitlines()
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in lines:
        m = _SECTION.match(line)
        if m:
            current = {"Arguments": "Args", "Params": "Args"}.get(m.group(1), m.group(1))
            sections[current] = [m.group(2)] if m.group(2) else []
        else:
            sections[current].append(line)
    head = "\n".join(sections[""]).strip()
    summary, _, description = head.partition("\n\n")
    params: dict[str, str] = {}
    name = None
    for line in sections.get("Args", []):
        text = line.strip()
        m = _ARG.match(text)
        if m and not line.startswith(" " * 8):
            name = m.group(1)
            params[name] = m.group(2)
        elif name is not None and text:
            params[name] = f"{params[name]} {text}".strip()
    returns = " ".join(x.strip() for x in sections.get("Returns", []) if x.strip())
    return " ".join(summary.split()), description.strip(), params, returns


def document(fn: Handler) -> MethodDoc:
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that does not evaluate: document the names without types
        hints = {}
    summary, description, texts, returns = parse_docstring(fn.__doc__)
    params = []
    for p in sig.parameters.values():
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, f"{fn.__qualname__}: param {p.name} must be plain"
        params.append(ParamDoc(p.name, texts.get(p.name, ""), schema_of(hints.get(p.name, Any)), p.default is p.empty))
    unknown = set(texts) - set(sig.parameters)
    assert not unknown, f"{fn.__qualname__}: the docstring describes params it does not take: {sorted(unknown)}"
    return MethodDoc(summary, description, tuple(params), returns, schema_of(hints.get("return", Any)))


# -- parameter checks ------------------------------------------------------------------------------------------------
_TYPE_TEXT = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
    "object": "an object",
    "array": "an array",
}


def json_type_text(schema: Schema) -> str:
    """``{"type": ["integer", "null"]}`` → ``"an integer or null"``."""
    if not schema:
        return "any value"
    if "anyOf" in schema:
        options = [json_type_text(s) for s in schema["anyOf"]]
    else:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        options = []
        for k in kinds:
            text = _TYPE_TEXT[k]
            if k == "array" and schema.get("items"):
                inner = json_type_text(schema["items"]).removeprefix("a ").removeprefix("an ")
                text = f"an array of {inner}s" if " " not in inner else f"an array (of {inner})"
            options.append(text)
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]


def _matches(value: Any, schema: Schema) -> bool:
    if not schema:
        return True
    if "anyOf" in schema:
        return any(_matches(value, s) for s in schema["anyOf"])
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    for k in kinds:
        if k == "array" and isinstance(value, list):
            if all(_matches(v, schema.get("items", {})) for v in value):
                return True
        elif k != "array" and _is_json_type(value, k):
            return True
    return False


def _is_json_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "object":
        return isinstance(value, dict)
    return False


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value[:40] + ('…' if len(value) > 40 else ''))}"
    return "an array" if isinstance(value, list) else "an object"


def _signature_text(doc: MethodDoc) -> str:
    if not doc.params:
        return "no params"
    return ", ".join(p.name if p.required else f"{p.name}?" for p in doc.params)


def bind_params(name: str, doc: MethodDoc, params: Any) -> dict[str, Any]:
    """The keyword arguments for a call of ``name`` with JSON ``params``; raises :class:`RpcError` (-32602) naming
    the parameter that is missing, unknown, extra or of the wrong JSON type."""
    takes = f"{name} takes {_signature_text(doc)}"
    if isinstance(params, list):
        if len(params) > len(doc.params):
            raise RpcError(INVALID_PARAMS, f"invalid params: {len(params)} given, but {takes}")
        given = {p.name: v for p, v in zip(doc.params, params, strict=False)}
    elif isinstance(params, dict):
        names = {p.name for p in doc.params}
        for key in params:
            if key not in names:
                raise RpcError(INVALID_PARAMS, f"invalid params: unknown param {key!r} ({takes})", {"param": key})
        given = dict(params)
    else:
        raise RpcError(INVALID_PARAMS, "invalid params: params must be an array or an object")
    for p in doc.params:
        if p.name not in given:
            if p.required:
                raise RpcError(INVALID_PARAMS, f"invalid params: missing param {p.name!r} ({takes})", {"param": p.name})
        elif not _matches(given[p.name], p.schema):
            raise RpcError(
                INVALID_PARAMS,
                f"invalid params: param {p.name!r} must be {json_type_text(p.schema)}, got {_json_kind(given[p.name])}",
                {"param": p.name},
            )
    return given


# -- dispatch --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Method:
    fn: Handler
    admin: bool
    doc: MethodDoc


class Dispatcher:
    def __init__(self, *, admin_loopback_only: bool = True, title: str = "lightning-py JSON-RPC") -> None:
        self._methods: dict[str, _Method] = {}
        self._admin_loopback_only = admin_loopback_only
        self._title = title
        self.add("rpc.discover", self._discover)

    def method(self, name: str, *, admin: bool = False) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            assert name not in self._methods, f"RPC method {name} registered twice"
            self._methods[name] = _Method(fn, admin, document(fn))
            return fn

        return register

    def add(self, name: str, fn: Handler, *, admin: bool = False) -> None:
        self.method(name, admin=admin)(fn)

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

    def doc(self, name: str) -> MethodDoc:
        """The documentation of method ``name``; raises KeyError."""
        return self._methods[name].doc

    def is_admin(self, name: str) -> bool:
        return self._methods[name].admin

    def openrpc(self) -> dict[str, Any]:
        """The OpenRPC document of every registered method, in name order."""
        methods = []
        for name in self.methods:
            m = self._methods[name]
            entry: dict[str, Any] = {"name": name, "summary": m.doc.summary}
            if m.doc.description:
                entry["description"] = m.doc.description
            if m.admin:
                entry["tags"] = [{"name": "admin", "description": "answers loopback callers only"}]
            entry["paramStructure"] = "either"
            entry["params"] = [
                {"name": p.name, "description": p.description, "required": p.required, "schema": p.schema}
                for p in m.doc.params
            ]
            entry["result"] = {"name": "result", "description": m.doc.result, "schema": m.doc.result_schema}
            methods.append(entry)
        return {
            "openrpc": OPENRPC_VERSION,
            "info": {"title": self._title, "version": lightning.__version__},
            "methods": methods,
        }

    async def _discover(self) -> dict[str, Any]:
        """This node's OpenRPC document: every method with its params and result.

        Returns: an OpenRPC 1.2 document {openrpc, info, methods: [{name, summary, description?, tags?, params:
        [{name, description, required, schema}], result: {name, description, schema}}]}; admin methods carry the tag
        ``admin``.
        """
        return self.openrpc()

    async def handle(self, body: bytes, caller_host: str) -> bytes | None:
        """Answer one HTTP body (a request or a batch). ``None`` means no content (notifications only)."""
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _dump(_error(None, PARSE_ERROR, "parse error: body is not JSON"))
        if isinstance(req, list):
            if not req:
                return _dump(_error(None, INVALID_REQUEST, "empty batch"))
            if len(req) > MAX_BATCH:
                return _dump(_error(None, INVALID_REQUEST, f"batch of {len(req)} exceeds {MAX_BATCH}"))
            answers = [a for a in [await self._one(r, caller_host) for r in req] if a is not None]
            return _dump(answers) if answers else None
        answer = await self._one(req, caller_host)
        return None if answer is None else _dump(answer)

    async def _one(self, req: Any, caller_host: str) -> dict[str, Any] | None:
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            return _error(None, INVALID_REQUEST, "invalid request: need jsonrpc '2.0' and a method name")
        rid = req.get("id")
        notification = "id" not in req
        if not (rid is None or isinstance(rid, str | int)) or isinstance(rid, bool):
            return _error(None, INVALID_REQUEST, "invalid request: id must be a string, number or null")
        name: str = req["method"]
        params = req.get("params", [])
        m = self._methods.get(name)
        if m is None:
            return None if notification else _error(rid, METHOD_NOT_FOUND, f"method not found: {name}")
        if m.admin and self._admin_loopback_only and not is_loopback(caller_host):
            logger.warning("refused admin method %s from %s", name, caller_host)
            return None if notification else _error(rid, UNAUTHORIZED, f"{name} is an admin method: loopback only")
        try:
            result = await m.fn(**bind_params(name, m.doc, params))
        except RpcError as exc:
            return None if notification else _error(rid, exc.code, exc.message, exc.data)
        except trio.Cancelled:
            raise
        except LightningError as exc:
            return None if notification else _error(rid, INTERNAL_ERROR, str(exc))
        if notification:
            return None
        return {"jsonrpc": "2.0", "id": rid, "result": result}


def _error(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": err}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
