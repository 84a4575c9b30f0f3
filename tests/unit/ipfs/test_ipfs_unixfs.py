"""UnixFS traversal over ipfs-car's fixtures and hand-made bad DAGs: files, byte ranges, paths, listings."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from lightning.errors import LocalProtocolError
from lightning.ipfs import (
    DAG_PB,
    RAW,
    Block,
    Cid,
    DataType,
    DirectoryLister,
    FileReader,
    InvalidPath,
    LimitExceeded,
    NotADirectory,
    NotAFile,
    PathNotFound,
    UnixFsError,
    Unsupported,
    list_directory_sync,
    parse_path,
    read_file_sync,
    resolve_path_sync,
    verify_block,
)
from lightning.ipfs.dagpb import PbLink, PbNode, UnixFsData, encode_pbnode, encode_unixfs
from tests.ipfs_fixtures import DIR_FIXTURES, FILE_FIXTURES, fixtures


class Store:
    """A block getter over a dict, counting what it hands out."""

    def __init__(self, blocks: dict[bytes, Block] | None = None) -> None:
        self.blocks = dict(blocks or {})
        self.fetched: list[Cid] = []

    def __call__(self, cid: Cid) -> Block:
        self.fetched.append(cid)
        return self.blocks[cid.multihash]

    def put(self, data: bytes, codec: int = RAW) -> Cid:
        cid = Cid.of(data, codec=codec)
        self.blocks[cid.multihash] = verify_block(cid, data)
        return cid

    def node(self, kind: DataType, links: Sequence[tuple[Cid, bytes | None]] = (), **fields: Any) -> Cid:
        fs = UnixFsData(kind, **fields)
        pb = PbNode(tuple(PbLink(cid, name, None) for cid, name in links), encode_unixfs(fs))
        return self.put(encode_pbnode(pb), DAG_PB)

    def file(self, children: list[tuple[Cid, int]], data: bytes = b"", filesize: int | None = -1) -> Cid:
        total = len(data) + sum(size for _, size in children)
        return self.node(
            DataType.FILE,
            [(cid, None) for cid, _ in children],
            data=data or None,
            filesize=total if filesize == -1 else filesize,
            blocksizes=tuple(size for _, size in children),
        )


def fixture_store(name: str) -> Store:
    return Store(fixtures()[name].block_map())


@pytest.mark.parametrize("name", FILE_FIXTURES)
def test_files_reassemble_exactly(name: str) -> None:
    fx = fixtures()[name]
    store = fixture_store(name)
    reader = FileReader(fx.root)
    assert reader.size is None and reader.wanted() == fx.root
    chunks = []
    while (cid := reader.wanted()) is not None:
        block = Block(cid, cid.digest) if cid.is_identity else store(cid)
        chunks.append(reader.feed(block))
        assert reader.size == len(fx.content or b"")  # known from the first block on
    assert b"".join(chunks) == fx.content
    assert reader.done and reader.upcoming(3) == []


def test_fetch_order_is_depth_first_pre_order() -> None:
    fx = fixtures()["deep-raw.car"]
    store = fixture_store("deep-raw.car")
    assert b"".join(read_file_sync(fx.root, store)) == fx.content
    # ipfs-car writes children before parents: reversing its per-parent order gives the pre-order we fetch in
    children_first = [b.cid for b in fx.blocks()]
    assert store.fetched[0] == fx.root == children_first[-1]
    leaves = [cid for cid in store.fetched if cid.codec == RAW]
    assert leaves == [cid for cid in children_first if cid.codec == RAW]  # leaves in file order either way
    assert len(store.fetched) == len(set(store.fetched)) == len(children_first)


def test_upcoming_lists_the_next_known_blocks() -> None:
    fx = fixtures()["deep-raw.car"]
    store = fixture_store("deep-raw.car")
    reader = FileReader(fx.root)
    reader.feed(store(fx.root))
    upcoming = reader.upcoming(10)
    assert upcoming[0] == reader.wanted() and 1 < len(upcoming) <= 10


@pytest.mark.parametrize("name", ["deep-raw.car", "deep-v0.car", "trickle.car", "inline.car", "onemib.car"])
def test_byte_ranges(name: str) -> None:
    fx = fixtures()[name]
    content = fx.content or b""
    rng = random.Random(name)
    store = fixture_store(name)
    ranges: list[tuple[int, int | None]] = [(0, 0), (0, 1), (len(content) - 1, len(content)), (0, len(content) + 9)]
    ranges.append((len(content) + 5, None))
    for _ in range(30):
        lo, hi = sorted(rng.sample(range(len(content) + 1), 2))
        ranges.append((lo, hi))
    for start, stop in ranges:
        got = b"".join(read_file_sync(fx.root, store, start=start, stop=stop))
        assert got == content[start:stop], (start, stop)


def test_a_small_range_fetches_one_path_down_the_dag() -> None:
    fx = fixtures()["deep-raw.car"]  # 1 KiB raw leaves, 4 links per node: root + 3 levels + leaf
    store = fixture_store("deep-raw.car")
    assert b"".join(read_file_sync(fx.root, store, start=40_000, stop=40_010)) == (fx.content or b"")[40_000:40_010]
    assert len(store.fetched) == 5
    store.fetched.clear()
    reader = FileReader(fx.root, start=10, stop=10)
    assert reader.feed(store(fx.root)) == b"" and reader.done and reader.size == len(fx.content or b"")


def test_directory_and_symlink_roots_are_not_files() -> None:
    store = Store()
    directory = store.node(DataType.DIRECTORY)
    symlink = store.node(DataType.SYMLINK, data=b"/etc/passwd")
    for cid, kind in ((directory, "directory"), (symlink, "symlink")):
        with pytest.raises(NotAFile) as info:
            list(read_file_sync(cid, store))
        assert info.value.kind == kind and info.value.cid == cid
    nested = fixtures()["nested.car"]
    with pytest.raises(NotAFile, match="directory"):
        list(read_file_sync(nested.root, fixture_store("nested.car")))


def collect_until_error(cid: Cid, get: Callable[[Cid], Block]) -> tuple[bytes, Exception | None]:
    out = bytearray()
    try:
        for chunk in read_file_sync(cid, get):
            out += chunk
    except Exception as exc:
        return bytes(out), exc
    return bytes(out), None


def test_sizes_that_contradict_each_other() -> None:
    store = Store()
    a, b = store.put(b"a" * 10), store.put(b"b" * 9)
    lying_parent = store.file([(a, 10), (b, 10)])  # b really has 9 bytes
    got, exc = collect_until_error(lying_parent, store)
    assert isinstance(exc, UnixFsError) and "declared 10" in str(exc)
    assert got == b"a" * 10  # never more than what the root declared before the failure
    cases = {
        "filesize 99": store.file([(a, 10)], filesize=99),
        "filesize 0": store.file([(a, 10)], filesize=None),  # absent means 0
        "2 links but 1 blocksizes": store.node(DataType.FILE, [(a, None), (b, None)], filesize=10, blocksizes=(10,)),
        "has a name": store.node(DataType.FILE, [(a, b"x")], filesize=10, blocksizes=(10,)),
        "not a file chunk": store.file([(store.node(DataType.DIRECTORY), 5), (a, 10)]),
        "parent declared 20": store.file([(store.file([(a, 10)]), 20)]),
        "not UnixFS": store.put(encode_pbnode(PbNode((), None)), DAG_PB),
    }
    for match, cid in cases.items():
        with pytest.raises(UnixFsError, match=match):
            list(read_file_sync(cid, store))


def test_unsupported_codecs_and_too_deep_dags() -> None:
    store = Store()
    cbor = Cid.of(b"\xa0", codec=0x71)
    with pytest.raises(Unsupported, match="dag-cbor"):
        list(read_file_sync(store.file([(cbor, 1)]), store))
    cid, size = store.put(b"leaf"), 4
    for _ in range(70):
        cid = store.file([(cid, size)])
    assert b"".join(read_file_sync(cid, store, depth_max=70)) == b"leaf"
    with pytest.raises(LimitExceeded, match="deeper than 64"):
        list(read_file_sync(cid, store))


def test_feeding_the_wrong_block_is_our_bug() -> None:
    store = Store()
    reader = FileReader(store.put(b"x"))
    with pytest.raises(LocalProtocolError):
        reader.feed(store(store.put(b"y")))


def test_paths_in_nested_directories() -> None:
    fx = fixtures()["nested.car"]
    store = fixture_store("nested.car")
    for path, content in fx.files.items():
        target = resolve_path_sync(fx.root, path, store)
        assert target.name == path.rsplit("/", 1)[-1]
        assert b"".join(read_file_sync(target.cid, store)) == content
    by_path = {p[2:]: cid for p, cid, _ in fx.listing if p != "."}
    for path, cid in by_path.items():  # directories too, against ipfs-car's own listing
        assert str(resolve_path_sync(fx.root, path, store).cid) == cid
    assert resolve_path_sync(fx.root, "", store).cid == fx.root and resolve_path_sync(fx.root, "/", store).name is None
    assert resolve_path_sync(fx.root, "a/./b/../b//c.txt", store).name == "c.txt"
    with pytest.raises(PathNotFound) as info:
        resolve_path_sync(fx.root, "a/nope/c.txt", store)
    assert info.value.path == "/a/nope"
    with pytest.raises(PathNotFound, match="is a file"):
        resolve_path_sync(fx.root, "index.html/x", store)
    with pytest.raises(PathNotFound, match="is a file"):
        resolve_path_sync(fx.root, "media/clip.bin/x", store)  # a dag-pb file


def test_paths_through_a_hamt_sharded_directory() -> None:
    fx = fixtures()["hamt.car"]
    store = fixture_store("hamt.car")
    assert fx.listing_count > 1000
    checked = 0
    for path, cid, _ in fx.listing:
        if path == ".":
            continue
        assert str(resolve_path_sync(fx.root, path[2:], store).cid) == cid, path
        checked += 1
    assert checked >= 20
    inner = resolve_path_sync(fx.root, "sub/inner.txt", store)
    assert b"".join(read_file_sync(inner.cid, store)) == fx.files["sub/inner.txt"]
    with pytest.raises(PathNotFound):
        resolve_path_sync(fx.root, "f9999.txt", store)


def test_hamt_with_another_hash_and_symlinks_in_paths() -> None:
    store = Store()
    shard = store.node(DataType.HAMT_SHARD, [(store.put(b"x"), b"00x")], hash_type=0x12, fanout=256)
    with pytest.raises(Unsupported, match="murmur3"):
        resolve_path_sync(shard, "x", store)
    link = store.node(DataType.SYMLINK, data=b"../elsewhere")
    directory = store.node(DataType.DIRECTORY, [(link, b"l")])
    with pytest.raises(Unsupported, match="SYMLINK"):
        resolve_path_sync(directory, "l/x", store)


def test_parse_path() -> None:
    assert parse_path("/a//b/./c/../d/") == ("a", "b", "d")
    assert parse_path("") == ()
    for bad in ("..", "a/../..", "a\x00b", "/".join(["x"] * 300), "x" * 2000):
        with pytest.raises(InvalidPath):
            parse_path(bad)


@pytest.mark.parametrize("name", DIR_FIXTURES)
def test_directory_listings(name: str) -> None:
    fx = fixtures()[name]
    store = fixture_store(name)
    entries = list_directory_sync(fx.root, store)
    top = sorted({p.split("/", 1)[0] for p in fx.files})
    assert sorted(e.name for e in entries) == top
    for entry in entries:
        if entry.name in fx.files:
            assert b"".join(read_file_sync(entry.cid, store)) == fx.files[entry.name]


def test_listing_a_file_fails() -> None:
    fx = fixtures()["deep-v0.car"]
    with pytest.raises(NotADirectory):
        list_directory_sync(fx.root, fixture_store("deep-v0.car"))
    tiny = fixtures()["tiny.car"]
    with pytest.raises(NotADirectory):
        DirectoryLister(tiny.root).feed(fixture_store("tiny.car")(tiny.root))
