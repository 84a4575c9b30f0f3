"""Run the test IPFS gateway (tests/ipfs_gateway.py) on its own thread, for tests that drive real node processes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from tests.ipfs_gateway import TestGateway


@contextmanager
def running_gateway(cars: list[Path], host: str = "127.0.0.1") -> Iterator[tuple[str, TestGateway]]:
    """Yield (base URL, gateway). The gateway's switches (corrupt, swap, …) may be flipped from the test thread:
    they are plain attribute writes the server reads per request."""
    gateway = TestGateway.from_cars(cars)
    ready = threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        box["token"] = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            box["scope"] = nursery.cancel_scope
            box["addr"] = await nursery.start(gateway.serve)
            ready.set()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the test below
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="test-gateway", daemon=True)
    thread.start()
    assert ready.wait(30), "gateway did not start"
    if "error" in box:
        raise AssertionError(f"gateway failed: {box['error']!r}")
    h, port = box["addr"]  # type: ignore[misc]
    try:
        yield f"http://{h}:{port}", gateway
    finally:
        token: trio.lowlevel.TrioToken = box["token"]  # type: ignore[assignment]
        scope: trio.CancelScope = box["scope"]  # type: ignore[assignment]
        token.run_sync_soon(scope.cancel)
        thread.join(30)
