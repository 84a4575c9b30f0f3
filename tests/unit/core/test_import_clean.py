"""Sans-IO cores import no I/O stack: a core can be read, tested and reused without trio, QUIC, HTTP or LMDB.

Each import runs in a fresh interpreter (``sys.modules`` of this one already holds everything)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

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
    "lightning.config": (),  # and with it every package's config module
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


FACES = sorted(
    f"lightning.{p.parent.name}"
    for p in Path(__file__).parents[3].joinpath("lightning").glob("*/__init__.py")
    if "lazy_exports" in p.read_text()
)


@pytest.mark.parametrize("package", FACES)
def test_package_faces_export_their_modules_names(package: str) -> None:
    # The faces re-export their modules' __all__ lazily; every name must resolve, to the object its module defines.
    mod = importlib.import_module(package)
    assert len(mod.__all__) == len(set(mod.__all__)) > 0
    for name in mod.__all__:
        value = getattr(mod, name)
        assert value is not None and name in dir(mod), f"{package}.{name}"
    with pytest.raises(AttributeError):
        _ = mod.no_such_name


def test_names_from_a_face_load_only_their_module() -> None:
    assert loaded_by("lightning.state; from lightning.state import Block, sign_transaction") == []
