"""CIDs: parsing (text in several multibases, binary), canonical text, the hash-function policy, block verification."""

from __future__ import annotations

import hashlib

import blake3
import pytest
from multiformats import CID as MfCid

from lightning.ipfs import (
    BLAKE3,
    DAG_PB,
    IDENTITY,
    RAW,
    SHA2_256,
    BlockMismatch,
    Cid,
    InvalidCid,
    Unsupported,
    check_supported,
    inline_block,
    parse_cid,
    verify_block,
)
from lightning.ipfs._varint import encode_uvarint

EMPTY_PB_V0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
EMPTY_PB_V1 = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
HELLO_RAW = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


def raw_cid(hash_code: int, digest: bytes, codec: int = RAW) -> bytes:
    return b"\x01" + encode_uvarint(codec) + encode_uvarint(hash_code) + encode_uvarint(len(digest)) + digest


def test_v0_and_v1_of_the_empty_dag_pb_block() -> None:
    v0, v1 = Cid.parse(EMPTY_PB_V0), Cid.parse(EMPTY_PB_V1)
    assert (v0.version, v0.codec, v0.hash_code) == (0, DAG_PB, SHA2_256)
    assert (v1.version, v1.codec, v1.hash_code) == (1, DAG_PB, SHA2_256)
    assert v0.digest == v1.digest == hashlib.sha256(b"").digest()
    assert v0 != v1 and v0.multihash == v1.multihash and v0.to_v1() == v1
    assert str(v0) == EMPTY_PB_V0 and str(v1) == EMPTY_PB_V1
    assert v0.binary == b"\x12\x20" + v0.digest
    assert Cid.of(b"", codec=DAG_PB, version=0) == v0
    assert repr(v1) == f"Cid({EMPTY_PB_V1})" and v1.codec_name == "dag-pb" and v1.hash_name == "sha2-256"


@pytest.mark.parametrize("base", ["base32", "base32upper", "base16", "base16upper", "base36", "base58btc", "base64"])
def test_every_multibase_parses_to_the_same_cid(base: str) -> None:
    text = MfCid.decode(HELLO_RAW).encode(base)
    cid = parse_cid(text)
    assert str(cid) == HELLO_RAW  # canonical text is base32 lowercase
    assert cid == Cid.of(b"hello")


def test_binary_decode_is_self_delimiting() -> None:
    cid = Cid.parse(HELLO_RAW)
    buf = b"xx" + cid.binary + b"trailing data"
    got, end = Cid.decode(buf, 2)
    assert got == cid and buf[end:] == b"trailing data"
    with pytest.raises(InvalidCid, match="trailing"):
        Cid.parse(cid.binary + b"\x00")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Qm",
        "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1",  # one character short
        "bafy",
        "!notbase",
        "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4ye1",  # '1' isn't base32
        "z" + "1" * 600,
        "f0255",  # version 2
    ],
)
def test_malformed_text_cids(text: str) -> None:
    with pytest.raises(InvalidCid):
        parse_cid(text)


@pytest.mark.parametrize(
    "binary",
    [
        b"",
        b"\x12\x20" + b"\x00" * 31,  # truncated CIDv0
        b"\x00",  # version 0 spelled out
        b"\x02\x55\x12\x20" + b"\x00" * 32,  # version 2
        b"\x01\x55\x12\x20" + b"\x00" * 31,  # truncated digest
        b"\x01\x80\x00\x12\x20" + b"\x00" * 32,  # non-minimal varint
        b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # 10-byte varint
        b"\x01\x55\x12\x81\x01" + b"\x00" * 129,  # digest over 128 bytes
    ],
)
def test_malformed_binary_cids(binary: bytes) -> None:
    with pytest.raises(InvalidCid):
        Cid.parse(binary)


@pytest.mark.parametrize(
    ("binary", "why"),
    [
        (raw_cid(0x11, b"\x00" * 20), "sha1"),
        (raw_cid(0xD5, b"\x00" * 16), "md5"),
        (raw_cid(SHA2_256, b"\x00" * 16), "too short"),
        (raw_cid(0x22, b"\x00" * 8), "too short"),  # murmur3-x64-64
        (raw_cid(0x1100, b"\x00" * 32), "not available"),  # x11: multiformats has no implementation
        (raw_cid(SHA2_256, b"\x00" * 40), "at most 32"),
        (raw_cid(SHA2_256, b"\x00" * 32, codec=0x71), "dag-cbor"),
        (raw_cid(IDENTITY, b"x" * 129), "128"),
    ],
)
def test_cids_we_refuse_to_serve(binary: bytes, why: str) -> None:
    with pytest.raises(InvalidCid, match=why):
        parse_cid("f" + binary.hex())


def test_verify_block_with_several_hash_functions() -> None:
    data = b"some block bytes" * 100
    digests = {
        SHA2_256: hashlib.sha256(data).digest(),
        0x13: hashlib.sha512(data).digest(),  # sha2-512
        0x16: hashlib.sha3_256(data).digest(),  # sha3-256
        0xB220: hashlib.blake2b(data, digest_size=32).digest(),  # blake2b-256
        BLAKE3: blake3.blake3(data).digest(),
        0x56: hashlib.sha256(hashlib.sha256(data).digest()).digest(),  # dbl-sha2-256
    }
    for code, digest in digests.items():
        cid = Cid.create(RAW, code, digest)
        check_supported(cid)
        block = verify_block(cid, data)
        assert block.data == data and block.cid == cid
        assert verify_block(cid, memoryview(bytearray(data))).data == data
        with pytest.raises(BlockMismatch) as info:
            verify_block(cid, data[:-1] + b"!")
        assert info.value.cid == cid and str(cid) in str(info.value)


def test_blake3_with_a_longer_digest() -> None:
    data = b"x" * 5000
    cid = Cid.create(RAW, BLAKE3, blake3.blake3(data).digest(length=64))
    assert verify_block(cid, data).data == data
    assert Cid.of(data, hash_code=BLAKE3).digest == blake3.blake3(data).digest()


def test_identity_cids_carry_their_block() -> None:
    probe = parse_cid("bafkqaaa")  # the trustless-gateway probe CID: empty, inline
    assert probe.is_identity and probe.digest == b""
    block = inline_block(probe)
    assert block is not None and block.data == b""
    cid = Cid.of(b"tiny", hash_code=IDENTITY)
    assert verify_block(cid, b"tiny").data == b"tiny"
    with pytest.raises(BlockMismatch):
        verify_block(cid, b"tinY")
    assert inline_block(Cid.of(b"tiny")) is None


def test_refused_hash_functions_raise_unsupported_on_verify() -> None:
    sha1 = Cid.create(RAW, 0x11, hashlib.sha1(b"x").digest())
    with pytest.raises(Unsupported, match="sha1"):
        verify_block(sha1, b"x")
    with pytest.raises(InvalidCid):
        Cid.create(DAG_PB, RAW, b"\x00" * 32, version=0)
