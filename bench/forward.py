"""Transactions forwarded over the pool (issue 16, item 1): what sending to an edge node costs a client.

A small spawned cluster (``lightning dev genesis`` layout, real ``lightning run`` processes on 127.63.x.y, QUIC between
them): a committee of ``--committee`` members (default 4: BFT consensus) and one edge node. One faucet transfer at a
time, alternating between the edge node and a committee member (round-robin over the members), each timed from the
moment the client sends it (``flk_send_txn``) to the moment its receipt is visible on the node it was sent to
(``flk_get_txn_receipt`` long poll) — what a client of that node sees. The edge node forwards it to every member over
the pool's TXS scope and learns the block over broadcast; a member has it at once and shares it with the others.
A third kind of transfer, sent to the edge node and timed until a member shows its receipt, is printed as a comment
(it splits the edge node's extra time between the forward and the way back).

Figure (see ../shared/BENCHMARKS.md):
- tx_forward_commit_ms_p50: median latency of the transfers sent to the edge node. Anchor: the same for the transfers
  sent to a committee member, interleaved in the same run. Goal (issue 16): ratio <= 1.3.

Usage: python bench/forward.py [--quick] [--json PATH] [--runs N] [--txs N] [--committee N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.spawn import rpc, start_nodes, stop_nodes
from lightning.crypto import SigningKey
from lightning.devnet import make_cluster
from lightning.state.tx import sign_transaction

TO = bytes.fromhex("48" * 32)
WARMUP = 4


def commit_ms(url: str, faucet: SigningKey, chain_id: int, nonce: int, seen_at: str | None = None) -> float:
    """Milliseconds from sending one transfer to ``url`` to its receipt being visible there (or at ``seen_at``)."""
    stx = sign_transaction(faucet, chain_id=chain_id, nonce=nonce, method="transfer", to=TO, amount=1)
    t0 = time.perf_counter()
    rpc(url, "flk_send_txn", stx.raw.hex())
    while rpc(seen_at or url, "flk_get_txn_receipt", stx.hash.hex(), 10_000, timeout=20) is None:
        if time.perf_counter() - t0 > 60:
            raise RuntimeError(f"transfer {nonce} sent to {url} not committed within 60 s")
    return 1000 * (time.perf_counter() - t0)


def one_run(work: Path, base: str, committee: int, txs: int) -> dict[str, list[float]]:
    out = work / f"c-{time.monotonic_ns()}"
    layout = make_cluster(out, nodes=committee + 1, committee=committee, host_base=base)
    procs, urls = start_nodes([n.home for n in layout.nodes])
    try:
        members, edge = urls[:committee], urls[committee]
        faucet = SigningKey(bytes.fromhex((out / "faucet.key").read_text().strip()))
        nonce = rpc(edge, "flk_get_account_info", faucet.public.raw.hex())["nonce"]
        result: dict[str, list[float]] = {"edge": [], "member": [], "edge_seen_at_member": []}
        for k in range(WARMUP + txs):
            for side in ("edge", "member", "edge_seen_at_member") if k % 2 == 0 else ("member", "edge"):
                url = members[k % committee] if side == "member" else edge
                seen_at = members[k % committee] if side == "edge_seen_at_member" else None
                nonce += 1
                ms = commit_ms(url, faucet, layout.chain_id, nonce, seen_at)
                if k >= WARMUP:
                    result[side].append(ms)
        return result
    finally:
        stop_nodes(procs)
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--txs", type=int, default=30, help="transfers per side and run (after a warm-up)")
    ap.add_argument("--committee", type=int, default=4)
    args = ap.parse_args()
    if args.quick:
        args.runs, args.txs = 1, 12
    work = Path(tempfile.mkdtemp(prefix="bench-forward-"))
    try:
        runs = [one_run(work, f"127.63.{i}.1", args.committee, args.txs) for i in range(args.runs)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    edge = statistics.median(statistics.median(r["edge"]) for r in runs)
    member = statistics.median(statistics.median(r["member"]) for r in runs)
    figures: list[dict[str, Any]] = [
        {
            "name": "tx_forward_commit_ms_p50",
            "value": round(edge, 1),
            "unit": "ms",
            "anchor": "sent to a committee member",
            "anchor_value": round(member, 1),
            "ratio": round(edge / member, 2),
            "goal": "<= 1.3",
        }
    ]
    for f in figures:
        ok = "OK" if f["ratio"] <= 1.3 else "MISS"
        print(f"{f['name']}  {f['value']} {f['unit']}  ({f['anchor']} {f['anchor_value']} {f['unit']})  "
              f"ratio {f['ratio']}  goal {f['goal']}  {ok}")  # fmt: skip
    for i, r in enumerate(runs):
        e, m, x = sorted(r["edge"]), sorted(r["member"]), sorted(r["edge_seen_at_member"])
        print(f"# run {i + 1}: edge p50 {statistics.median(e):.1f} max {e[-1]:.1f} ms; "
              f"member p50 {statistics.median(m):.1f} max {m[-1]:.1f} ms; {len(e)} + {len(m)} transfers, "
              f"committee {args.committee} + 1 edge node; sent to the edge, seen at a member: p50 "
              f"{statistics.median(x):.1f} ms ({len(x)})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
