"""dag-pb (strict PBNode/PBLink) and UnixFS Data decoding: the docs/ipfs.md vectors, ipfs-car's blocks, bad input."""

from __future__ import annotations

import pytest

from lightning.ipfs import DAG_PB, Cid, DagPbError, DataType, UnixFsError, decode_pbnode, decode_unixfs
from lightning.ipfs._varint import encode_uvarint
from lightning.ipfs.dagpb import PbLink, PbNode, UnixFsData, encode_pbnode, encode_unixfs
from tests.ipfs_fixtures import fixtures

HELLO = Cid.parse("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq")  # raw block b"hello"

# (hex, CIDv1, expected node) — the vectors of docs/ipfs.md, cross-checked with @ipld/dag-pb and ipfs-unixfs.
VECTORS = [
    ("", "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", PbNode((), None)),
    (
        "0a080802120268691802",
        "bafybeihc73huxdpsqleijcxj64fnn2lqng2dl5nvsb6d777bjjv7lpxq3i",
        PbNode((), bytes.fromhex("0802120268691802")),
    ),
    (
        "12280a24015512202cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982418050a06080218052005",
        "bafybeias3tmcwzq3geevhmexl5xtax7qwprjrucx2qgon3kqucmdqlluhm",
        PbNode((PbLink(HELLO, None, 5),), bytes.fromhex("080218052005")),
    ),
    (
        "12330a24015512202cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824120968656c6c6f2e74787418050a020801",
        "bafybeifvbzj3rk2unsdhbq6wisbcblekwf2pjpgjmppv6ejplsyyhdn4ym",
        PbNode((PbLink(HELLO, b"hello.txt", 5),), bytes.fromhex("0801")),
    ),
]


@pytest.mark.parametrize(("hex_block", "cid", "node"), VECTORS)
def test_doc_vectors(hex_block: str, cid: str, node: PbNode) -> None:
    block = bytes.fromhex(hex_block)
    assert decode_pbnode(block) == node
    assert encode_pbnode(node) == block
    assert str(Cid.of(block, codec=DAG_PB)) == cid


def test_doc_vectors_unixfs() -> None:
    assert decode_unixfs(VECTORS[1][2].data) == UnixFsData(DataType.FILE, data=b"hi", filesize=2)
    assert decode_unixfs(VECTORS[2][2].data) == UnixFsData(DataType.FILE, filesize=5, blocksizes=(5,))
    assert decode_unixfs(VECTORS[3][2].data) == UnixFsData(DataType.DIRECTORY)
    with pytest.raises(UnixFsError, match="not UnixFS"):
        decode_unixfs(VECTORS[0][2].data)


def test_every_ipfs_car_dag_pb_block_round_trips() -> None:
    types: set[DataType] = set()
    count = 0
    for fx in fixtures().values():
        for block in fx.blocks():
            if block.cid.codec != DAG_PB:
                continue
            node = decode_pbnode(block.data)
            assert encode_pbnode(node) == block.data
            fs = decode_unixfs(node.data)
            types.add(fs.type)
            if fs.type != DataType.HAMT_SHARD:  # ipfs-car writes HAMT fields in another order
                assert encode_unixfs(fs) == node.data
            count += 1
    assert types == {DataType.FILE, DataType.RAW, DataType.DIRECTORY, DataType.HAMT_SHARD}
    assert count > 300


def field(number: int, wire: int, payload: bytes) -> bytes:
    key = encode_uvarint(number << 3 | wire)
    return key + (encode_uvarint(len(payload)) + payload if wire == 2 else payload)


LINK = field(1, 2, HELLO.binary)
DATA = field(1, 2, b"\x08\x02")


def links(*bodies: bytes) -> bytes:
    return b"".join(field(2, 2, body) for body in bodies)


