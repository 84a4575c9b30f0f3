"""Transactions and blocks on the wire: signing, canonical decoding, argument checks, commit proofs, timestamps."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import blake3
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.chain.forward import BlockSourceError, decode_block_record
from lightning.codec import decode, encode
from lightning.crypto import Domain, SigningKey
from lightning.ids import NodeId
from lightning.state.block import (
    Block,
    BlockMalformed,
    ChainHead,
    CommitProof,
    check_timestamp,
    commit_message,
    quorum,
    transactions_root,
)
from lightning.state.tx import MAX_TX_BYTES, TxMalformed, check_signature, decode_transaction, sign_transaction

KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))


def _raw(payload: dict[str, Any], key: SigningKey = KEY, domain: Domain = Domain.TRANSACTION) -> bytes:
    return encode({"tx": payload, "sig": key.sign(domain, encode(payload))})


def _payload(**over: Any) -> dict[str, Any]:
    p = {
        "chain_id": 7,
        "sender": KEY.public.raw,
        "nonce": 1,
        "method": "transfer",
        "args": {"to": OTHER.public.raw, "amount": 5 * 10**18},
    }
    p.update(over)
    return p


def test_sign_and_decode_round_trip() -> None:
    stx = sign_transaction(KEY, chain_id=7, nonce=1, method="transfer", to=OTHER.public.raw, amount=5 * 10**18)
    again = decode_transaction(stx.raw)
    assert again == stx
    assert stx.hash == blake3.blake3(encode(_payload())).digest()
    assert stx.raw == _raw(_payload())
    assert check_signature(stx) is None


def test_signature_is_domain_separated_and_bound_to_the_sender() -> None:
    assert check_signature(decode_transaction(_raw(_payload(), domain=Domain.TEST))) is not None
    assert check_signature(decode_transaction(_raw(_payload(), key=OTHER))) is not None
    big = _payload(args={"to": OTHER.public.raw, "amount": 2**100})  # u128 amounts survive the codec
    assert check_signature(decode_transaction(_raw(big))) is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_payload(method="steal"), "unknown method"),
        (_payload(nonce=0), "nonce"),
        (_payload(chain_id=0), "chain_id"),
        (_payload(sender=b"x" * 31), "sender"),
        (_payload(args={"to": OTHER.public.raw}), "missing field 'amount'"),
        (_payload(args={"to": OTHER.public.raw, "amount": 0}), "amount"),
        (_payload(args={"to": OTHER.public.raw, "amount": 2**128}), "amount"),
        (_payload(args={"to": OTHER.public.raw, "amount": 1, "memo": "x"}), "unknown field"),
        (_payload(args={"to": "ab" * 32, "amount": 1}), "expected bytes"),
        (_payload(args=[]), "args"),
        (
            _payload(
                method="submit_reputation_measurements",
                args={
                    "epoch": 0,
                    "measurements": [
                        {"node": n, "latency_ms": 1, "uptime_pct": 100, "bytes_served": 0, "requests": 0}
                        for n in (b"\x02" * 32, b"\x01" * 32)
                    ],
                },
            ),
            "sorted",
        ),
        (_payload(method="opt_in", args={"node": KEY.public.raw, "extra": True}), "unknown field"),
    ],
)
def test_malformed_transactions_are_rejected(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(TxMalformed, match=message):
        decode_transaction(_raw(payload))


def test_non_canonical_and_oversize_bytes_are_rejected() -> None:
    raw = _raw(_payload())
    obj = decode(raw)
    reordered = msgpack.packb({"sig": obj["sig"], "tx": obj["tx"]}, use_bin_type=True)  # canonical is "tx" first
    assert reordered != raw
    with pytest.raises(TxMalformed, match="canonical"):
        decode_transaction(reordered)
    with pytest.raises(TxMalformed, match="exactly"):
        decode_transaction(encode({"tx": obj["tx"], "sig": obj["sig"], "x": 1}))
    with pytest.raises(TxMalformed, match="exceeds"):
        decode_transaction(b"\x00" * (MAX_TX_BYTES + 1))
    with pytest.raises(TxMalformed):
        decode_transaction(raw[:-1])


def _head() -> ChainHead:
    return ChainHead(3, b"\x01" * 32, b"\x02" * 32, 1000, 0)


def test_block_hash_round_trip_and_txs_root() -> None:
    txs = [b"a", b"b", b"c"]
    block = Block.build(head=_head(), proposer=NodeId.of(KEY), timestamp_ms=1500, txs=txs, epoch=0)
    assert block.height == 4 and block.parent == b"\x01" * 32 and block.prev_state_root == b"\x02" * 32
    assert Block.decode(block.encode()) == block
    assert block.hash() == blake3.blake3(b"lightning/block/v1\x00" + encode(block.header())).digest()
    # vectors (docs/block.md)
    assert transactions_root([]) == bytes(32)
    leaf = [blake3.blake3(b"\x00" + t).digest() for t in txs]
    left = blake3.blake3(b"\x01" + leaf[0] + leaf[1]).digest()
    assert transactions_root(txs) == blake3.blake3(b"\x01" + left + leaf[2]).digest()
    assert transactions_root(txs).hex() == "6c62dd52a0971b7d00a7cead004e0c3f3c0766e3f5359a0f8297768d2b02d03c"
    tampered = {**block.to_wire(), "txs": [b"a", b"b", b"x"]}
    with pytest.raises(BlockMalformed, match="txs_root"):
        Block.from_wire(tampered)
    with pytest.raises(BlockMalformed):
        Block.from_wire({**block.to_wire(), "height": -1})


def test_commit_proofs() -> None:
    members = [SigningKey(bytes([i]) * 32) for i in range(4)]
    keys = [m.public.raw for m in members]
    block = Block.build(head=_head(), proposer=NodeId.of(KEY), timestamp_ms=1500, txs=[b"t"], epoch=0)
    seq = CommitProof.sequencer(block, members[0], chain_id=7)
    seq.verify(block, keys, chain_id=7)
    assert seq.round == block.height  # one view per block: an honest sequencer never signs two for one view
    assert CommitProof.from_wire(decode(encode(seq.to_wire()))) == seq
    with pytest.raises(BlockMalformed, match="bad signature"):
        CommitProof.sequencer(block, members[1], chain_id=7).verify(block, keys, chain_id=7)
    with pytest.raises(BlockMalformed, match="bad signature"):  # the statement names the chain
        seq.verify(block, keys, chain_id=8)
    with pytest.raises(BlockMalformed, match="round is its height"):
        replace(seq, round=0).verify(block, keys, chain_id=7)
    other = Block.build(head=_head(), proposer=NodeId.of(KEY), timestamp_ms=1501, txs=[b"t"], epoch=0)
    with pytest.raises(BlockMalformed, match="another block"):
        seq.verify(other, keys, chain_id=7)
    msg = commit_message(7, block.hash(), block.height, block.epoch, 2)
    sigs = tuple((i, members[i].sign(Domain.STATEMENT, msg)) for i in (0, 2, 3))
    q = CommitProof(block.hash(), block.height, block.epoch, 2, "quorum", sigs)
    q.verify(block, keys, chain_id=7)
    with pytest.raises(BlockMalformed, match="needs 3"):
        CommitProof(block.hash(), block.height, block.epoch, 2, "quorum", sigs[:2]).verify(block, keys, chain_id=7)
    with pytest.raises(BlockMalformed, match="increasing"):
        CommitProof.from_wire({**q.to_wire(), "signatures": [[2, sigs[1][1]], [0, sigs[0][1]]]})
    assert [quorum(n) for n in (1, 2, 3, 4, 7, 10)] == [1, 2, 3, 3, 5, 7]


def test_timestamp_window() -> None:
    assert check_timestamp(1000, 1000, 1000, 0) is None
    assert "below the parent" in (check_timestamp(999, 1000, 5000, 100) or "")
    assert "ahead" in (check_timestamp(5101, 1000, 5000, 100) or "")
    assert check_timestamp(5100, 1000, 5000, 100) is None


@settings(max_examples=300)
@given(st.data())
def test_decoders_refuse_garbage_with_their_own_errors(data: st.DataObject) -> None:
    """Whatever a peer sends, decoding ends in a value or the decoder's typed error, never another exception."""
    valid = _raw(_payload())
    block = Block.build(head=_head(), proposer=NodeId.of(KEY), timestamp_ms=1500, txs=[valid], epoch=0)
    proof = CommitProof.sequencer(block, KEY, chain_id=7)
    base = data.draw(
        st.sampled_from([valid, block.encode(), encode({"block": block.to_wire(), "proof": proof.to_wire()})])
    )
    i = data.draw(st.integers(0, len(base) - 1))
    mutated = data.draw(
        st.one_of(
            st.just(base[:i] + bytes([base[i] ^ data.draw(st.integers(1, 255))]) + base[i + 1 :]),
            st.just(base[:i]),
            st.binary(max_size=200),
            st.recursive(
                st.one_of(st.none(), st.integers(), st.binary(max_size=40), st.text(max_size=10)),
                lambda inner: st.one_of(
                    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=8)
                ),
                max_leaves=20,
            ).map(lambda v: encode({"tx": v, "sig": bytes(64)})),
        )
    )
    for decoder, errors in (
        (decode_transaction, (TxMalformed,)),
        (Block.decode, (BlockMalformed,)),
        (decode_block_record, (BlockSourceError,)),
    ):
        try:
            decoder(mutated)
        except errors:
            pass
