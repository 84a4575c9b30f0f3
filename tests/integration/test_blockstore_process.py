"""The blockstore from real processes: SIGKILL mid-put, CLI store/get/stats, corruption seen by `dev get`."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from lightning.blockstore import BLOCK_SIZE, BlockStore, root_of_bytes
from tests.integration.harness import lightning_cmd, run_cli


def _stats(home: Path):
    with BlockStore(home / "data" / "blockstore", map_size=1 << 30) as s:
        return s.statistics()


def test_sigkill_mid_put_leaves_no_half_object(tmp_path):
    home = tmp_path / "h"
    assert run_cli("init", "--dev", "--home", str(home)).returncode == 0
    kept = tmp_path / "kept"
    kept.write_bytes(random.Random(1).randbytes(BLOCK_SIZE + 5))
    res = run_cli("dev", "store", str(kept), "--home", str(home))
    assert res.returncode == 0, res.stderr
    kept_root = res.stdout.split()[0]

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(lightning_cmd("dev", "store", str(fifo), "--home", str(home)), stderr=subprocess.PIPE)
    with open(fifo, "wb") as f:
        f.write(os.urandom(64 * BLOCK_SIZE))  # 16 MiB: several staged transactions
        f.flush()
        # Wait until the writer has staged blocks (observed in LMDB from this process), then kill it mid-put.
        deadline = time.monotonic() + 60
        while _stats(home).staging_writers == 0:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    st = _stats(home)  # opening sweeps the dead writer's staging
    assert st.staging_writers == 0 and st.objects == 1 and st.blocks == 2 and st.bytes == BLOCK_SIZE + 5
    got = tmp_path / "kept.out"
    assert run_cli("dev", "get", kept_root, "--home", str(home), "-o", str(got)).returncode == 0
    assert got.read_bytes() == kept.read_bytes()


def test_cli_store_get_stats_and_corruption(tmp_path, spawn):
    node = spawn("n")
    node.wait_ready()  # the CLI works beside a running node (LMDB is multi-process safe)
    home = node.home
    data = random.Random(2).randbytes(3 * BLOCK_SIZE + 1)
    src = tmp_path / "file.bin"
    src.write_bytes(data)
    res = run_cli("dev", "store", str(src), "--pin", "--home", str(home))
    assert res.returncode == 0, res.stderr
    root = res.stdout.split()[0]
    assert root == root_of_bytes(data).hex()

    res = run_cli("dev", "blockstore", "stats", "--home", str(home))
    assert "objects:    1 (1 pinned)" in res.stdout and f"bytes:      {len(data)}" in res.stdout

    out = tmp_path / "out.bin"
    assert run_cli("dev", "get", root, "--home", str(home), "-o", str(out)).returncode == 0
    assert out.read_bytes() == data
    res = subprocess.run(lightning_cmd("dev", "get", root, "--home", str(home)), capture_output=True)
    assert res.returncode == 0 and res.stdout == data
    assert node.stop() == 0

    # Flip a bit of block 2 inside LMDB: `dev get` refuses, names the block, leaves no output file.
    with BlockStore(home / "data" / "blockstore", map_size=1 << 30) as s:
        info = s.get_info(bytes.fromhex(root))
        h = info.block_hash(2)
        with s.env.begin(write=True) as txn:
            db = s.env.open_db(b"blocks", txn=txn)
            raw = bytearray(txn.get(h, db=db))
            raw[7] ^= 0x80
            txn.put(h, bytes(raw), db=db)
    bad = tmp_path / "bad.bin"
    res = run_cli("dev", "get", root, "--home", str(home), "-o", str(bad))
    assert res.returncode == 1
    assert f"stored block 2 of object {root} is corrupt" in res.stderr and "Traceback" not in res.stderr
    assert not bad.exists() and not list(tmp_path.glob(".bad.bin*"))

    res = run_cli("dev", "get", "zz", "--home", str(home))
    assert res.returncode == 2 and "not a blockstore root" in res.stderr  # a bad argument value: usage
    res = run_cli("dev", "store", str(tmp_path / "missing"), "--home", str(home))
    assert res.returncode == 2 and "missing: no such file" in res.stderr
