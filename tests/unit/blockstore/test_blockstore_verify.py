"""The client library: streaming verifier, proof-stream encoder/decoder, and the download example."""

from __future__ import annotations

import ast
import importlib.util
import re
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.blockstore.tree import (
    BlockTree,
    encode_proof_stream,
    proof_for_range,
    split_blocks,
    tree_from_block_hashes,
)
from lightning.blockstore.verify import (
    BLOCK_SIZE,
    EMPTY_ROOT,
    HASH_SIZE,
    HEADER_SIZE,
    ProofError,
    ProofFormatError,
    ProofStreamDecoder,
    ProofStreamHeader,
    StreamVerifier,
    TruncatedStreamError,
    VerificationError,
    VerifiedBlock,
    WrongRootError,
    hash_block,
    verify_range,
    verify_stream,
)

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Obj:
    data: bytes
    blocks: list[bytes]
    tree: BlockTree

    @property
    def root(self) -> bytes:
        return self.tree.root

    def stream(self, start: int = 0, end: int | None = None) -> bytes:
        return b"".join(encode_proof_stream(self.tree, self.blocks.__getitem__, start, end))

    def expected(self, start: int = 0, end: int | None = None) -> list[VerifiedBlock]:
        end = len(self.blocks) if end is None else end
        return [VerifiedBlock(i, i * BLOCK_SIZE, self.blocks[i], hash_block(self.blocks[i])) for i in range(start, end)]


