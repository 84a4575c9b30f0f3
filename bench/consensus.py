"""BFT consensus speed: 4 committee processes on this machine (see ../shared/BENCHMARKS.md).

Figures (median over runs):
- consensus_tx_rate: signed transfers committed per second by a 4-member committee (real `lightning run` processes on
  127.57.0.1-4, QUIC between them), from the first submission to the last commit. Anchor: the single-node sequencer
  (a one-member genesis committee) under the same load, same minute. Goal (issue 7): value >= 2,000 tx/s.
- consensus_commit_latency_p50 / _p99: per transaction, from its submission (flk_send_txn answered) to the moment a
  node's long poll (flk_get_blocks) returns the block holding it. Goal: p50 <= 250 ms.

Load: ``--senders`` funded accounts each send ``--per-sender`` transfers (within the mempool's nonce window),
submitted round-robin to the committee's RPC endpoints by ``--concurrency`` client tasks, ``--batch`` transactions per
JSON-RPC batch request (default 50; ``--batch 1`` sends one request per transaction, which measures the client and
the HTTP path more than consensus).

Usage: python bench/consensus.py [--quick] [--json PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.spawn import start_nodes
from lightning.chain.forward import decode_block_record
from lightning.crypto import SigningKey
from lightning.devnet import make_cluster
from lightning.rpc.client import _exchange, rpc_request
from lightning.state.tx import sign_transaction

TO = bytes.fromhex("46" * 32)


async def wait_receipt(url: str, tx_hash: bytes) -> None:
    while True:
        r = await rpc_request(url, "flk_get_txn_receipt", [tx_hash.hex()], timeout_s=30)
        if r is not None:
            return
        await trio.sleep(0.05)


async def send_batch(url: str, raw_txs: list[str]) -> None:
    """One HTTP request carrying a JSON-RPC batch of flk_send_txn calls (the node answers batches of up to 100)."""
    parts = urllib.parse.urlsplit(url)
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": "flk_send_txn", "params": [raw]} for i, raw in enumerate(raw_txs)]
    ).encode()
    with trio.fail_after(30):
        stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
        async with stream:
            answers = json.loads(await _exchange(stream, parts.netloc, parts.path or "/", body))
    errors = [a["error"] for a in answers if "error" in a]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(raw_txs)} transactions refused, e.g. {errors[0]}")


async def run_load(
    urls: list[str], faucet: SigningKey, chain_id: int, senders: int, per_sender: int, conc: int, batch: int = 1
) -> dict[str, float]:
    # fund the senders from the faucet (its nonce window is 64: in chunks)
    keys = [SigningKey(bytes([7]) * 16 + i.to_bytes(16, "big")) for i in range(senders)]
    info = await rpc_request(urls[0], "flk_get_account_info", [faucet.public.raw.hex()])
    nonce = info["nonce"]
    for chunk in range(0, senders, 48):
        last = None
        for k in keys[chunk : chunk + 48]:
            nonce += 1
            stx = sign_transaction(
                faucet, chain_id=chain_id, nonce=nonce, method="transfer", to=k.public.raw, amount=10**18
            )
            await rpc_request(urls[0], "flk_send_txn", [stx.raw.hex()])
            last = stx.hash
        assert last is not None
        await wait_receipt(urls[0], last)

    txs = [
        sign_transaction(k, chain_id=chain_id, nonce=n, method="transfer", to=TO, amount=1)
        for n in range(1, per_sender + 1)
        for k in keys
    ]
    submitted: dict[bytes, float] = {}
    committed: dict[bytes, float] = {}
    total = len(txs)
    head = (await rpc_request(urls[0], "flk_get_state_root", []))["height"]
    done = trio.Event()

    async def watch() -> None:
        nxt = head + 1
        while len(committed) < total:
            records = await rpc_request(urls[0], "flk_get_blocks", [nxt, 64, 5000], timeout_s=30)
            now = time.perf_counter()
            for text in records:
                block, _ = decode_block_record(bytes.fromhex(text))
                for raw in block.txs:
                    committed.setdefault(raw, now)
                nxt = block.height + 1
        done.set()

    batches = [txs[k : k + batch] for k in range(0, total, batch)]

    async def worker(w: int) -> None:
        for i in range(w, len(batches), conc):
            group = batches[i]
            url = urls[i % len(urls)]
            if batch == 1:
                await rpc_request(url, "flk_send_txn", [group[0].raw.hex()], timeout_s=30)
            else:
                await send_batch(url, [stx.raw.hex() for stx in group])
            now = time.perf_counter()
            for stx in group:
                submitted[stx.raw] = now

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        for w in range(conc):
            nursery.start_soon(worker, w)
        with trio.move_on_after(300):
            await done.wait()
        nursery.cancel_scope.cancel()
    end = max(committed.values())
    lat = sorted(committed[t] - submitted[t] for t in submitted if t in committed)
    return {
        "rate": len(committed) / (end - t0),
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "committed": len(committed),
    }


def one_run(committee: int, args: argparse.Namespace, work: Path, base: str) -> dict[str, float]:
    out = work / f"c{committee}-{time.monotonic_ns()}"
    layout = make_cluster(out, nodes=committee, committee=committee, host_base=base)
    procs, urls = start_nodes([n.home for n in layout.nodes], ready_s=60)
    try:
        faucet = SigningKey(bytes.fromhex((out / "faucet.key").read_text().strip()))
        return trio.run(
            run_load, urls, faucet, layout.chain_id, args.senders, args.per_sender, args.concurrency, args.batch
        )
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--senders", type=int, default=200)
    ap.add_argument("--per-sender", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--batch", type=int, default=50, help="transactions per JSON-RPC batch request (1: one each)")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.senders, args.per_sender = 1, 100, 30
    work = Path(tempfile.mkdtemp(prefix="bench-consensus-"))
    try:
        bft = [one_run(4, args, work, "127.57.0.1") for _ in range(args.runs)]
        seq = [one_run(1, args, work, "127.58.0.1") for _ in range(args.runs)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rate = statistics.median(r["rate"] for r in bft)
    anchor = statistics.median(r["rate"] for r in seq)
    p50 = statistics.median(r["p50_ms"] for r in bft)
    p99 = statistics.median(r["p99_ms"] for r in bft)
    figures: list[dict[str, Any]] = [
        {
            "name": "consensus_tx_rate",
            "value": round(rate, 1),
            "unit": "tx/s",
            "anchor": "single-node sequencer",
            "anchor_value": round(anchor, 1),
            "ratio": round(rate / anchor, 3),
            "goal": "value >= 2000",
        },
        {
            "name": "consensus_commit_latency_p50",
            "value": round(p50, 1),
            "unit": "ms",
            "anchor": None,
            "anchor_value": None,
            "ratio": None,
            "goal": "value <= 250",
        },
        {
            "name": "consensus_commit_latency_p99",
            "value": round(p99, 1),
            "unit": "ms",
            "anchor": None,
            "anchor_value": None,
            "ratio": None,
            "goal": None,
        },
    ]
    for f in figures:
        anchor_txt = f"  ({f['anchor']} {f['anchor_value']} {f['unit']})  ratio {f['ratio']}" if f["anchor"] else ""
        print(f"{f['name']}  {f['value']} {f['unit']}{anchor_txt}  goal {f['goal']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
