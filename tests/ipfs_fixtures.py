"""The IPFS fixtures of tests/fixtures/ipfs (CARs made by ipfs-car, see generate.mjs there) and their expected contents.

``fixtures()`` maps each CAR's file name to a :class:`CarFixture`: its root CID as ipfs-car printed it, the
original bytes (recomputed here from the manifest's deterministic spec), and ipfs-car's own listing of it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning.ipfs import Block, CarDecoder, Cid

FIXTURES_DIR = Path(__file__).parent / "fixtures" / "ipfs"


def det(seed: str, size: int) -> bytes:
    """sha256("seed:0") || sha256("seed:1") || ... cut to ``size`` bytes (generate.mjs makes the same)."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:size])


def content_of(spec: dict[str, Any]) -> bytes:
    if "text" in spec:
        data = str(spec["text"]).encode("utf-8")
    elif spec.get("repeat"):
        data = det(spec["seed"], spec["size"] // spec["repeat"]) * spec["repeat"]
    else:
        data = det(spec["seed"], spec["size"])
    if "sha256" in spec:
        assert hashlib.sha256(data).hexdigest() == spec["sha256"], spec
    return data


@dataclass(frozen=True)
class CarFixture:
    name: str
    path: Path
    root: Cid
    kind: str
    """"file" or "directory"."""
    content: bytes | None
    """The file's bytes (kind "file")."""
    files: dict[str, bytes] = field(default_factory=dict)
    """Path inside the directory -> bytes (kind "directory")."""
    listing: list[tuple[str, str, int | None]] = field(default_factory=list)
    """ipfs-car's listing (ipfs-unixfs-exporter): (path starting with ".", CID, size or None); maybe a sample."""
    listing_count: int = 0
    made_with: object = None

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    def blocks(self) -> list[Block]:
        """The CAR's blocks in file order (ipfs-car writes children before parents), verified."""
        return car_blocks(self.data)

    def block_map(self) -> dict[bytes, Block]:
        """multihash -> block."""
        return {block.cid.multihash: block for block in self.blocks()}


def car_blocks(data: bytes) -> list[Block]:
    decoder = CarDecoder()
    blocks = decoder.feed(data)
    decoder.finish()
    return blocks


@functools.cache
def fixtures() -> dict[str, CarFixture]:
    manifest = json.loads((FIXTURES_DIR / "manifest.json").read_text())
    out: dict[str, CarFixture] = {}
    for name, entry in manifest["cars"].items():
        out[name] = CarFixture(
            name=name,
            path=FIXTURES_DIR / name,
            root=Cid.parse(entry["root"]),
            kind=entry["kind"],
            content=content_of(entry["content"]) if entry["kind"] == "file" else None,
            files={p: content_of(spec) for p, spec in entry.get("files", {}).items()},
            listing=[(p, cid, size) for p, cid, size in entry["ls"]["entries"]],
            listing_count=entry["ls"]["count"],
            made_with=entry["made_with"],
        )
    return out


FILE_FIXTURES = sorted(name for name, fx in fixtures().items() if fx.kind == "file")
DIR_FIXTURES = sorted(name for name, fx in fixtures().items() if fx.kind == "directory")