def make_obj(total_len: int, seed: int = 1) -> Obj:
    data = bytes((k * 7 + seed) % 256 for k in range(min(total_len, 4099))) * (total_len // 4099 + 1)
    data = data[:total_len]
    blocks = [bytes(b) for b in split_blocks(data)]
    return Obj(data, blocks, tree_from_block_hashes([hash_block(b) for b in blocks], total_len))


@pytest.fixture(scope="module")
def six() -> Obj:
    """Six blocks, the last one short: a ragged tree (4 + 2)."""
    return make_obj(5 * BLOCK_SIZE + 1000)


@pytest.fixture(scope="module")
def three() -> Obj:
    return make_obj(2 * BLOCK_SIZE + 7, seed=3)


def decode_all(root: bytes, stream: bytes, chunk_sizes: list[int] | None = None, **kw: Any) -> list[VerifiedBlock]:
    decoder = ProofStreamDecoder(root, **kw)
    out: list[VerifiedBlock] = []
    pos = 0
    for size in chunk_sizes or []:
        out += decoder.feed(stream[pos : pos + size])
        pos += size
    out += decoder.feed(stream[pos:])
    decoder.finish()
    return out


def decode_until_error(root: bytes, stream: bytes, **kw: Any) -> tuple[list[VerifiedBlock], ProofError]:
    """Feed byte-ranges one block at a time through receive_data/next_block; return output and the error."""
    decoder = ProofStreamDecoder(root, **kw)
    out: list[VerifiedBlock] = []
    try:
        for pos in range(0, len(stream), 100_000):
            decoder.receive_data(stream[pos : pos + 100_000])
            while (block := decoder.next_block()) is not None:
                out.append(block)
        decoder.finish()
    except ProofError as error:
        return out, error
    raise AssertionError("the stream was accepted")


def flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def segment_offsets(obj: Obj, start: int, end: int) -> list[tuple[int, int, int]]:
    """(offset of hash_count, number of hashes, offset of the block bytes) of each segment of a stream."""
    proof = proof_for_range(obj.tree, start, end)
    pos = HEADER_SIZE
    result = []
    for index, segment in zip(range(start, end), proof.segments, strict=True):
        block_at = pos + 1 + len(segment) * HASH_SIZE + 4
        result.append((pos, len(segment), block_at))
        pos = block_at + len(obj.blocks[index])
    return result


# -- round trips -----------------------------------------------------------------------------------------------


def test_whole_object_round_trip(six: Obj) -> None:
    stream = six.stream()
    hashes = len(proof_for_range(six.tree, 0, 6).hashes)
    assert hashes == 5
    assert len(stream) == HEADER_SIZE + 6 * 5 + hashes * HASH_SIZE + len(six.data)
    blocks = decode_all(six.root, stream)
    assert blocks == six.expected()
    assert b"".join(b.data for b in blocks) == six.data


def test_every_range_round_trip(six: Obj) -> None:
    for start in range(6):
        for end in range(start + 1, 7):
            stream = six.stream(start, end)
            assert decode_all(six.root, stream, start_block=start, end_block=end) == six.expected(start, end)
            header = ProofStreamHeader.decode(stream[:HEADER_SIZE])
            assert (header.start_block, header.end_block, header.total_len) == (start, end, len(six.data))
            proof = proof_for_range(six.tree, start, end)
            assert list(verify_range(six.root, proof, six.blocks[start:end])) == six.blocks[start:end]


def test_empty_object() -> None:
    t = tree_from_block_hashes([], 0)
    stream = b"".join(encode_proof_stream(t, lambda i: b""))
    assert len(stream) == HEADER_SIZE and t.root == EMPTY_ROOT
    decoder = ProofStreamDecoder(EMPTY_ROOT)
    assert decoder.feed(stream) == []
    decoder.finish()
    assert decoder.done
    # An empty object claimed under a non-empty object's root is a forgery.
    fake = ProofStreamHeader(0, 0, 0, b"\x01" * 32).encode()
    with pytest.raises(VerificationError):
        decode_all(b"\x01" * 32, fake)
    with pytest.raises(ValueError):
        list(encode_proof_stream(t, lambda i: b"", 0, 1))


def test_doc_example_stream() -> None:
    doc = (REPO / "docs" / "blockstore-format.md").read_text()
    block = doc.split("as a whole-object proof stream, 70 bytes:", 1)[1].split("```")[1]
    hex_digits = []
    for line in block.strip().splitlines():
        for token in line.split():  # leading hex tokens, then a description
            if not re.fullmatch(r"[0-9a-f]+", token):
                break
            hex_digits.append(token)
    documented = bytes.fromhex("".join(hex_digits))
    t = tree_from_block_hashes([hash_block(b"\x00")], 1)
    stream = b"".join(encode_proof_stream(t, lambda i: b"\x00"))
    assert documented == stream and len(stream) == 70


@settings(deadline=None, max_examples=40)
@given(st.lists(st.integers(1, 300_000), max_size=12), st.integers(0, 5), st.data())
def test_any_chunking_gives_identical_output(six: Obj, chunk_sizes: list[int], start: int, data: st.DataObject) -> None:
    end = data.draw(st.integers(start + 1, 6))
    stream = six.stream(start, end)
    assert decode_all(six.root, stream, chunk_sizes, start_block=start, end_block=end) == six.expected(start, end)


def test_one_byte_at_a_time(three: Obj) -> None:
    stream = three.stream()
    decoder = ProofStreamDecoder(three.root)
    out = []
    for k in range(0, len(stream), 997):
        out += decoder.feed(stream[k : k + 997])
    decoder.finish()
    assert out == three.expected()
    header = three.stream()[:HEADER_SIZE]
    decoder = ProofStreamDecoder(three.root)
    for k in range(HEADER_SIZE):
        assert decoder.feed(header[k : k + 1]) == []
    assert decoder.header is not None and decoder.header.total_len == len(three.data)


# -- tampering -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end"), [(0, 6), (2, 5), (5, 6)])
def test_every_flipped_proof_bit_fails_at_its_block(six: Obj, start: int, end: int) -> None:
    stream = six.stream(start, end)
    for k, (_, count, block_at) in enumerate(segment_offsets(six, start, end)):
        hashes_at = block_at - 4 - count * HASH_SIZE
        for bit in range(hashes_at * 8, (block_at - 4) * 8):
            out, error = decode_until_error(six.root, flip(stream, bit), start_block=start, end_block=end)
            assert isinstance(error, VerificationError) and error.block_index == start + k
            assert out == six.expected(start, start + k)


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 5), st.data())
def test_flipped_block_bit_fails_at_its_block(six: Obj, index: int, data: st.DataObject) -> None:
    stream = six.stream()
    _, _, block_at = segment_offsets(six, 0, 6)[index]
    bit = data.draw(st.integers(0, len(six.blocks[index]) * 8 - 1))
    out, error = decode_until_error(six.root, flip(stream, block_at * 8 + bit))
    assert isinstance(error, VerificationError) and error.block_index == index
    assert out == six.expected(0, index)


