"""Blockstore speed against its anchors (see ../shared/BENCHMARKS.md).

Figures (median of several runs after a warm-up, each side run in the same minute on the same bytes):
- ingest_throughput: store a file with the trusted writer (hash, stage, publish + fsync), like `lightning dev store`.
  Anchor: `dd if=FILE of=DISK_FILE bs=4M conv=fsync` — the same bytes written durably to the same disk.
- verified_read_throughput: read the object back, every block checked against its hash and the block list against
  the root. Anchor: raw single-threaded `blake3` of the same bytes in memory.
- client_verify_throughput: the client library (verify.py) decoding and verifying the object's proof stream held in
  memory. Anchor: raw blake3 again.

Usage: python bench/blockstore.py [--quick] [--json PATH] [--dir DIR]   (DIR: the disk to test; default a temp dir)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning.blockstore import BlockStore, ObjectWriter, ProofStreamDecoder

MIB = 1024 * 1024


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_rate(size: int, runs: list[float]) -> float:
    return round(size / statistics.median(runs) / 1e6, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    size = (64 if args.quick else 256) * MIB
    runs = 3 if args.quick else 5
    work = Path(tempfile.mkdtemp(prefix="lightning-bench-", dir=args.dir))
    try:
        src = work / "src.bin"
        data = os.urandom(size)
        src.write_bytes(data)

        def ingest(i: int) -> bytes:
            path = work / f"store{i}"
            with BlockStore(path, map_size=4 * size) as store, open(src, "rb") as f, ObjectWriter(store) as w:
                while chunk := f.read(4 * MIB):
                    w.write(chunk)
                return w.close()

        def dd(i: int) -> None:
            subprocess.run(
                ["dd", f"if={src}", f"of={work / f'dd{i}.bin'}", "bs=4M", "conv=fsync", "status=none"], check=True
            )

        ingest_t, dd_t, read_t, hash_t, client_t = [], [], [], [], []
        root = ingest(0)
        dd(0)  # warm-up
        for i in range(1, runs + 1):
            ingest_t.append(timed(lambda i=i: ingest(i)))  # type: ignore[misc]
            dd_t.append(timed(lambda i=i: dd(i)))  # type: ignore[misc]
            shutil.rmtree(work / f"store{i}")
            (work / f"dd{i}.bin").unlink()

        with BlockStore(work / "store0", map_size=4 * size) as store:

            def read_verified() -> None:
                store._trees.clear()  # the root check is part of every read here
                for _ in store.read_range(root):
                    pass

            stream = b"".join(bytes(c) for c in store.proof_stream(root))

            def client_verify() -> None:
                dec = ProofStreamDecoder(root)
                for k in range(0, len(stream), 4 * MIB):
                    dec.feed(stream[k : k + 4 * MIB])
                dec.finish()

            read_verified()
            blake3.blake3(data).digest()
            for _ in range(runs):
                read_t.append(timed(read_verified))
                hash_t.append(timed(lambda: blake3.blake3(data).digest()))
                client_t.append(timed(client_verify))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    raw = median_rate(size, hash_t)
    figures = [
        ("ingest_throughput", median_rate(size, ingest_t), "dd conv=fsync", median_rate(size, dd_t), 0.5),
        ("verified_read_throughput", median_rate(size, read_t), "blake3 (1 thread)", raw, 0.5),
        ("client_verify_throughput", median_rate(size, client_t), "blake3 (1 thread)", raw, 0.5),
    ]
    out = []
    for name, value, anchor, anchor_value, goal in figures:
        ratio = round(value / anchor_value, 2)
        out.append(
            {
                "name": name,
                "value": value,
                "unit": "MB/s",
                "anchor": anchor,
                "anchor_value": anchor_value,
                "ratio": ratio,
                "goal": f">= {goal}",
            }
        )
        verdict = "OK" if ratio >= goal else "MISS"
        print(f"{name}  {value} MB/s  ({anchor} {anchor_value} MB/s)  ratio {ratio}  goal >= {goal}  {verdict}")
    print(f"# {size // MIB} MiB, {runs} runs, median; dir {args.dir or tempfile.gettempdir()}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
