"""The pool's JSON-RPC methods (registered by ``node.py``): ``admin_fetch`` and ``admin_net_peers``."""

from __future__ import annotations

from typing import Any

from lightning.errors import LightningError
from lightning.net.admission import parse_peer_address
from lightning.net.content import ContentClient, FetchFailed
from lightning.net.pool import PeerPool
from lightning.rpc.jsonrpc import INVALID_PARAMS, Dispatcher, RpcError

__all__ = ["FETCH_FAILED", "register_net_rpc"]

FETCH_FAILED = -32010


def _root(text: Any) -> bytes:
    try:
        root = bytes.fromhex(str(text).strip().removeprefix("0x"))
    except ValueError:
        root = b""
    if len(root) != 32:
        raise RpcError(INVALID_PARAMS, f"{text!r} is not a blockstore root (64 hex digits)")
    return root


def register_net_rpc(dispatcher: Dispatcher, *, pool: PeerPool, content: ContentClient) -> None:
    async def admin_fetch(root: str, peer: str | list[str] | None = None, pin: bool = False) -> dict[str, Any]:
        """Fetch object ``root`` into the blockstore from ``peer`` (``NODE_ID@HOST:PORT``, or a list of them, tried
        in order) or, without one, from the connected and known peers in turn."""
        r = _root(root)
        if peer is not None:
            peers = []
            for text in [peer] if isinstance(peer, str) else list(peer):
                try:
                    key, address = parse_peer_address(str(text))
                except LightningError as exc:
                    raise RpcError(INVALID_PARAMS, str(exc)) from None
                pool.add_address(key, address)
                peers.append(key)
        else:
            peers = list(dict.fromkeys(pool.peers() + pool.addresses.peers()))
            peers = [p for p in peers if p != pool.node_id]
        try:
            result = await content.fetch(r, peers, pin=bool(pin))
        except FetchFailed as exc:
            raise RpcError(FETCH_FAILED, str(exc)) from None
        return {"root": result.root.hex(), "length": result.length, "peer": result.peer.hex() if result.peer else None}

    async def admin_net_peers() -> dict[str, Any]:
        stats = pool.statistics()
        return {
            "address": f"{pool.address[0]}:{pool.address[1]}" if pool.address else None,
            "peers": [p.hex() for p in pool.peers()],
            "connections": stats.connections,
            "dialing": stats.dialing,
            "banned": stats.banned,
        }

    dispatcher.add("admin_fetch", admin_fetch, admin=True)
    dispatcher.add("admin_net_peers", admin_net_peers, admin=True)
