"""Mempool acceptance speed against its anchor (see ../shared/BENCHMARKS.md).

Figure (median of several runs after a warm-up; both sides in the same process, same minute, same transactions):
- mempool_reject_rate: unpaid transactions refused per second by one node's mempool acceptance
  (``Mempool.submit`` as a forwarded batch reaches it: decode, the state reads, the refusal), each a validly signed
  200-byte transfer from a distinct sender with zero balance, on a running State (LMDB, inline writer). Anchor:
  raw Ed25519 verification (PyNaCl) of the same signatures, one by one — what acceptance would cost if it verified
  first. Goal: >= 0.8 (acceptance refuses an unpaid transaction before verifying its signature, docs/fees.md).

Usage: python bench/mempool.py [--quick] [--json PATH] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import nacl.signing
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_figures
from lightning.chain.component import State
from lightning.chain.config import StateConfig
from lightning.chain.mempool import Mempool
from lightning.chain.mempool_core import TxRejected
from lightning.crypto import Domain
from lightning.ids import NodeId
from lightning.state.tx import SignedTransaction, sign_transaction
from lightning.testing.devchain import DevChain, derive_key

PEER = NodeId(b"\x0a" * 32)


def unpaid_transactions(chain: DevChain, n: int) -> list[SignedTransaction]:
    to = chain.accounts[0].public.raw
    return [
        sign_transaction(
            derive_key(99, "unpaid", i), chain_id=chain.genesis.chain_id, nonce=1, method="transfer", to=to, amount=1
        )
        for i in range(n)
    ]


async def bench_reject(
    work: Path, chain: DevChain, txs: list[SignedTransaction], runs: int
) -> tuple[float, Counter[str]]:
    raws = [t.raw for t in txs]
    codes: Counter[str] = Counter()
    times: list[float] = []
    state = State(StateConfig(), work / "state", chain.genesis, inline=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        me = NodeId.of(chain.nodes[0].node)
        pool = Mempool(state, StateConfig(), node_id=me, ordering_nodes=lambda: [me])
        submit = pool.submit
        for run in range(runs + 1):  # run 0 is the warm-up
            refused = 0
            t0 = time.perf_counter()
            for raw in raws:
                try:
                    submit(raw, forward=False, origin=PEER)
                except TxRejected as exc:
                    refused += 1
                    if run == 0:
                        codes[exc.code] += 1
            elapsed = time.perf_counter() - t0
            assert refused == len(raws) and len(pool.core) == 0
            if run:
                times.append(elapsed)
        nursery.cancel_scope.cancel()
    return len(raws) / statistics.median(times), codes


def bench_verify(txs: list[SignedTransaction], runs: int) -> float:
    prefix = Domain.TRANSACTION.value.encode() + b"\x00"
    items = [(nacl.signing.VerifyKey(t.sender), prefix + t.payload_bytes, t.signature) for t in txs]
    times: list[float] = []
    for run in range(runs + 1):
        t0 = time.perf_counter()
        for vk, msg, sig in items:
            vk.verify(msg, sig)
        if run:
            times.append(time.perf_counter() - t0)
    return len(items) / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    n = 5_000 if args.quick else 20_000
    runs = 3 if args.quick else 7
    chain = DevChain.create(accounts=1, nodes=1)
    txs = unpaid_transactions(chain, n)
    work = Path(tempfile.mkdtemp(prefix="lightning-bench-mempool-", dir=args.dir))
    try:
        reject_rate, codes = trio.run(bench_reject, work, chain, txs, runs)
        verify_rate = bench_verify(txs, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    figures: list[dict[str, Any]] = [
        {
            "name": "mempool_reject_rate",
            "value": round(reject_rate),
            "unit": "tx/s",
            "anchor": "ed25519 verify (PyNaCl)",
            "anchor_value": round(verify_rate),
            "ratio": round(reject_rate / verify_rate, 2),
            "goal": ">= 0.8",
        },
    ]
    print_figures(figures)
    size = statistics.median(len(t.raw) for t in txs)
    print(
        f"# {n} unpaid {size:.0f}-byte transfers from distinct zero-balance senders; {runs} runs, median; {dict(codes)}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
