"""Sans-IO cores import no I/O stack: a core can be read, tested and reused without trio, QUIC, HTTP or LMDB.

Each import runs in a fresh interpreter (``sys.modules`` of this one already holds everything)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_STACK = ("trio", "aioquic", "h11", "httptools", "lmdb")

# module -> the I/O packages it may load
CASES = {
    "lightning.consensus.core": (),
    "lightning.broadcast.core": (),
    "lightning.blockstore.verify": (),
    "lightning.ipfs": (),
    "lightning.chain.mempool_core": ("lmdb",),
    "lightning.state": ("lmdb",),  # the state machine stores through LMDB (state/store.py)
    "lightning.state.store": ("lmdb",),
    "lightning.state.executor": (),
}


def loaded_by(module: str) -> list[str]:
    code = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(IO_STACK)!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out))


@pytest.mark.parametrize("module", sorted(CASES))
def test_core_loads_no_io_stack(module: str) -> None:
    unexpected = [m for m in loaded_by(module) if m not in CASES[module]]
    assert unexpected == [], f"importing {module} loads {unexpected}"


def test_package_faces_still_export_their_names() -> None:
    # The faces import lazily; every name they list must still resolve.
    import importlib

    packages = ("lightning.net", "lightning.blockstore", "lightning.broadcast", "lightning.state", "lightning.chain")
    for package in packages:
        mod = importlib.import_module(package)
        for name in mod.__all__:
            assert getattr(mod, name) is not None, f"{package}.{name}"
        with pytest.raises(AttributeError):
            _ = mod.no_such_name