def test_first_and_last_bits_of_every_block(three: Obj) -> None:
    stream = three.stream()
    for index, (_, _, block_at) in enumerate(segment_offsets(three, 0, 3)):
        for bit in (0, len(three.blocks[index]) * 8 - 1):
            out, error = decode_until_error(three.root, flip(stream, block_at * 8 + bit))
            assert isinstance(error, VerificationError) and error.block_index == index
            assert out == three.expected(0, index)


def test_every_flipped_header_bit_is_rejected_before_any_output(three: Obj) -> None:
    stream = three.stream(1, 3)
    for bit in range(HEADER_SIZE * 8):
        out, _ = decode_until_error(three.root, flip(stream, bit), accept_any_range=True)
        assert out == []


def test_every_flipped_framing_bit_is_rejected(six: Obj) -> None:
    stream = six.stream()
    for index, (count_at, count, block_at) in enumerate(segment_offsets(six, 0, 6)):
        for field_at, size in ((count_at, 1), (block_at - 4, 4)):
            for bit in range(field_at * 8, (field_at + size) * 8):
                out, error = decode_until_error(six.root, flip(stream, bit))
                assert isinstance(error, ProofFormatError) and error.block_index == index, (index, bit)
                assert out == six.expected(0, index)
        del count


def test_relabelled_stream_fails_at_first_block(three: Obj) -> None:
    # An attacker announces another root and serves this content under it: the header matches what the
    # client asked for, so the lie surfaces when the first block is checked.
    other = hash_block(b"some other object")
    stream = ProofStreamHeader(len(three.data), 0, 3, other).encode() + three.stream()[HEADER_SIZE:]
    out, error = decode_until_error(other, stream)
    assert type(error) is VerificationError and error.block_index == 0 and out == []


def test_wrong_root(three: Obj) -> None:
    out, error = decode_until_error(hash_block(b"x"), three.stream(1, 3), start_block=1, end_block=3)
    assert isinstance(error, WrongRootError) and error.block_index == 1 and out == []


def test_lying_total_len_fails_at_first_block(three: Obj) -> None:
    header = ProofStreamHeader(len(three.data) - 1, 0, 3, three.root).encode()
    out, error = decode_until_error(three.root, header + three.stream()[HEADER_SIZE:])
    assert error.block_index == 0 and out == []


# -- framing limits --------------------------------------------------------------------------------------------


def test_truncation_anywhere_is_an_error(six: Obj) -> None:
    stream = six.stream(1, 6)
    cuts = set(range(0, 200)) | {len(stream) - 1}
    for count_at, count, block_at in segment_offsets(six, 1, 6):
        cuts |= {count_at, count_at + 1, block_at - 4, block_at - 1, block_at, block_at + 1, block_at + 1000}
        cuts |= {block_at - 4 - count * HASH_SIZE + 5}
    for cut in sorted(c for c in cuts if c < len(stream)):
        decoder = ProofStreamDecoder(six.root, start_block=1, end_block=6)
        out = decoder.feed(stream[:cut])
        with pytest.raises(TruncatedStreamError) as info:
            decoder.finish()
        assert "ended" in str(info.value)
        delivered = len(out)
        assert out == six.expected(1, 1 + delivered)
        if cut >= HEADER_SIZE:
            assert info.value.block_index == 1 + delivered
        with pytest.raises(TruncatedStreamError):
            decoder.finish()


