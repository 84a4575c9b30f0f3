"""JSON-RPC 2.0 dispatch, sans-IO: bytes and the caller's address in, bytes out.

Methods are registered with :meth:`Dispatcher.method`; ``admin=True`` marks methods that answer loopback callers only
(whatever address the RPC binds), so exposing the RPC port for ``/metrics`` never exposes control of the node.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from lightning.errors import LightningError

__all__ = ["Dispatcher", "RpcError", "is_loopback"]

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAUTHORIZED = -32001
MAX_BATCH = 100

Handler = Callable[..., Awaitable[Any]]


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


@dataclass(frozen=True)
class _Method:
    fn: Handler
    admin: bool


class Dispatcher:
    def __init__(self, *, admin_loopback_only: bool = True) -> None:
        self._methods: dict[str, _Method] = {}
        self._admin_loopback_only = admin_loopback_only

    def method(self, name: str, *, admin: bool = False) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            assert name not in self._methods, f"RPC method {name} registered twice"
            self._methods[name] = _Method(fn, admin)
            return fn

        return register

    def add(self, name: str, fn: Handler, *, admin: bool = False) -> None:
        self.method(name, admin=admin)(fn)

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

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
            if isinstance(params, list):
                result = await m.fn(*params)
            elif isinstance(params, dict):
                result = await m.fn(**params)
            else:
                return _error(rid, INVALID_PARAMS, "params must be an array or an object")
        except RpcError as exc:
            return None if notification else _error(rid, exc.code, exc.message, exc.data)
        except TypeError as exc:
            # Wrong arity/keywords from the caller; a TypeError deeper inside the method is our bug and re-raised.
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                return None if notification else _error(rid, INVALID_PARAMS, f"invalid params: {exc}")
            raise
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
