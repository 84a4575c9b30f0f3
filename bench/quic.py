"""QUIC pool speed against aioquic's own asyncio API (see ../shared/BENCHMARKS.md).

Both sides run node to node on loopback: a server process and a client process (this one), the same aioquic
settings (``lightning.net.endpoint.quic_configuration``: 1452-byte datagrams unless ``--datagram``, the same
flow-control windows and congestion control), the same bytes, median of several runs after a warm-up.

- stream_throughput: the server sends N bytes on one stream. Ours: a ``blocks``-scope ``open_stream`` between two
  ``QuicPool``s (credit, framing, metrics included). Anchor: aioquic's ``asyncio.serve``/``connect``, the server
  writing the bytes to one stream's ``StreamWriter``, the client reading them from its ``StreamReader``.
- connect_time: a fresh client dials and completes one small request. Ours includes the node-key proof (one more
  round trip and two Ed25519 operations); the anchor is the TLS handshake plus the same request.

Usage: python bench/quic.py [--quick] [--json PATH] [--datagram BYTES]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio
from aioquic.asyncio import connect, serve

from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.net import OpenAdmission, QuicPool, ReplyWriter, Scope
from lightning.net.config import NetConfig
from lightning.net.endpoint import quic_configuration
from lightning.net.identity import TlsIdentity

MIB = 1024 * 1024
CHUNK = 256 * 1024
HOST = "127.0.0.1"


def net_config(datagram: int) -> NetConfig:
    return NetConfig(port=0, datagram_bytes=datagram)


# -- servers (child processes) -----------------------------------------------------------------------------------
async def serve_lightning(datagram: int) -> None:
    key = SigningKey.generate()
    pool = QuicPool(net_config(datagram), key, host=HOST, admission=OpenAdmission())
    payload = bytes(CHUNK)

    async def blob(peer: NodeId, n: Any, out: ReplyWriter) -> None:
        await out.start()
        for _ in range(n // CHUNK):
            await out.send(payload)

    async def ping(peer: NodeId, msg: Any) -> Any:
        return msg

    pool.on_stream(Scope.BLOCKS, blob)
    pool.on_request(Scope.SYNC, ping)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(pool.run)
        print(key.public.hex, address[1], flush=True)
        await trio.sleep_forever()


async def serve_aioquic(datagram: int) -> None:
    config = quic_configuration(
        net_config(datagram), is_client=False, identity=TlsIdentity.generate(SigningKey.generate())
    )
    payload = bytes(CHUNK)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readexactly(9)
        if request[:1] == b"T":
            for _ in range(int.from_bytes(request[1:], "big") // CHUNK):
                writer.write(payload)
                await writer.drain()
        else:
            writer.write(request)
        writer.write_eof()

    server = await serve(HOST, 0, configuration=config, stream_handler=lambda r, w: asyncio.ensure_future(handle(r, w)))
    port = server._transport.get_extra_info("sockname")[1]  # no public accessor for the bound port
    print("-", port, flush=True)
    await asyncio.Event().wait()


# -- clients (child processes, driven line by line from stdin so the two sides can alternate run by run) ----------
def _commands() -> Iterator[str]:
    for line in sys.stdin:
        if line.strip() == "quit":
            return
        yield line.strip()


async def lightning_client(datagram: int, key_hex: str, port: int, size: int) -> None:
    server = NodeId(bytes.fromhex(key_hex))

    async def pool_in(nursery: trio.Nursery) -> QuicPool:
        pool = QuicPool(net_config(datagram), SigningKey.generate(), host=HOST, admission=OpenAdmission())
        pool.add_address(server, (HOST, port))
        await nursery.start(pool.run)
        return pool

    async with trio.open_nursery() as nursery:
        main_pool = await pool_in(nursery)
        await main_pool.request(server, Scope.SYNC, b"p")
        commands = _commands()
        while (command := await trio.to_thread.run_sync(next, commands, None)) is not None:
            t0 = time.perf_counter()
            if command == "transfer":
                received = 0
                async with main_pool.open_stream(server, Scope.BLOCKS, size) as reply:
                    async for chunk in reply:
                        received += len(chunk)
                assert received == size
            else:
                async with trio.open_nursery() as inner:
                    fresh = await pool_in(inner)
                    t0 = time.perf_counter()
                    await fresh.request(server, Scope.SYNC, b"p")
                    elapsed = time.perf_counter() - t0
                    inner.cancel_scope.cancel()
                print(elapsed, flush=True)
                continue
            print(time.perf_counter() - t0, flush=True)
        nursery.cancel_scope.cancel()


async def aioquic_client(datagram: int, port: int, size: int) -> None:
    config = quic_configuration(net_config(datagram), is_client=True, identity=None)
    loop = asyncio.get_running_loop()

    async def ping(client: Any) -> None:
        reader, writer = await client.create_stream()
        writer.write(b"P" + bytes(8))
        writer.write_eof()
        await reader.read()

    async with connect(HOST, port, configuration=config) as main_client:
        await ping(main_client)
        commands = _commands()
        while (command := await loop.run_in_executor(None, next, commands, None)) is not None:
            t0 = time.perf_counter()
            if command == "transfer":
                reader, writer = await main_client.create_stream()
                writer.write(b"T" + size.to_bytes(8, "big"))
                writer.write_eof()
                received = 0
                while chunk := await reader.read(65536):
                    received += len(chunk)
                assert received == size
            else:
                async with connect(HOST, port, configuration=config) as fresh:
                    await ping(fresh)
                    elapsed = time.perf_counter() - t0
                print(elapsed, flush=True)
                continue
            print(time.perf_counter() - t0, flush=True)


class Side:
    """A server process and a client process of one implementation."""

    def __init__(self, kind: str, datagram: int, size: int) -> None:
        self.server = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--datagram", str(datagram)], stdout=subprocess.PIPE, text=True
        )
        assert self.server.stdout is not None
        key, port = self.server.stdout.readline().split()
        self.client = subprocess.Popen(
            [sys.executable, __file__, "--client", kind, "--datagram", str(datagram), "--size", str(size), key, port],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, command: str) -> float:
        assert self.client.stdin is not None and self.client.stdout is not None
        self.client.stdin.write(command + "\n")
        self.client.stdin.flush()
        return float(self.client.stdout.readline())

    def close(self) -> None:
        for proc in (self.client, self.server):
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--datagram", type=int, default=1452)
    ap.add_argument("--serve", choices=["lightning", "aioquic"], help=argparse.SUPPRESS)
    ap.add_argument("--client", choices=["lightning", "aioquic"], help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("target", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve == "lightning":
        trio.run(serve_lightning, args.datagram)
        return
    if args.serve == "aioquic":
        asyncio.run(serve_aioquic(args.datagram))
        return
    if args.client == "lightning":
        trio.run(lightning_client, args.datagram, args.target[0], int(args.target[1]), args.size)
        return
    if args.client == "aioquic":
        asyncio.run(aioquic_client(args.datagram, int(args.target[1]), args.size))
        return

    size = (16 if args.quick else 64) * MIB
    runs = 5 if args.quick else 10
    dials = 10 if args.quick else 30
    ours, anchor = Side("lightning", args.datagram, size), Side("aioquic", args.datagram, size)
    try:
        for side in (ours, anchor):  # warm-up
            side.run("transfer")
            side.run("connect")
        ours_t, anchor_t, ours_c, anchor_c = [], [], [], []
        for _ in range(runs):  # alternate run by run: both sides see the same machine conditions
            ours_t.append(ours.run("transfer"))
            anchor_t.append(anchor.run("transfer"))
        for _ in range(dials):
            ours_c.append(ours.run("connect"))
            anchor_c.append(anchor.run("connect"))
    finally:
        ours.close()
        anchor.close()

    def rate(times: list[float]) -> float:
        return round(size / statistics.median(times) / 1e6, 1)

    def ms(times: list[float]) -> float:
        return round(statistics.median(times) * 1000, 2)

    figures = [
        ("stream_throughput", rate(ours_t), "MB/s", rate(anchor_t), ">=", 1.2),
        ("connect_time", ms(ours_c), "ms", ms(anchor_c), "<=", 1.5),
    ]
    out = []
    for name, value, unit, anchor_value, direction, goal in figures:
        ratio = round(value / anchor_value, 2)
        ok = ratio >= goal if direction == ">=" else ratio <= goal
        out.append(
            {
                "name": name,
                "value": value,
                "unit": unit,
                "anchor": "aioquic asyncio",
                "anchor_value": anchor_value,
                "ratio": ratio,
                "goal": f"{direction} {goal}",
            }
        )
        print(
            f"{name}  {value} {unit}  (aioquic asyncio {anchor_value} {unit})  ratio {ratio}  "
            f"goal {direction} {goal}  {'OK' if ok else 'MISS'}"
        )
    print(
        f"# {size // MIB} MiB on one stream, {runs} runs and {dials} dials per side, alternating, median; "
        f"{args.datagram}-byte datagrams, loopback, servers and clients in separate processes"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