def test_trailing_bytes_are_rejected(three: Obj) -> None:
    decoder = ProofStreamDecoder(three.root)
    with pytest.raises(ProofFormatError, match="unexpected bytes"):
        decoder.feed(three.stream() + b"\x00")
    with pytest.raises(ProofFormatError):
        decoder.feed(b"")  # a failed decoder stays failed


def test_oversize_block_rejected_before_buffering(three: Obj) -> None:
    stream = three.stream()
    count_at, count, block_at = segment_offsets(three, 0, 3)[0]
    for bad_len in (BLOCK_SIZE + 1, 2**32 - 1, BLOCK_SIZE - 1):
        forged = stream[: block_at - 4] + struct.pack("<I", bad_len)
        decoder = ProofStreamDecoder(three.root)
        with pytest.raises(ProofFormatError, match="must be 262144 bytes") as info:
            decoder.feed(forged)
        assert info.value.block_index == 0
    # The short last block may not grow either.
    _, _, last_at = segment_offsets(three, 0, 3)[2]
    forged = stream[: last_at - 4] + struct.pack("<I", 8) + stream[last_at:] + b"\x00"
    out, error = decode_until_error(three.root, forged)
    assert isinstance(error, ProofFormatError) and error.block_index == 2 and len(out) == 2
    del count_at, count


