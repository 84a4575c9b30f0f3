"""The executor's rules, method by method, on a real LMDB store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning.amounts import UNIT
from lightning.crypto import SigningKey
from lightning.ids import NodeId
from lightning.state import smt
from lightning.state.block import Block, CommitProof
from lightning.state.epoch import beacon_commitment
from lightning.state.errors import StateError
from lightning.state.executor import InvalidBlock, Receipt
from lightning.state.records import CONTENT_CIDS, CONTENT_PROVIDERS, SERVED, NodeInfo, u64
from lightning.state.store import StateStore, genesis_params
from lightning.state.tx import SignedTransaction, sign_transaction
from lightning.testing.devchain import DevChain, derive_key

FLK = UNIT


@pytest.fixture
def chain() -> DevChain:
    return DevChain.create(nodes=5, committee=4, accounts=3, balance="1000 FLK", epoch_time_ms=60_000)


@pytest.fixture
def store(tmp_path: Path, chain: DevChain) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state", map_size=1 << 30, sync=False) as s:
        s.initialize(chain.genesis)
        yield s


def run(chain: DevChain, store: StateStore, *txs: SignedTransaction | bytes, ts: int | None = None) -> list[Receipt]:
    return list(chain.apply(store, txs, timestamp_ms=ts).receipts)


def ok(receipts: list[Receipt]) -> None:
    assert [(r.status, r.reason) for r in receipts] == [("ok", "")] * len(receipts)


def fee(chain: DevChain, tx: SignedTransaction) -> int:
    """What a paid transaction costs (docs/fees.md)."""
    p = genesis_params(chain.genesis)
    return p["base_fee"] + p["fee_per_byte"] * len(tx.raw)


def fund(chain: DevChain, store: StateStore, *keys: SigningKey) -> None:
    """Give node keys FLK for the paid methods they may sign (opt_out, update_content_registry), from the faucet."""
    ok(run(chain, store, *(chain.sign(chain.faucet, "transfer", to=k.public.raw, amount=FLK) for k in keys)))


def balance(store: StateStore, key: SigningKey | bytes) -> int:
    with store.view() as v:
        return v.account(key.public.raw if isinstance(key, SigningKey) else key).balance


def node(store: StateStore, chain: DevChain, i: int) -> NodeInfo:
    with store.view() as v:
        n = v.node(chain.nodes[i].node.public.raw)
    assert n is not None
    return n


def end_epoch(chain: DevChain, store: StateStore) -> int:
    """Every committee member votes ChangeEpoch in one block at the planned end; returns the new epoch."""
    with store.view() as v:
        e, info, committee = v.epoch, v.epoch_info(v.epoch), v.committee(v.epoch)
    assert info is not None and committee is not None
    voters = [k for k in chain.nodes if k.node.public.raw in committee.members]
    receipts = run(chain, store, *(chain.sign(k.node, "change_epoch", epoch=e) for k in voters), ts=info.end_ms)
    assert [r.status for r in receipts][:3] == ["ok"] * 3  # 3 of 4 is the quorum; the 4th arrives too late
    assert store.head().epoch == e + 1
    return e + 1


def test_genesis_state(store: StateStore, chain: DevChain) -> None:
    with store.view() as v:
        assert v.epoch == 0
        committee = v.committee(0)
        assert committee is not None
        assert committee.members == tuple(k.node.public.raw for k in chain.nodes[:4])
        assert v.params()["min_stake"] == 1000 * FLK
        # 3 accounts, 5 owners, the faucet and governance hold 1000 FLK each; 5 nodes stake 1000 FLK each
        assert v.meta("supply") == (3 + 5 + 2) * 1000 * FLK + 5 * 1000 * FLK
        info = v.epoch_info(0)
        assert info is not None and info.end_ms - info.start_ms == 60_000
    assert node(store, chain, 4).participation == "true" and node(store, chain, 4).stake == 1000 * FLK
    assert store.tree_root() == store.head().state_root
    other = DevChain.create(seed=1)
    with pytest.raises(StateError, match="another genesis"):
        store.initialize(other.genesis)


def test_transfer_and_nonce_rules(store: StateStore, chain: DevChain) -> None:
    a, b = chain.accounts[0], chain.accounts[1]
    t1 = chain.sign(a, "transfer", to=b.public.raw, amount=10 * FLK)
    ok(run(chain, store, t1))
    assert balance(store, a) == 990 * FLK - fee(chain, t1) and balance(store, b) == 1010 * FLK
    # a replay of t1 and a transaction from the future are invalid: no nonce bump, nothing changes
    future = chain.sign(a, "transfer", nonce=5, to=b.public.raw, amount=FLK)
    r = run(chain, store, t1, future)
    assert [x.status for x in r] == ["invalid", "invalid"] and "nonce 1, expected 2" in r[0].reason
    assert store.receipt(t1.hash) is not None and store.receipt(t1.hash).status == "ok"  # type: ignore[union-attr]
    # a revert still consumes the nonce
    r_big = chain.sign(a, "transfer", to=b.public.raw, amount=10_000 * FLK)
    r = run(chain, store, r_big)
    assert r[0].status == "reverted" and "insufficient balance" in r[0].reason  # the fee is paid all the same
    with store.view() as v:
        assert v.account(a.public.raw).nonce == 2
    # wrong chain id, bad signature, garbage bytes
    wrong_chain = sign_transaction(a, chain_id=99, nonce=3, method="transfer", to=b.public.raw, amount=FLK)
    forged = chain.sign(a, "transfer", nonce=3, to=b.public.raw, amount=FLK)
    forged_raw = forged.raw.replace(forged.signature, bytes(64))
    r = run(chain, store, wrong_chain, forged_raw, b"\xc1garbage")
    assert [x.status for x in r] == ["invalid"] * 3
    assert "chain 99" in r[0].reason and "signature" in r[1].reason and "canonical" in r[2].reason
    assert balance(store, a) == 990 * FLK - fee(chain, t1) - fee(chain, r_big)


def test_mint_is_faucet_only_and_capped_per_epoch(store: StateStore, chain: DevChain) -> None:
    to = chain.accounts[2].public.raw
    r = run(chain, store, chain.sign(chain.accounts[0], "mint", to=to, amount=FLK))
    assert r[0].status == "reverted" and "faucet" in r[0].reason
    ok(run(chain, store, chain.sign(chain.faucet, "mint", to=to, amount=600 * FLK)))
    r = run(chain, store, chain.sign(chain.faucet, "mint", to=to, amount=500 * FLK))
    assert r[0].status == "reverted" and "cap" in r[0].reason
    ok(run(chain, store, chain.sign(chain.faucet, "mint", to=b"\x09" * 32, amount=1000 * FLK)))  # per recipient
    end_epoch(chain, store)
    ok(run(chain, store, chain.sign(chain.faucet, "mint", to=to, amount=1000 * FLK)))
    assert balance(store, to) == 2600 * FLK
    with store.view() as v:
        assert v.meta("supply") == 15_000 * FLK + 2600 * FLK


def test_stake_registers_a_node_then_lock_unstake_withdraw(store: StateStore, chain: DevChain) -> None:
    owner = chain.accounts[0]
    nk, ck = derive_key(9, "new-node"), derive_key(9, "new-consensus")
    nid = nk.public.raw
    r = run(chain, store, chain.sign(owner, "stake", node=nid, amount=FLK))
    assert r[0].status == "reverted" and "must carry the registration" in r[0].reason
    taken = chain.nodes[0].consensus
    reg = chain.registration(nk, taken, owner)
    r = run(chain, store, chain.sign(owner, "stake", node=nid, amount=FLK, registration=reg))
    assert r[0].status == "reverted" and "already registered" in r[0].reason
    reg = chain.registration(nk, ck, owner, host="10.0.0.1")
    ok(run(chain, store, chain.sign(owner, "stake", node=nid, amount=500 * FLK, registration=reg)))
    with store.view() as v:
        n = v.node(nid)
        assert n is not None and n.owner == owner.public.raw and n.participation == "false" and n.stake == 500 * FLK
        assert n.registration_seq == 1
    assert 499 * FLK < balance(store, owner) < 500 * FLK  # less three transactions' fees
    r = run(chain, store, chain.sign(chain.accounts[1], "stake", node=nid, amount=FLK))
    assert r[0].status == "reverted" and "owner" in r[0].reason
    reg = chain.registration(nk, ck, owner, host="10.0.0.2", seq=2)
    ok(run(chain, store, chain.sign(owner, "stake", node=nid, amount=400 * FLK, registration=reg)))
    ok(run(chain, store, chain.sign(owner, "stake_lock", node=nid, epochs=1)))
    r = run(chain, store, chain.sign(owner, "unstake", node=nid, amount=100 * FLK))
    assert r[0].status == "reverted" and "locked until epoch 1" in r[0].reason
    end_epoch(chain, store)
    r = run(chain, store, chain.sign(owner, "unstake", node=nid, amount=2000 * FLK))
    assert r[0].status == "reverted" and "cannot unstake" in r[0].reason
    ok(run(chain, store, chain.sign(owner, "unstake", node=nid, amount=100 * FLK)))
    with store.view() as v:
        n = v.node(nid)
        assert n is not None and (n.stake, n.locked, n.locked_until, n.host) == (800 * FLK, 100 * FLK, 6, "10.0.0.2")
    r = run(chain, store, chain.sign(owner, "withdraw_unstaked", node=nid))
    assert r[0].status == "reverted" and "until epoch 6" in r[0].reason
    for _ in range(5):
        end_epoch(chain, store)
    ok(run(chain, store, chain.sign(owner, "withdraw_unstaked", node=nid, recipient=b"\x05" * 32)))
    assert balance(store, b"\x05" * 32) == 100 * FLK
    r = run(chain, store, chain.sign(owner, "withdraw_unstaked", node=nid))
    assert r[0].status == "reverted" and "nothing" in r[0].reason


def test_participation_changes_at_the_epoch_and_shapes_the_committee(store: StateStore, chain: DevChain) -> None:
    n4, n0 = chain.nodes[4], chain.nodes[0]
    fund(chain, store, n0.node)
    r = run(chain, store, chain.sign(n4.account, "opt_in", node=n4.node.public.raw))
    assert r[0].status == "reverted" and "already participating" in r[0].reason
    ok(run(chain, store, chain.sign(n4.account, "opt_out", node=n4.node.public.raw)))
    ok(run(chain, store, chain.sign(n0.node, "opt_out", node=n0.node.public.raw)))  # the node key may do it too
    r = run(chain, store, chain.sign(chain.accounts[0], "opt_out", node=n4.node.public.raw))
    assert r[0].status == "reverted" and "owner" in r[0].reason
    assert node(store, chain, 4).participation == "opted_out"
    end_epoch(chain, store)
    assert node(store, chain, 4).participation == "false" and node(store, chain, 0).participation == "false"
    with store.view() as v:
        committee = v.committee(1)
        assert committee is not None
        assert set(committee.members) == {k.node.public.raw for k in chain.nodes[1:4]}
    ok(run(chain, store, chain.sign(n4.account, "opt_in", node=n4.node.public.raw)))
    assert node(store, chain, 4).participation == "opted_in"
    end_epoch(chain, store)
    assert node(store, chain, 4).participation == "true"
    with store.view() as v:
        committee = v.committee(2)
        assert committee is not None and chain.nodes[4].node.public.raw in committee.members


def test_epoch_change_needs_a_quorum_after_the_end(store: StateStore, chain: DevChain) -> None:
    with store.view() as v:
        info = v.epoch_info(0)
    assert info is not None
    k = chain.nodes
    r = run(chain, store, chain.sign(k[0].node, "change_epoch", epoch=0), ts=info.end_ms - 1)
    assert r[0].status == "reverted" and "ends at" in r[0].reason
    # from a non-member it is unpaid: no receipt, no nonce bump, nothing written (docs/fees.md)
    outsider = chain.sign(k[4].node, "change_epoch", epoch=0)
    before = store.head().state_root
    outcome = chain.apply(store, [outsider], timestamp_ms=info.end_ms)
    assert outcome.receipts == () and [s.code for s in outcome.skipped] == ["not_authorized"]
    assert outcome.head.state_root == before and store.receipt(outsider.hash) is None
    r = run(
        chain, store, chain.sign(k[0].node, "change_epoch", epoch=0), chain.sign(k[0].node, "change_epoch", epoch=0)
    )
    assert [x.status for x in r] == ["ok", "reverted"] and "already voted" in r[1].reason
    ok(run(chain, store, chain.sign(k[1].node, "change_epoch", epoch=0)))
    assert store.head().epoch == 0
    ok(run(chain, store, chain.sign(k[2].node, "change_epoch", epoch=0), ts=info.end_ms + 5000))
    assert store.head().epoch == 1
    with store.view() as v:
        new = v.epoch_info(1)
        assert new is not None and (new.start_ms, new.end_ms) == (info.end_ms + 5000, info.end_ms + 65_000)
    r = run(chain, store, chain.sign(k[3].node, "change_epoch", epoch=0))
    assert r[0].status == "reverted" and "not the current epoch" in r[0].reason


def test_beacon_commit_reveal_sets_the_seed(store: StateStore, chain: DevChain, tmp_path: Path) -> None:
    with store.view() as v:
        info = v.epoch_info(0)
    assert info is not None
    mid = (info.start_ms + info.end_ms) // 2
    k = chain.nodes
    reveal = b"\x11" * 32
    ok(run(chain, store, chain.sign(k[0].node, "beacon_commit", epoch=0, commitment=beacon_commitment(reveal))))
    r = run(chain, store, chain.sign(k[0].node, "beacon_reveal", epoch=0, reveal=reveal), ts=mid - 1)
    assert r[0].status == "reverted" and "reveal phase" in r[0].reason
    r = run(chain, store, chain.sign(k[1].node, "beacon_commit", epoch=0, commitment=beacon_commitment(reveal)), ts=mid)
    assert r[0].status == "reverted" and "commit phase" in r[0].reason
    r = run(chain, store, chain.sign(k[0].node, "beacon_reveal", epoch=0, reveal=b"\x12" * 32))
    assert r[0].status == "reverted" and "does not match" in r[0].reason
    ok(run(chain, store, chain.sign(k[0].node, "beacon_reveal", epoch=0, reveal=reveal)))
    end_epoch(chain, store)
    # the same chain without the reveal selects with another seed
    with StateStore(tmp_path / "other", map_size=1 << 30, sync=False) as other:
        twin = DevChain.create(nodes=5, committee=4, accounts=3, balance="1000 FLK", epoch_time_ms=60_000)
        other.initialize(twin.genesis)
        end_epoch(twin, other)
        with store.view() as v1, other.view() as v2:
            c1, c2 = v1.committee(1), v2.committee(1)
            assert c1 is not None and c2 is not None and c1.seed != c2.seed


def test_reputation_measurements_and_served_counters(store: StateStore, chain: DevChain) -> None:
    k = chain.nodes
    subject = k[4].node.public.raw

    def m(latency: int, uptime: int) -> dict[str, object]:
        return {"node": subject, "latency_ms": latency, "uptime_pct": uptime, "bytes_served": 1000, "requests": 2}

    def submit(i: int, latency: int, uptime: int) -> SignedTransaction:
        return chain.sign(k[i].node, "submit_reputation_measurements", epoch=0, measurements=[m(latency, uptime)])

    ok(run(chain, store, submit(0, 100, 90), submit(1, 300, 100), submit(2, 500, 80)))
    r = run(chain, store, submit(0, 1, 1))
    assert r[0].status == "reverted" and "already submitted" in r[0].reason
    r = run(chain, store, chain.sign(k[4].node, "submit_reputation_measurements", epoch=0, measurements=[m(1, 1)]))
    assert r[0].status == "reverted" and "itself" in r[0].reason
    with store.view() as v:
        assert v.row(SERVED, u64(0) + subject) == {"bytes": 3000, "requests": 6}
    end_epoch(chain, store)
    assert node(store, chain, 4).reputation == 90 * 1000 // 1300  # lower medians: latency 300, uptime 90
    assert node(store, chain, 0).reputation is None


def test_content_registry(store: StateStore, chain: DevChain) -> None:
    n0, n1 = chain.nodes[0].node, chain.nodes[1].node
    fund(chain, store, n0, n1)
    root, cid = b"\xaa" * 32, b"\x01\x55\x12\x20" + b"\x01" * 32
    ok(
        run(
            chain,
            store,
            chain.sign(n0, "update_content_registry", updates=[{"root": root, "cid": cid, "remove": False}]),
        )
    )
    ok(run(chain, store, chain.sign(n1, "update_content_registry", updates=[{"root": root, "remove": False}])))
    with store.view() as v:
        assert v.row(CONTENT_PROVIDERS, root) == sorted([n0.public.raw, n1.public.raw])
        assert v.row(CONTENT_CIDS, cid) == root
    r = run(
        chain,
        store,
        chain.sign(n1, "update_content_registry", updates=[{"root": b"\xbb" * 32, "cid": cid, "remove": False}]),
    )
    assert r[0].status == "reverted" and "already maps" in r[0].reason
    r = run(
        chain,
        store,
        chain.sign(chain.accounts[0], "update_content_registry", updates=[{"root": root, "remove": False}]),
    )
    assert r[0].status == "reverted" and "registered nodes" in r[0].reason
    ok(run(chain, store, chain.sign(n0, "update_content_registry", updates=[{"root": root, "remove": True}])))
    ok(run(chain, store, chain.sign(n1, "update_content_registry", updates=[{"root": root, "remove": True}])))
    with store.view() as v:
        assert v.row(CONTENT_PROVIDERS, root) is None


def test_governance_params_and_slash(store: StateStore, chain: DevChain) -> None:
    g = chain.governance
    r = run(chain, store, chain.sign(chain.accounts[0], "change_protocol_param", name="committee_size", value=2))
    assert r[0].status == "reverted" and "governance" in r[0].reason
    r = run(chain, store, chain.sign(g, "change_protocol_param", name="committee_size", value=0))
    assert r[0].status == "reverted" and "at least 1" in r[0].reason
    r = run(chain, store, chain.sign(g, "change_protocol_param", name="nope", value=1))
    assert r[0].status == "reverted" and "unknown protocol param" in r[0].reason
    ok(run(chain, store, chain.sign(g, "change_protocol_param", name="committee_size", value=2)))
    end_epoch(chain, store)
    with store.view() as v:
        c = v.committee(1)
        assert c is not None and len(c.members) == 2
    victim = chain.nodes[4].node.public.raw
    evidence = {"kind": "governance", "data": b"double signing"}
    r = run(
        chain, store, chain.sign(g, "slash", node=victim, amount=FLK, evidence={"kind": "equivocation", "data": b""})
    )
    assert r[0].status == "reverted" and "unknown evidence kind" in r[0].reason
    r = run(chain, store, chain.sign(chain.accounts[0], "slash", node=victim, amount=FLK, evidence=evidence))
    assert r[0].status == "reverted" and "governance" in r[0].reason
    ok(run(chain, store, chain.sign(g, "slash", node=victim, amount=400 * FLK, evidence=evidence)))
    assert node(store, chain, 4).stake == 600 * FLK
    with store.view() as v:
        assert v.meta("supply") == 15_000 * FLK - 400 * FLK


def test_invalid_blocks_change_nothing(store: StateStore, chain: DevChain) -> None:
    head = store.head()
    tx = chain.sign(chain.accounts[0], "transfer", to=b"\x01" * 32, amount=FLK)
    good, _ = chain.block(head, [tx])
    stranger = NodeId(b"\x07" * 32)
    bad_blocks = [  # height, parent, previous root, epoch, proposer, timestamp, txs root
        Block(2, good.parent, 0, good.proposer, good.timestamp_ms, good.prev_state_root, good.txs_root, good.txs),
        Block(1, b"\x00" * 32, 0, good.proposer, good.timestamp_ms, good.prev_state_root, good.txs_root, good.txs),
        Block(1, good.parent, 0, good.proposer, good.timestamp_ms, b"\x00" * 32, good.txs_root, good.txs),
        Block(1, good.parent, 1, good.proposer, good.timestamp_ms, good.prev_state_root, good.txs_root, good.txs),
        Block(1, good.parent, 0, stranger, good.timestamp_ms, good.prev_state_root, good.txs_root, good.txs),
        Block(1, good.parent, 0, good.proposer, head.timestamp_ms - 1, good.prev_state_root, good.txs_root, good.txs),
        Block(1, good.parent, 0, good.proposer, good.timestamp_ms, good.prev_state_root, b"\x00" * 32, good.txs),
    ]
    for bad in bad_blocks:
        with pytest.raises(InvalidBlock):
            proof = CommitProof.sequencer(bad, chain.nodes[0].consensus, chain_id=chain.genesis.chain_id)
            store.apply_block(bad, proof)
        assert store.head() == head and store.tree_root() == head.state_root
    too_many = [chain.sign(chain.accounts[1], "transfer", to=b"\x01" * 32, amount=1) for _ in range(3)]
    small = DevChain.create(nodes=1, params={"max_block_transactions": 2})
    with StateStore(store.path.parent / "small", map_size=1 << 26, sync=False) as s2:
        s2.initialize(small.genesis)
        block, proof = small.block(s2.head(), too_many)
        with pytest.raises(InvalidBlock, match="limit is 2"):
            s2.apply_block(block, proof)
    store.apply_block(good, CommitProof.sequencer(good, chain.nodes[0].consensus, chain_id=chain.genesis.chain_id))
    assert store.head().height == 1 and store.block(1) is not None


def test_state_proofs_against_the_root(store: StateStore, chain: DevChain) -> None:
    a = chain.accounts[0]
    ok(run(chain, store, chain.sign(a, "transfer", to=b"\x01" * 32, amount=FLK)))
    head, value, proof = store.prove("accounts", a.public.raw)
    assert head == store.head() and value is not None
    smt.verify_proof(head.state_root, smt.key_path("accounts", a.public.raw), smt.value_hash(value), proof)
    head, value, proof = store.prove("accounts", b"\x02" * 32)
    assert value is None
    smt.verify_proof(head.state_root, smt.key_path("accounts", b"\x02" * 32), None, proof)
    with pytest.raises(StateError, match="unknown table"):
        store.prove("nope", b"")
