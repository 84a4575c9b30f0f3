"""Two processes with one node key, over real QUIC on loopback: both notice through a common peer.

The copies are two pools in this process (the check is the pool's: a peer closes the older connection proving a
node key when a newer one proves it too), each with its own UDP socket on its own loopback address and port 0.
"""

from __future__ import annotations

from typing import Any

import trio
from prometheus_client import CollectorRegistry

from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net import QuicPool, Scope, StaticAdmission
from lightning.net.config import NetConfig
from lightning.net.duplicate import DuplicateKeyWatch

CONFIG = NetConfig(port=0, datagram_bytes=1452, handshake_timeout_s=5.0)
HANG_GUARD_S = 60  # fails a hung test; no assertion depends on it


async def echo(peer: NodeId, msg: Any) -> Any:
    return msg


def signalled(pool: QuicPool) -> trio.Event:
    """An event set after the watch on ``pool`` took a sign."""
    event = trio.Event()
    watch = pool.on_superseded
    assert watch is not None

    def hook(peer: NodeId) -> None:
        watch(peer)
        event.set()

    pool.on_superseded = hook
    return event


async def test_two_copies_of_one_node_key_both_see_the_other() -> None:
    shared, other = SigningKey.generate(), SigningKey.generate()
    admission = StaticAdmission(nodes=[NodeId.of(shared), NodeId.of(other)], committee=[])
    first = QuicPool(CONFIG, shared, host="127.0.0.1", admission=admission)
    second = QuicPool(CONFIG, shared, host="127.0.0.2", admission=admission)  # keystore restored on another server
    peer = QuicPool(CONFIG, other, host="127.0.0.3", admission=admission)
    peer.on_request(Scope.SYNC, echo)
    watches = [DuplicateKeyWatch(p, registry=CollectorRegistry()) for p in (first, second, peer)]
    first_saw, second_saw = signalled(first), signalled(second)
    with trio.fail_after(HANG_GUARD_S):
        async with trio.open_nursery() as nursery:
            for p in (first, second, peer):
                await nursery.start(p.run)
            assert peer.address is not None
            for p in (first, second):
                p.add_address(peer.node_id, peer.address)

            assert await first.request(peer.node_id, Scope.SYNC, "first") == "first"
            assert not any(w.suspected for w in watches)
            # The second copy starts and talks to the same peer: the peer replaces the first copy's connection.
            assert await second.request(peer.node_id, Scope.SYNC, "second") == "second"
            await first_saw.wait()
            # The first copy dials again on its next request, and displaces the second one in turn.
            assert await first.request(peer.node_id, Scope.SYNC, "again") == "again"
            await second_saw.wait()
            nursery.cancel_scope.cancel()

    assert watches[0].statistics().peers == (peer.node_id,)
    assert watches[1].statistics().peers == (peer.node_id,)
    assert not watches[2].suspected  # the peer itself has no copy