def test_field_orders() -> None:
    links_first = decode_pbnode(links(LINK, LINK) + DATA)
    data_first = decode_pbnode(DATA + links(LINK, LINK))
    assert links_first == data_first and len(links_first.links) == 2
    with pytest.raises(DagPbError, match="contiguous"):
        decode_pbnode(links(LINK) + DATA + links(LINK))
    with pytest.raises(DagPbError, match="duplicate Data"):
        decode_pbnode(DATA + DATA)


@pytest.mark.parametrize(
    ("block", "match"),
    [
        (field(3, 2, b"x"), "unexpected field 3"),
        (field(1, 0, b"\x01"), "unexpected field 1"),
        (links(field(2, 2, b"name")), "no Hash"),
        (links(field(2, 2, b"n") + LINK), "out of order"),
        (links(LINK + LINK), "out of order"),
        (links(LINK + field(3, 0, b"\x05") + field(2, 2, b"n")), "out of order"),
        (links(LINK + field(4, 0, b"\x01")), "unexpected field 4"),
        (links(LINK + field(3, 2, b"\x05")), "unexpected field 3"),
        (links(field(1, 2, b"\x01\x55\x12\x20" + b"\x00" * 31)), "not a CID"),
        (links(field(1, 2, HELLO.binary + b"\x00")), "bytes after the CID"),
        (b"\x12\x05\x0a", "runs past"),
        (b"\x12", "truncated"),
        (b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "longer than 10"),
    ],
)
def test_strict_dag_pb(block: bytes, match: str) -> None:
    with pytest.raises(DagPbError, match=match):
        decode_pbnode(block)


def test_unixfs_fields() -> None:
    packed = field(1, 0, b"\x02") + field(3, 0, b"\x0a") + field(4, 2, b"\x03\x07")
    unpacked = field(1, 0, b"\x02") + field(3, 0, b"\x0a") + field(4, 0, b"\x03") + field(4, 0, b"\x07")
    assert decode_unixfs(packed) == decode_unixfs(unpacked) == UnixFsData(DataType.FILE, filesize=10, blocksizes=(3, 7))
    unknown = field(1, 0, b"\x01") + field(15, 0, b"\x05") + field(16, 2, b"zz") + field(17, 5, b"abcd")
    assert decode_unixfs(unknown).type == DataType.DIRECTORY
    mtime = field(1, 0, encode_uvarint((-5) % (1 << 64))) + field(2, 5, (7).to_bytes(4, "little"))
    fs = decode_unixfs(field(1, 0, b"\x02") + field(7, 0, encode_uvarint(0o644)) + field(8, 2, mtime))
    assert fs.mode == 0o644 and fs.mtime == (-5, 7)
    assert decode_unixfs(encode_unixfs(fs)) == fs


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "no Type"),
        (field(1, 0, b"\x09"), "unknown UnixFS type 9"),
        (field(1, 2, b"\x02"), "wire type"),
        (field(1, 0, b"\x02") + field(2, 0, b"\x01"), "wire type"),
        (field(1, 0, b"\x02") + field(9, 3, b""), "wire type 3"),
        (field(1, 0, b"\x05"), "fanout None"),
        (field(1, 0, b"\x05") + field(6, 0, b"\x03"), "fanout 3"),
        (field(1, 0, b"\x05") + field(6, 0, encode_uvarint(2048)), "fanout 2048"),
        (field(1, 0, b"\x02") + field(7, 0, encode_uvarint(1 << 33)), "32 bits"),
        (field(1, 0, b"\x02") + field(8, 2, field(2, 5, b"\x01\x00\x00\x00")), "no Seconds"),
        (field(1, 0, b"\x02") + field(8, 2, field(1, 0, b"\x01") + field(2, 5, b"\x00" * 4)), "nanoseconds 0"),
        (field(1, 0, b"\x02") + field(8, 2, field(1, 0, b"\x01") + field(2, 5, b"\x00")), "truncated"),
        (field(1, 0, b"\x02") + field(17, 1, b"\x00"), "truncated"),
    ],
)
def test_bad_unixfs(data: bytes, match: str) -> None:
    with pytest.raises(UnixFsError, match=match):
        decode_unixfs(data)
