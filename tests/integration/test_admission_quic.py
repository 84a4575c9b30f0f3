"""Peer admission over real QUIC (loopback UDP, in process): an unstaked peer's limited scopes, its rate (the refused
reset travels as a QUIC stream reset and comes back as TooManyRequests), the cap on unstaked peers, and a closed
connection when a peer's level drops."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net import ConnectionLost, QuicPool, Scope, StaticAdmission, TooManyRequests, Unauthorized
from lightning.net.admission import Access
from lightning.net.config import NetConfig

BURST = 4
CONFIG = NetConfig(port=0, handshake_timeout_s=5.0, limited_rate_per_s=1e-6, limited_burst=BURST, max_limited_peers=2)


async def echo(peer: NodeId, msg: Any) -> Any:
    return msg


async def test_limited_peers_over_quic() -> None:
    server_key, staked_key, stranger_key, second_key = (SigningKey.generate() for _ in range(4))
    admission = StaticAdmission(nodes=[NodeId.of(staked_key)], committee=[], others=Access.LIMITED)
    server = QuicPool(CONFIG, server_key, host="127.0.0.1", admission=admission)
    for scope in Scope:
        server.on_request(scope, echo)
    clients = [
        QuicPool(CONFIG, k, host=f"127.0.0.{i + 2}", admission=StaticAdmission(nodes=[server.node_id], committee=[]))
        for i, k in enumerate((staked_key, stranger_key, second_key))
    ]
    staked, stranger, second = clients
    async with trio.open_nursery() as nursery:
        for p in (server, *clients):
            await nursery.start(p.run)
        assert server.address is not None
        for c in clients:
            c.add_address(server.node_id, server.address)
        with trio.fail_after(30):
            sid = server.node_id
            assert await stranger.request(sid, Scope.SYNC, "s") == "s"
            assert await stranger.request(sid, Scope.TXS, "t") == "t"
            with pytest.raises(Unauthorized):
                await stranger.request(sid, Scope.BLOCKS, "b")
            assert await stranger.request(sid, Scope.TXS, "t") == "t"  # the burst's last token
            with pytest.raises(TooManyRequests, match="rate limit"):
                await stranger.request(sid, Scope.TXS, "over")
            for i in range(2 * BURST):
                assert await staked.request(sid, Scope.BLOCKS, i) == i

            # the staked node loses its stake: the pool's recheck closes its connection; it comes back limited
            server.admission = StaticAdmission(nodes=[], committee=[], others=Access.LIMITED)
            assert server.recheck() == 1
            assert set(server.peers()) == {NodeId.of(stranger_key)}  # its level did not drop
            while True:  # until the close reaches the client, a request may still go out on the old connection
                try:
                    assert await staked.request(sid, Scope.SYNC, "again") == "again"
                    break
                except ConnectionLost:
                    pass
            with pytest.raises(Unauthorized):
                await staked.request(sid, Scope.BLOCKS, "b")
            with pytest.raises(Unauthorized, match="unstaked peers are connected already"):
                await second.request(sid, Scope.TXS, "t")  # two unstaked peers at most
        nursery.cancel_scope.cancel()
