"""LMDB environments and write transactions, opened the same way by every store (blockstore, state, broadcast).

Environments are opened with a large sparse map and no ``writemap`` (a full disk is an error, never a SIGBUS);
write transactions roll back on any exception and turn a full map or disk into the store's own error. The thread
that runs those writes is ``lightning/writer.py``'s; this module has no trio in it, so the sans-IO state machine can
use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import lmdb

from lightning.errors import LightningError

__all__ = ["open_env", "write_txn"]


def open_env(
    path: Path,
    *,
    what: str,
    error: type[LightningError],
    map_size: int,
    max_dbs: int,
    max_readers: int = 512,
    sync: bool = True,
    readonly: bool = False,
) -> lmdb.Environment:
    """Open (creating) an LMDB environment the way every store here does: a large sparse map, no ``writemap`` (a
    full disk is an error from a write, never a SIGBUS), no readahead. Raises ``error`` naming the path."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        return lmdb.open(
            str(path),
            map_size=map_size,
            max_dbs=max_dbs,
            max_readers=max_readers,
            sync=sync,
            writemap=False,
            readahead=False,
            readonly=readonly,
            lock=True,
        )
    except lmdb.Error as exc:
        raise error(f"{path}: cannot open {what}: {exc}") from None
    except OSError as exc:
        raise error(f"{path}: cannot open {what}: {exc.strerror}") from None


@contextlib.contextmanager
def write_txn(
    env: lmdb.Environment, path: Path, *, full: type[LightningError], full_hint: str, error: type[LightningError]
) -> Iterator[lmdb.Transaction]:
    """One write transaction, committed on success, aborted on any exception. A full map or disk raises ``full``
    (the transaction rolled back, the store as it was); other LMDB failures raise ``error``."""
    try:
        with env.begin(write=True) as txn:
            yield txn
    except lmdb.MapFullError:
        raise full(f"{path}: the map is full; {full_hint}") from None
    except lmdb.DiskError as exc:
        raise full(f"{path}: disk error while writing: {exc}") from None
    except lmdb.Error as exc:
        if "No space left" in str(exc) or "ENOSPC" in str(exc):
            raise full(f"{path}: no space left on the device") from None
        raise error(f"{path}: LMDB write failed: {exc}") from None
