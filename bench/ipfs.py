"""IPFS content layer speed against its anchor (see ../shared/BENCHMARKS.md).

A file of random bytes is cut into 256 KiB raw leaves under a 174-wide balanced dag-pb DAG (kubo's layout with
raw leaves) and written as a CAR in DFS order, as a trustless gateway sends it for ``dag-scope=entity``.

Figures (median of several runs after a warm-up; anchor and subject on the same blocks in the same minute):
- ipfs_car_stream_throughput: ``CarBlockSource`` over the CAR in 64 KiB chunks, ``open_file`` + ``chunks()``
  under trio: decode, verify every block, check sizes, yield the file. MB/s of file bytes.
- ipfs_raw_blocks_throughput: ``read_file_sync`` with a getter returning each block's bytes (verified by the
  driver), as with ``?format=raw`` fetches. MB/s of file bytes.
- ipfs_car_small_blocks_throughput: the CAR path with 4 KiB leaves, where per-block overhead dominates.
Anchor for each: ``hashlib.sha256`` of the same blocks, one call per block (the unavoidable verification cost).

Usage: python bench/ipfs.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.ipfs import DAG_PB, CarBlockSource, Cid, DataType, encode_car_header, open_file, read_file_sync
from lightning.ipfs.car import encode_car_section
from lightning.ipfs.dagpb import PbLink, PbNode, UnixFsData, encode_pbnode, encode_unixfs

MIB = 1024 * 1024
WIDTH = 174


def build_dag(data: bytes, chunk: int) -> tuple[Cid, dict[bytes, tuple[Cid, bytes]], list[Cid]]:
    """Balanced DAG over raw leaves; returns (root, multihash -> (cid, block), DFS pre-order of CIDs)."""
    blocks: dict[bytes, tuple[Cid, bytes]] = {}
    level: list[tuple[Cid, int]] = []
    for i in range(0, max(len(data), 1), chunk):
        leaf = data[i : i + chunk]
        cid = Cid.of(leaf)
        blocks[cid.multihash] = (cid, leaf)
        level.append((cid, len(leaf)))
    children: dict[bytes, list[Cid]] = {}
    while len(level) > 1:
        parents = []
        for i in range(0, len(level), WIDTH):
            group = level[i : i + WIDTH]
            sizes = tuple(size for _, size in group)
            fs = UnixFsData(DataType.FILE, filesize=sum(sizes), blocksizes=sizes)
            node = encode_pbnode(PbNode(tuple(PbLink(c, None, None) for c, _ in group), encode_unixfs(fs)))
            cid = Cid.of(node, codec=DAG_PB)
            blocks[cid.multihash] = (cid, node)
            children[cid.multihash] = [c for c, _ in group]
            parents.append((cid, sum(sizes)))
        level = parents
    root = level[0][0]
    order: list[Cid] = []
    stack = [root]
    while stack:
        cid = stack.pop()
        order.append(cid)
        stack.extend(reversed(children.get(cid.multihash, [])))
    return root, blocks, order


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


async def _chunks(car: bytes, size: int) -> AsyncIterator[bytes]:
    view = memoryview(car)
    for i in range(0, len(car), size):
        yield bytes(view[i : i + size])


def run_car(car: bytes, root: Cid, expect: int) -> float:
    """Seconds for the CAR path, timed inside trio (a node's event loop is already running)."""
    elapsed = 0.0

    async def main() -> None:
        nonlocal elapsed
        t0 = time.perf_counter()
        source = CarBlockSource(_chunks(car, 64 * 1024), root)
        stream = await open_file(root, source.get)
        got = 0
        async for chunk in stream.chunks():
            got += len(chunk)
        elapsed = time.perf_counter() - t0
        assert got == expect

    trio.run(main)
    return elapsed


def figure(name: str, size: int, subject: list[float], anchor: list[float], goal: float) -> dict[str, object]:
    value = round(size / statistics.median(subject) / 1e6, 1)
    anchor_value = round(size / statistics.median(anchor) / 1e6, 1)
    ratio = round(value / anchor_value, 2)
    ok = "OK" if ratio >= goal else "MISSED"
    print(f"{name}  {value} MB/s  (sha256 {anchor_value} MB/s)  ratio {ratio}  goal >= {goal}  {ok}")
    return {
        "name": name,
        "value": value,
        "unit": "MB/s",
        "anchor": "hashlib.sha256 per block",
        "anchor_value": anchor_value,
        "ratio": ratio,
        "goal": f">= {goal}",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    size = (32 if args.quick else 256) * MIB
    small_size = (4 if args.quick else 16) * MIB
    runs = 3 if args.quick else 5
    results = []
    for name, total, chunk, goal in (
        ("ipfs_car_stream_throughput", size, 256 * 1024, 0.7),
        ("ipfs_car_small_blocks_throughput", small_size, 4096, 0.25),
    ):
        data = os.urandom(total)
        root, blocks, order = build_dag(data, chunk)
        car = encode_car_header([root]) + b"".join(encode_car_section(*blocks[c.multihash]) for c in order)
        block_bytes = [blocks[c.multihash][1] for c in order]

        def anchor(block_bytes: list[bytes] = block_bytes) -> None:
            for b in block_bytes:
                hashlib.sha256(b).digest()

        run_car(car, root, total)  # warm-up
        anchor()
        subject_t, anchor_t = [], []
        for _ in range(runs):
            subject_t.append(run_car(car, root, total))
            anchor_t.append(timed(anchor))
        results.append(figure(name, total, subject_t, anchor_t, goal))
        if chunk == 256 * 1024:
            raw = {key: data for key, (_, data) in blocks.items()}

            def read_raw(root: Cid = root, raw: dict[bytes, bytes] = raw, total: int = total) -> None:
                assert sum(len(c) for c in read_file_sync(root, lambda cid: raw[cid.multihash])) == total

            read_raw()
            raw_t, anchor_t = [], []
            for _ in range(runs):
                raw_t.append(timed(read_raw))
                anchor_t.append(timed(anchor))
            results.append(figure("ipfs_raw_blocks_throughput", total, raw_t, anchor_t, 0.85))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
