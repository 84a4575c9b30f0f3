"""The pool's JSON-RPC methods (registered by ``node.py``): ``net_peerCount``, ``net_listening`` (Ethereum's names, as
Lightning serves them), ``admin_fetch`` and ``admin_net_peers``. Reference: docs/rpc.md."""

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
        """Fetch an object into the blockstore from peers over the pool.

        Args:
            root: the object's blockstore root (64 hex digits)
            peer: ``NODE_ID@HOST:PORT``, or a list of them tried in order; omit to try the connected and known
                peers in turn
            pin: keep the object out of garbage collection
        Returns: {root, length (bytes), peer (the node id that served it; null if it was already here)}; a fetch
            that fails everywhere is error -32010.
        """
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
        """The pool's connections.

        Returns: {address (the bound QUIC host:port), peers: [connected node id], connections, dialing, banned}.
        """
        stats = pool.statistics()
        return {
            "address": f"{pool.address[0]}:{pool.address[1]}" if pool.address else None,
            "peers": [p.hex() for p in pool.peers()],
            "connections": stats.connections,
            "dialing": stats.dialing,
            "banned": stats.banned,
        }

    async def peer_count() -> str:
        """How many peers the pool is connected to, as Ethereum's ``net_peerCount``.

        Returns: a hex quantity ("0x3").
        """
        return hex(len(pool.peers()))

    async def listening() -> bool:
        """Whether the pool accepts connections, as Ethereum's ``net_listening``.

        Returns: true once the QUIC endpoint is bound.
        """
        return pool.address is not None

    dispatcher.add("net_peerCount", peer_count)
    dispatcher.add("net_listening", listening)
    dispatcher.add("admin_fetch", admin_fetch, admin=True)
    dispatcher.add("admin_net_peers", admin_net_peers, admin=True)
