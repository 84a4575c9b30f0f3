"""Resolver records (lightning/fetcher/resolver.py): which blake3 root an origin pointer resolved to, and who holds it.

The rules a node keeps by itself (first record wins, providers newest first and bounded, an LRU of records) are
checked on ``learn``/``lookup``. What arrives over gossip runs on a three-node simulated broadcast (autojump clock):
A announces, B runs the resolver, C is cut off from A and so hears a record only if B relayed it. A record B
rejects is never learnt nor relayed; because one peer's messages reach B in order over one stream, a valid marker
sent right after a bad record shows (when it reaches C) that B has judged the bad one. Records are signed statements
of kind ``resolver_record`` (lightning/statement.py): one signed for another chain or by another node is rejected
like a malformed one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from lightning.broadcast import Topic
from lightning.broadcast.sim import open_broadcast_sim
from lightning.codec import decode, encode
from lightning.crypto import SigningKey
from lightning.fetcher.resolver import (
    ANNOUNCE_QUEUE,
    MAX_ALIAS_BYTES,
    PROVIDERS_PER_RECORD,
    Resolver,
    record_statement,
    sign_record,
)
from lightning.ids import NodeId
from lightning.statement import Kind, SignedStatement

ROOT_A, ROOT_B = b"\xaa" * 32, b"\xbb" * 32
ALIAS = "ipfs:bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/a.txt"


def node(i: int) -> NodeId:
    return NodeId(i.to_bytes(32, "big"))


def test_the_first_record_wins_and_conflicts_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    resolver = Resolver(None)
    assert resolver.lookup(ALIAS) is None
    resolver.learn(ALIAS, ROOT_A, node(1))
    resolver.learn(ALIAS, ROOT_B, node(2))  # another root for the same alias: ignored, logged
    assert resolver.lookup(ALIAS) == (ROOT_A, [node(1)])
    assert resolver.conflicts == 1
    assert any(ALIAS in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    resolver.learn(ALIAS, ROOT_A, node(2))  # the same root from another provider: one more holder
    assert resolver.lookup(ALIAS) == (ROOT_A, [node(2), node(1)])
    assert resolver.conflicts == 1


def test_providers_are_newest_first_unique_and_bounded() -> None:
    resolver = Resolver(None)
    for i in range(1, PROVIDERS_PER_RECORD + 6):
        resolver.learn(ALIAS, ROOT_A, node(i))
    root, providers = resolver.lookup(ALIAS) or (b"", [])
    newest = PROVIDERS_PER_RECORD + 5
    assert root == ROOT_A and providers == [node(i) for i in range(newest, newest - PROVIDERS_PER_RECORD, -1)]
    resolver.learn(ALIAS, ROOT_A, node(newest - 3))  # a provider announcing again moves to the front, once
    _, again = resolver.lookup(ALIAS) or (b"", [])
    assert again[0] == node(newest - 3) and again.count(node(newest - 3)) == 1
    assert len(again) == PROVIDERS_PER_RECORD and set(again) == set(providers)


def test_records_are_an_lru_of_bounded_size() -> None:
    resolver = Resolver(None, max_records=3)
    for i in range(3):
        resolver.learn(f"ipfs:cid{i}", ROOT_A, node(1))
    assert resolver.lookup("ipfs:cid0") is not None  # used: now the most recent (order 1, 2, 0)
    resolver.learn("ipfs:cid3", ROOT_A, node(1))  # the least recent goes (order 2, 0, 3)
    assert resolver.lookup("ipfs:cid1") is None
    resolver.learn("ipfs:cid2", ROOT_A, node(2))  # learning again is a use too (order 0, 3, 2)
    resolver.learn("ipfs:cid4", ROOT_A, node(1))  # (order 3, 2, 4)
    assert resolver.lookup("ipfs:cid0") is None
    assert all(resolver.lookup(f"ipfs:cid{i}") is not None for i in (2, 3, 4))


def test_announcing_never_blocks_and_drops_when_full(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lightning.fetcher.resolver")
    resolver = Resolver(None)  # no broadcast: nothing drains the queue
    for i in range(ANNOUNCE_QUEUE + 3):
        resolver.announce_nowait(f"ipfs:cid{i}", ROOT_A)
    dropped = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(dropped) == 3 and "ipfs:cid1024" in dropped[0].getMessage()
    assert resolver.announced == 0 and resolver.lookup("ipfs:cid0") is None  # our own records are not "learnt"


def _signed(
    signed_alias: str, signed_root: bytes, /, *, key: SigningKey | None = None, chain_delta: int = 0, **changes: Any
) -> Callable[[SigningKey, int], bytes]:
    """A record signed by the sender (or ``key``) for its chain (plus ``chain_delta``), then ``changes`` applied."""

    def build(sender_key: SigningKey, chain: int) -> bytes:
        raw = sign_record(key or sender_key, chain + chain_delta, 0, 1, signed_alias, signed_root)
        body = decode(raw)
        assert isinstance(body, dict)
        return encode({k: v for k, v in {**body, **changes}.items() if v is not DROP})

    return build


DROP = object()
OTHER_KEY = SigningKey(b"\x09" * 32)

BAD_RECORDS: list[tuple[str, Callable[[SigningKey, int], bytes]]] = [
    ("url alias", _signed("url:https://example.com/f#integrity=sha256-x", ROOT_A)),
    ("blake3 alias", _signed("blake3:" + "00" * 32, ROOT_A)),
    ("empty alias", _signed("", ROOT_A)),
    ("long alias", _signed("ipfs:" + "a" * (MAX_ALIAS_BYTES - 4), ROOT_A)),
    ("alias not text", _signed("ipfs:cid", ROOT_A, alias=b"ipfs:cid")),
    ("short root", _signed("ipfs:cid", ROOT_A, root=ROOT_A[:31])),
    ("root not bytes", _signed("ipfs:cid", ROOT_A, root=ROOT_A.hex())),
    ("extra key", _signed("ipfs:cid", ROOT_A, providers=[])),
    ("no root", _signed("ipfs:cid", ROOT_A, root=DROP)),
    ("no signature", _signed("ipfs:cid", ROOT_A, sig=DROP)),
    ("another root than signed", _signed("ipfs:cid", ROOT_A, root=ROOT_B)),
    ("another seq than signed", _signed("ipfs:cid", ROOT_A, seq=2)),
    ("negative seq", _signed("ipfs:cid", ROOT_A, seq=-1)),
    ("signed for another chain", _signed("ipfs:cid", ROOT_A, chain_delta=1)),
    ("signed by another node", _signed("ipfs:cid", ROOT_A, key=OTHER_KEY)),
    ("a list", lambda key, chain: encode(["ipfs:cid", ROOT_A])),
    ("a string", lambda key, chain: encode("ipfs:cid")),
    ("not msgpack", lambda key, chain: b"\xc1"),
]


def test_a_record_is_a_signed_statement_of_its_own_kind() -> None:
    key = SigningKey(b"\x07" * 32)
    body = decode(sign_record(key, 42, 3, 9, ALIAS, ROOT_A))
    assert isinstance(body, dict) and (body["epoch"], body["seq"]) == (3, 9)
    statement = record_statement(42, 3, 9, ALIAS, ROOT_A)
    assert statement.kind is Kind.RESOLVER_RECORD and statement.seq == 9
    SignedStatement(statement, body["sig"]).verify(key.public.raw)
    # two records of one node with one sequence number but different roots are not equivocation evidence
    assert not statement.conflicts_with(record_statement(42, 3, 9, ALIAS, ROOT_B))


async def test_records_over_gossip(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    senders = 9  # the broadcast bans a node after three rejected messages: two bad records per sender
    async with open_broadcast_sim(5, 2 + senders, tmp_path, topics=()) as cluster:
        b, c, *others = cluster.nodes
        a = others[0]
        cluster.net.partition([n.node_id for n in others], [c.node_id])
        on_a, on_b = Resolver(a.broadcast), Resolver(b.broadcast)
        await cluster.nursery.start(on_a.run)
        await cluster.nursery.start(on_b.run)
        heard_by_c = c.broadcast.subscribe(Topic.RESOLVER)

        async def relayed_to_c() -> dict[str, Any]:
            with trio.fail_after(60):
                received = await heard_by_c.recv()
            heard_by_c.propagate(received)
            body = decode(received.message.payload)
            assert isinstance(body, dict)
            return body

        # Our own announcement, through the resolver's queue: B learns it with A as the holder and relays it.
        on_a.announce_nowait(ALIAS, ROOT_A)
        heard = await relayed_to_c()
        assert (heard["alias"], heard["root"], heard["seq"]) == (ALIAS, ROOT_A, 1)
        assert on_b.lookup(ALIAS) == (ROOT_A, [a.node_id]) and on_a.announced == 1
        assert on_a.lookup(ALIAS) is None  # a node does not learn its own records
        # A conflicting claim does not displace what B holds.
        chain = a.broadcast.chain_id
        await a.broadcast.send(Topic.RESOLVER, sign_record(a.broadcast.key, chain, 0, 2, ALIAS, ROOT_B))
        marker = "ipfs:marker0"
        await a.broadcast.send(Topic.RESOLVER, sign_record(a.broadcast.key, chain, 0, 3, marker, ROOT_B))
        while (await relayed_to_c())["alias"] != marker:
            pass
        assert on_b.lookup(ALIAS) == (ROOT_A, [a.node_id]) and on_b.conflicts == 1
        # Malformed records: rejected by B (which penalises the sender), never learnt, never relayed to C.
        for k, (what, build) in enumerate(BAD_RECORDS, start=1):
            sender = others[(k - 1) // 2]
            key = sender.broadcast.key
            await sender.broadcast.send(Topic.RESOLVER, build(key, chain))
            marker = f"ipfs:marker{k}"
            await sender.broadcast.send(Topic.RESOLVER, sign_record(key, chain, 0, 100 + k, marker, ROOT_A))
            assert (await relayed_to_c())["alias"] == marker, what  # the bad one went nowhere
            assert on_b.rejected == k, what
            assert on_b.lookup(marker) == (ROOT_A, [sender.node_id])
        assert on_b.lookup("ipfs:cid") is None
        assert on_b.learned == 3 + len(BAD_RECORDS)  # the announcement, the conflict and the markers
        assert b.pool is not None
        penalties = b.pool.metrics.registry.get_sample_value(
            "lightning_net_penalties_total", {"reason": "broadcast rejected_by_subscriber"}
        )
        assert penalties == len(BAD_RECORDS)
