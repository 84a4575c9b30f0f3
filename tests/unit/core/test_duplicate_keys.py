"""One node key, one process: the home lock refuses a second `run`; the pool's superseded sign reaches the watch.

The end-to-end check over real QUIC (two pools with one key, a common peer) is in
tests/integration/test_net_duplicate.py.
"""

from __future__ import annotations

import inspect
import logging
import os

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from lightning.bootstrap import init_home
from lightning.cli.main import main
from lightning.home import Home
from lightning.ids import NodeId
from lightning.net import Scope, pool
from lightning.net.duplicate import DuplicateKeyWatch
from lightning.net.pool import SUPERSEDED
from lightning.net.sim import open_sim
from lightning.net.wire import CloseCode


def test_a_second_run_on_a_home_in_use_refuses(tmp_path, capsys):
    home = Home(tmp_path / "h")
    init_home(home, dev=True, force=False)
    # flock belongs to an open file description: a second open in this process conflicts as another process's would.
    with home.lock():
        with pytest.raises(SystemExit) as exc:
            main(["run", "--home", str(home.root)])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"lightning: error: {home.root}: home is in use by a running node (pid {os.getpid()}); stop it first"
    ]


def test_the_pool_closes_old_connections_with_the_reason_the_watch_knows() -> None:
    # The sign is this exact reason phrase: the pool must send the constant, not a copy of it.
    source = inspect.getsource(pool.PeerPool._register)
    assert "SUPERSEDED" in source and SUPERSEDED not in source


async def _connect(a: pool.PeerPool, p: pool.PeerPool) -> None:
    async def echo(peer: NodeId, msg: object) -> object:
        return msg

    p.on_request(Scope.SYNC, echo)
    assert await a.request(p.node_id, Scope.SYNC, 1) == 1


async def _closed_by_peer(a: pool.PeerPool, p: pool.PeerPool, reason: str) -> None:
    """P closes its connection from A with ``reason``; returns once A has replaced it with a new one."""
    old = a._peers[p.node_id].conns[0].conn
    p._peers[a.node_id].conns[0].conn.close(CloseCode.NORMAL, reason)
    await old._closed.wait()  # type: ignore[attr-defined]  # SimConn's: the close reached A
    await _connect(a, p)  # the closed connection is unregistered (and judged) before a new one is dialed
    assert a._peers[p.node_id].conns[0].conn is not old


async def test_a_peer_replacing_our_connection_is_reported(autojump_clock: trio.testing.MockClock, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="lightning.net.duplicate")
    async with open_sim(seed=3, nodes=2) as (_, (a, p)):
        registry = CollectorRegistry()
        watch = DuplicateKeyWatch(a, registry=registry)
        await _connect(a, p)
        assert not watch.suspected
        # What P does when a second process with A's key connects to it: close A's connection as superseded.
        await _closed_by_peer(a, p, SUPERSEDED)
        stats = watch.statistics()
        assert stats.signs == 1 and stats.peers == (p.node_id,)
        assert registry.get_sample_value("lightning_net_duplicate_key_signs_total") == 1.0
        [record] = caplog.records
        assert "another process is running with this node's keys" in record.getMessage()
        assert p.node_id.short() in record.getMessage() and "slashed" in record.getMessage()

        # The copies keep displacing each other: more signs, but one error line a minute.
        await _closed_by_peer(a, p, SUPERSEDED)
        assert watch.statistics().signs == 2
        assert registry.get_sample_value("lightning_net_duplicate_key_signs_total") == 2.0
        assert len(caplog.records) == 1


async def test_a_peer_closing_for_another_reason_is_no_sign(autojump_clock: trio.testing.MockClock) -> None:
    async with open_sim(seed=4, nodes=2) as (_, (a, p)):
        watch = DuplicateKeyWatch(a, registry=CollectorRegistry())
        await _connect(a, p)
        for reason in ("idle", "banned", "shutting down"):
            await _closed_by_peer(a, p, reason)
        assert watch.statistics().signs == 0 and not watch.suspected
