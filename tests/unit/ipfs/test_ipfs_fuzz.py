"""Hypothesis: garbage and mutated input never raises anything but our typed errors (IpfsError subclasses)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.ipfs import (
    DAG_PB,
    Block,
    CarDecoder,
    Cid,
    DagPbError,
    FileReader,
    InvalidCid,
    IpfsError,
    UnixFsError,
    decode_pbnode,
    decode_unixfs,
    inline_block,
    parse_cid,
    resolve_path_sync,
    verify_block,
)
from tests.ipfs_fixtures import fixtures

SMALL_CARS = ["tiny.car", "inline.car", "rawtype-leaves.car", "nested.car", "deep-v0.car"]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "overwrite"]))
        pos = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[pos : pos + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del out[pos:]
        else:
            out[pos : pos + 1] = bytes([draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x12, 0x20, 0x01, 0x55, 0x70]))])
    return bytes(out)


def decode_car(data: bytes, chunk: int) -> list[Block]:
    decoder = CarDecoder()
    blocks: list[Block] = []
    for i in range(0, len(data), chunk):
        blocks += decoder.feed(data[i : i + chunk])
    decoder.finish()
    return blocks


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_car_decoder_on_garbage(data: bytes, chunk: int) -> None:
    try:
        decode_car(data, chunk)
    except IpfsError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(SMALL_CARS), st.integers(1, 5000))
def test_car_decoder_on_mutated_fixtures(data: st.DataObject, name: str, chunk: int) -> None:
    stream = data.draw(mutated(fixtures()[name].data))
    try:
        blocks = decode_car(stream, chunk)
    except IpfsError:
        return
    for block in blocks:  # whatever came out is what its CID names
        verify_block(block.cid, block.data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_dag_pb_and_unixfs_on_garbage(data: bytes) -> None:
    try:
        node = decode_pbnode(data)
    except DagPbError:
        pass
    else:
        try:
            decode_unixfs(node.data)
        except UnixFsError:
            pass
    try:
        decode_unixfs(data)
    except UnixFsError:
        pass


def _dag_pb_blocks() -> list[bytes]:
    return [b.data for name in SMALL_CARS for b in fixtures()[name].blocks() if b.cid.codec == DAG_PB]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_dag_pb_on_mutated_blocks(data: st.DataObject) -> None:
    block = data.draw(mutated(data.draw(st.sampled_from(_dag_pb_blocks()))))
    try:
        decode_unixfs(decode_pbnode(block).data)
    except (DagPbError, UnixFsError):
        pass


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from(["deep-v0.car", "trickle.car", "inline.car", "nested.car", "hamt.car"]))
def test_traversal_of_a_structurally_hostile_dag(data: st.DataObject, name: str) -> None:
    """Blocks whose hashes match but whose structure lies (as if the origin found preimages): the traversal
    raises only typed errors, and never returns more bytes than the root declared."""
    fx = fixtures()[name]
    blocks = fx.block_map()
    dag_pb = sorted(key for key, block in blocks.items() if block.cid.codec == DAG_PB)
    victim = data.draw(st.sampled_from(dag_pb))
    blocks[victim] = Block(blocks[victim].cid, data.draw(mutated(blocks[victim].data)))

    def get(cid: Cid) -> Block:
        block = blocks.get(cid.multihash)
        if block is None:
            raise KeyError(cid)
        return block

    path = data.draw(st.sampled_from(sorted(fx.files))) if fx.files else ""
    try:
        target = resolve_path_sync(fx.root, path, get).cid
        reader = FileReader(target)
        total = 0
        while (cid := reader.wanted()) is not None:
            total += len(reader.feed(inline_block(cid) or get(cid)))
            assert reader.size is not None and total <= reader.size
    except (IpfsError, KeyError):
        return
    assert total == reader.size


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_cid_parsing_on_garbage(value: str | bytes) -> None:
    try:
        if isinstance(value, str):
            parse_cid(value)
        else:
            Cid.parse(value)
    except InvalidCid:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567QmzfFkKBZ", min_size=1, max_size=70))
def test_cid_parsing_on_plausible_text(text: str) -> None:
    try:
        parse_cid(text)
    except InvalidCid:
        pass
