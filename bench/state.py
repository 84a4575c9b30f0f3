"""Application-state speed against its anchors (see ../shared/BENCHMARKS.md).

Figures (median of several runs after a warm-up; both sides in the same process, same minute, same data):
- execute_tx_rate: signed transfers executed per second by StateStore.apply_block (decode, signature check, nonce,
  balances, state-root update, block and receipts written, commit with fsync as a node does), in blocks of 1,000
  from 1,000 senders. Anchor: raw Ed25519 verification (PyNaCl) of the same signatures, one by one — the floor any
  executor that checks every signature pays.
- root_update_1k_on_<N>_keys: time to write 1,000 changed rows and update the state root, in one LMDB transaction
  (commit without fsync: the disk's fsync latency is not the tree's), on a state of N keys (1,000,000; 100,000 with
  --quick). Anchor: the same 1,000 changes on a 1,000-key state. Goal: within 5x.

Usage: python bench/state.py [--quick] [--json PATH] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_figures
from lightning.codec import encode
from lightning.crypto import Domain
from lightning.state.store import StateStore
from lightning.testing.devchain import DevChain

BLOCK = 1000
SENDERS = 1000
CHANGED = 1000


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_execution(work: Path, n_txs: int, runs: int) -> tuple[float, float]:
    chain = DevChain.create(accounts=SENDERS, nodes=1, balance="1000000 FLK")
    rng = random.Random(1)
    txs = [
        chain.sign(chain.accounts[i % SENDERS], "transfer", to=rng.choice(chain.accounts).public.raw, amount=1 + i)
        for i in range(n_txs)
    ]
    verify_items = [
        (nacl.signing.VerifyKey(t.sender), Domain.TRANSACTION.value.encode() + b"\x00" + t.payload_bytes, t.signature)
        for t in txs
    ]

    def execute(i: int) -> None:
        with StateStore(work / f"exec{i}", map_size=1 << 32) as store:
            store.initialize(chain.genesis)
            head = store.head()
            blocks = []
            for k in range(0, n_txs, BLOCK):
                block, proof = chain.block(head, txs[k : k + BLOCK], timestamp_ms=head.timestamp_ms + 1000 + k)
                t0 = time.perf_counter()
                outcome = store.apply_block(block, proof)
                blocks.append(time.perf_counter() - t0)
                assert all(r.status == "ok" for r in outcome.receipts)
                head = outcome.head
            exec_times.append(sum(blocks))

    def verify() -> None:
        for vk, msg, sig in verify_items:
            vk.verify(msg, sig)

    exec_times: list[float] = []
    verify_times = []
    execute(0)
    verify()  # warm-up
    exec_times.clear()
    for i in range(1, runs + 1):
        execute(i)
        verify_times.append(timed(verify))
        shutil.rmtree(work / f"exec{i}")
    return n_txs / statistics.median(exec_times), n_txs / statistics.median(verify_times)


def _state_with(work: Path, name: str, keys: int, rng: random.Random) -> tuple[StateStore, list[bytes]]:
    chain = DevChain.create(accounts=1, nodes=1)
    store = StateStore(work / name, map_size=1 << 36, sync=False)
    store.initialize(chain.genesis)
    addresses = [rng.randbytes(32) for _ in range(keys)]
    chunk = 100_000
    for k in range(0, keys, chunk):
        store.import_rows({("accounts", a): encode({"balance": 10**18, "nonce": 0}) for a in addresses[k : k + chunk]})
    return store, addresses


def bench_root_update(work: Path, big: int, runs: int) -> tuple[float, float]:
    rng = random.Random(2)
    t_build = time.perf_counter()
    small_store, small_keys = _state_with(work, "small", CHANGED, rng)
    big_store, big_keys = _state_with(work, "big", big, rng)
    print(f"# built the {big:,}-key state in {time.perf_counter() - t_build:.1f} s", file=sys.stderr)

    def update(store: StateStore, keys: list[bytes]) -> float:
        changed = rng.sample(keys, CHANGED)
        rows: dict[tuple[str, bytes], bytes | None] = {
            ("accounts", a): encode({"balance": rng.randrange(1, 10**24), "nonce": 1}) for a in changed
        }
        return timed(lambda: store.import_rows(rows))

    small_t: list[float] = []
    big_t: list[float] = []
    update(small_store, small_keys)
    update(big_store, big_keys)  # warm-up
    for _ in range(runs):
        small_t.append(update(small_store, small_keys))
        big_t.append(update(big_store, big_keys))
    small_store.close()
    big_store.close()
    return statistics.median(big_t) * 1000, statistics.median(small_t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    n_txs = 2000 if args.quick else 10_000
    big = 100_000 if args.quick else 1_000_000
    runs = 3 if args.quick else 7
    work = Path(tempfile.mkdtemp(prefix="lightning-bench-state-", dir=args.dir))
    try:
        tx_rate, verify_rate = bench_execution(work, n_txs, runs)
        big_ms, small_ms = bench_root_update(work, big, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    label = f"{big // 1_000_000}m" if big >= 1_000_000 else f"{big // 1000}k"
    figures: list[dict[str, Any]] = [
        {
            "name": "execute_tx_rate",
            "value": round(tx_rate),
            "unit": "tx/s",
            "anchor": "ed25519 verify (PyNaCl)",
            "anchor_value": round(verify_rate),
            "ratio": round(tx_rate / verify_rate, 2),
            "goal": ">= 0.5",
        },
        {
            "name": f"root_update_1k_on_{label}_keys",
            "value": round(big_ms, 1),
            "unit": "ms",
            "anchor": "1k changes on a 1k-key state",
            "anchor_value": round(small_ms, 1),
            "ratio": round(big_ms / small_ms, 2),
            "goal": "<= 5",
        },
    ]
    print_figures(figures)
    print(f"# {n_txs} transfers in blocks of {BLOCK}; root updates on {big:,} keys; {runs} runs, median")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