@pytest.mark.parametrize("count", [0, 1, 3, 47, 255])
def test_hash_count_must_match_the_tree(three: Obj, count: int) -> None:
    stream = three.stream()  # block 0 of 3 needs exactly 2 hashes
    forged = stream[:HEADER_SIZE] + bytes([count])
    decoder = ProofStreamDecoder(three.root)
    with pytest.raises(ProofFormatError, match="needs 2 proof hashes") as info:
        decoder.feed(forged)
    assert info.value.block_index == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("magic", b"LB3X", "not a proof stream"),
        ("version", 2, "version 2 is not supported"),
        ("reserved", b"\x00\x00\x01", "reserved"),
        ("count", 0, "empty or outside"),
        ("count", 4, "empty or outside"),
        ("start", 3, "empty or outside"),
    ],
)
def test_bad_headers(three: Obj, field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {
        "magic": b"LB3S",
        "version": 1,
        "reserved": bytes(3),
        "total": len(three.data),
        "start": 0,
        "count": 3,
        "root": three.root,
    }
    fields[field] = value
    header = struct.pack("<4sB3sQQQ32s", *fields.values())
    with pytest.raises(ProofFormatError, match=message) as info:
        ProofStreamDecoder(three.root, accept_any_range=True).feed(header)
    assert info.value.block_index is None


def test_requested_range_is_enforced(three: Obj) -> None:
    with pytest.raises(ProofFormatError, match=r"carries blocks \[1, 3\), but \[0, 3\) were requested"):
        decode_all(three.root, three.stream(1, 3))
    with pytest.raises(ProofFormatError):
        decode_all(three.root, three.stream(), start_block=0, end_block=2)
    decoder = ProofStreamDecoder(three.root, accept_any_range=True)
    assert decoder.feed(three.stream(2, 3)) == three.expected(2, 3)
    decoder.finish()
    assert decoder.header == ProofStreamHeader(len(three.data), 2, 1, three.root)


# -- the StreamVerifier API ------------------------------------------------------------------------------------


def test_stream_verifier_checks(three: Obj) -> None:
    proof = proof_for_range(three.tree, 0, 3)
    verifier = StreamVerifier(three.root, len(three.data))
    assert verifier.expected_hash_count() == 2 and verifier.expected_block_len() == BLOCK_SIZE
    with pytest.raises(ProofFormatError, match="is 262145 bytes"):
        verifier.verify_block(proof.segments[0], three.blocks[0] + b"\x00")
    with pytest.raises(ProofFormatError):  # failed for good
        verifier.verify_block(proof.segments[0], three.blocks[0])

    verifier = StreamVerifier(three.root, len(three.data))
    with pytest.raises(ProofFormatError, match="needs 2 proof hashes, got 1"):
        verifier.verify_block(proof.segments[0][:1], three.blocks[0])

    verifier = StreamVerifier(three.root, len(three.data))
    assert verifier.verify_block(proof.segments[0], memoryview(three.blocks[0])) == three.blocks[0]
    assert verifier.verify_block((), three.blocks[1]) == three.blocks[1]
    assert verifier.verify_block((), bytearray(three.blocks[2])) == three.blocks[2]
    assert verifier.done and verifier.next_index is None
    with pytest.raises(ProofFormatError, match="already verified"):
        verifier.verify_block((), b"")
    with pytest.raises(ProofFormatError):
        StreamVerifier(three.root, len(three.data), 2, 4)


def test_verify_range_block_count(three: Obj) -> None:
    proof = proof_for_range(three.tree, 0, 3)
    with pytest.raises(TruncatedStreamError) as info:
        list(verify_range(three.root, proof, three.blocks[:2]))
    assert info.value.block_index == 2
    with pytest.raises(ProofFormatError, match="more blocks"):
        list(verify_range(three.root, proof, [*three.blocks, b"x"]))


def test_verify_stream_generator(three: Obj) -> None:
    stream = three.stream()
    chunks = [stream[k : k + 50_000] for k in range(0, len(stream), 50_000)]
    assert list(verify_stream(three.root, chunks)) == three.expected()
    got: list[VerifiedBlock] = []
    with pytest.raises(TruncatedStreamError):
        got.extend(verify_stream(three.root, [*chunks[:-1], chunks[-1][:-1]]))
    assert got == three.expected(0, 2)


# -- standalone client library and the example -----------------------------------------------------------------


def test_verify_module_imports_only_stdlib_and_blake3() -> None:
    source = (REPO / "lightning" / "blockstore" / "verify.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top == "blake3" or top in sys.stdlib_module_names, name


def test_verify_module_works_as_a_copied_file(tmp_path: Path, three: Obj) -> None:
    copy = tmp_path / "verify.py"
    copy.write_text((REPO / "lightning" / "blockstore" / "verify.py").read_text())
    module = _load(copy, "copied_verify_for_test")
    assert [b.data for b in module.verify_stream(three.root, [three.stream()])] == three.blocks


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.fixture(scope="module")
def example_main() -> Callable[[list[str]], int]:
    module = _load(REPO / "examples" / "verify_download.py", "verify_download_example")
    main: Callable[[list[str]], int] = module.main
    return main


def test_example_downloads_from_a_file(
    tmp_path: Path, six: Obj, example_main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "object.proofstream"
    source.write_bytes(six.stream())
    output = tmp_path / "object.bin"
    assert example_main([six.root.hex(), str(source), str(output)]) == 0
    assert output.read_bytes() == six.data
    assert not (tmp_path / "object.bin.part").exists()
    assert f"{len(six.data)} bytes verified" in capsys.readouterr().out


def test_example_keeps_only_verified_bytes(
    tmp_path: Path, six: Obj, example_main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, block_at = segment_offsets(six, 0, 6)[3]
    source = tmp_path / "object.proofstream"
    source.write_bytes(flip(six.stream(), (block_at + 12345) * 8))
    output = tmp_path / "object.bin"
    assert example_main([six.root.hex(), str(source), str(output)]) == 1
    assert not output.exists()
    assert (tmp_path / "object.bin.part").read_bytes() == six.data[: 3 * BLOCK_SIZE]
    assert "block 3" in capsys.readouterr().err
    assert example_main(["not-hex", str(source), str(output)]) == 2
