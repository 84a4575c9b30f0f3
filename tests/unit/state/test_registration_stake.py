"""``stake`` with signed registrations on a real store: nobody registers or stakes for a node id they don't hold.

Every refused call is ``reverted`` with a reason naming the broken rule, and changes nothing but the sender's own
account row (its nonce, and whatever fee it pays).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning.amounts import UNIT
from lightning.codec import decode, encode
from lightning.crypto import Domain, SigningKey
from lightning.state.executor import Receipt
from lightning.state.records import ACCOUNTS, META, TABLES, NodeInfo, Ports
from lightning.state.store import StateStore
from lightning.state.tx import SignedTransaction
from lightning.testing.devchain import DevChain, derive_key

FLK = UNIT
FUND = b"protocol_fund"  # the meta row fees are paid into (lightning/state/fees.py)
NODE, CONSENSUS = derive_key(11, "node"), derive_key(11, "consensus")
NID = NODE.public.raw


@pytest.fixture
def chain() -> DevChain:
    return DevChain.create(nodes=2, committee=1, accounts=3, balance="5000 FLK")


@pytest.fixture
def store(tmp_path: Path, chain: DevChain) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state", map_size=1 << 28, sync=False) as s:
        s.initialize(chain.genesis)
        yield s


def run(chain: DevChain, store: StateStore, *txs: SignedTransaction | bytes) -> list[Receipt]:
    return list(chain.apply(store, txs).receipts)


def rows(store: StateStore) -> dict[tuple[str, bytes], bytes]:
    with store.view() as v:
        return {(t, k): bytes(val) for t in TABLES for k, val in v.kv.scan(t)}


def node(store: StateStore, node_id: bytes) -> NodeInfo | None:
    with store.view() as v:
        return v.node(node_id)


def refused(chain: DevChain, store: StateStore, tx: SignedTransaction, reason: str) -> None:
    """``tx`` reverts with ``reason`` and changes nothing but the sender's nonce (+1) and its fee (sender → fund)."""
    before = rows(store)
    (r,) = run(chain, store, tx)
    assert (r.status, reason in r.reason) == ("reverted", True), r.reason
    after = rows(store)
    sender, fund = (ACCOUNTS, bytes(tx.tx.sender)), (META, FUND)
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed <= {sender, fund}
    old, new = decode(before[sender]), decode(after[sender])
    fee = decode(after.get(fund, encode(0))) - decode(before.get(fund, encode(0)))
    assert (new["nonce"], new["balance"]) == (old["nonce"] + 1, old["balance"] - fee)


def test_a_registration_signed_by_another_key_is_refused_and_nothing_is_stored(
    chain: DevChain, store: StateStore
) -> None:
    thief = chain.accounts[1]
    forged = chain.registration(derive_key(11, "thief-node"), CONSENSUS, thief)  # signs for its own key...
    outer = decode(forged)
    outer["registration"]["node"] = NID  # ...but names the victim's node id
    tx = chain.sign(thief, "stake", node=NID, amount=FLK, registration=encode(outer))
    refused(chain, store, tx, f"not signed by node key {NID.hex()[:16]}")
    assert node(store, NID) is None


def test_a_consensus_key_the_operator_does_not_hold_is_refused(chain: DevChain, store: StateStore) -> None:
    owner = chain.accounts[0]
    victim_consensus = derive_key(11, "someone-elses-consensus")
    honest = decode(chain.registration(NODE, CONSENSUS, owner))
    wire = {**honest["registration"], "consensus_key": victim_consensus.public.raw}
    msg = encode(wire)
    blob = encode(
        {
            "registration": wire,
            "node_sig": NODE.sign(Domain.REGISTRATION, msg),
            "consensus_sig": CONSENSUS.sign(Domain.REGISTRATION_CONSENSUS, msg),  # not the key it names
        }
    )
    refused(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=blob), "its consensus key")
    assert node(store, NID) is None


def test_a_blob_copied_from_the_mempool_is_useless_to_another_account(chain: DevChain, store: StateStore) -> None:
    owner, copier = chain.accounts[0], chain.accounts[1]
    blob = chain.registration(NODE, CONSENSUS, owner)
    refused(chain, store, chain.sign(copier, "stake", node=NID, amount=FLK, registration=blob), "names owner")
    assert node(store, NID) is None
    (r,) = run(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=blob))
    assert r.status == "ok", r.reason
    n = node(store, NID)
    assert n is not None and n.owner == owner.public.raw and n.consensus_key == CONSENSUS.public.raw
    assert (n.host, n.ports, n.registration_seq, n.participation) == ("10.0.0.1", Ports(1, 2, 3), 1, "false")
    with store.view() as v:
        assert v.key_owner(NID) == NID and v.key_owner(CONSENSUS.public.raw) == NID
    # a later stake by anyone else, with or without the blob, is refused too
    refused(chain, store, chain.sign(copier, "stake", node=NID, amount=FLK), "only the owner")
    refused(chain, store, chain.sign(copier, "stake", node=NID, amount=FLK, registration=blob), "only the owner")


def test_wrong_chain_id_and_wrong_node_id(chain: DevChain, store: StateStore) -> None:
    owner = chain.accounts[0]
    other_chain = chain.registration(NODE, CONSENSUS, owner, chain_id=chain.genesis.chain_id + 1)
    tx = chain.sign(owner, "stake", node=NID, amount=FLK, registration=other_chain)
    refused(chain, store, tx, f"registration is for chain {chain.genesis.chain_id + 1}, this is chain 7")
    blob = chain.registration(NODE, CONSENSUS, owner)
    other = derive_key(11, "other").public.raw
    refused(chain, store, chain.sign(owner, "stake", node=other, amount=FLK, registration=blob), "is for node")
    refused(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=b"\xc1"), "does not decode")
    refused(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK), "must carry the registration")
    assert node(store, NID) is None and node(store, other) is None


def test_keys_already_in_the_registry_are_refused(chain: DevChain, store: StateStore) -> None:
    owner = chain.accounts[0]
    taken = chain.nodes[1].consensus  # the operator holds it (this test has every key) but it is registered
    blob = chain.registration(NODE, taken, owner)
    refused(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=blob), "already registered")


def test_host_and_ports_change_only_with_a_fresh_registration(chain: DevChain, store: StateStore) -> None:
    owner = chain.accounts[0]
    first = chain.registration(NODE, CONSENSUS, owner, host="10.0.0.1", seq=1)
    assert run(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=first))[0].status == "ok"
    moved = chain.registration(NODE, CONSENSUS, owner, host="moved.example.net", ports=Ports(5, 6, 7, 8), seq=5)
    (r,) = run(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=moved))
    assert r.status == "ok", r.reason
    n = node(store, NID)
    assert n is not None and (n.host, n.ports, n.registration_seq, n.stake) == (
        "moved.example.net",
        Ports(5, 6, 7, 8),
        5,
        2 * FLK,
    )
    # replays of the old one (it still verifies) and of the current one are refused: host and ports stay
    for old in (first, moved):
        refused(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=old), "not above")
    lower = chain.registration(NODE, CONSENSUS, owner, host="10.9.9.9", seq=4)
    refused(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=lower), "seq 6 or more")
    # a stake without a registration leaves them as they are
    (r,) = run(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK))
    assert r.status == "ok"
    n = node(store, NID)
    assert n is not None and (n.host, n.registration_seq, n.stake) == ("moved.example.net", 5, 3 * FLK)


def test_a_registration_cannot_change_the_consensus_key(chain: DevChain, store: StateStore) -> None:
    owner = chain.accounts[0]
    blob = chain.registration(NODE, CONSENSUS, owner)
    assert run(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=blob))[0].status == "ok"
    new_ck = derive_key(11, "new-consensus")
    swap = chain.registration(NODE, new_ck, owner, seq=2)
    refused(chain, store, chain.sign(owner, "stake", node=NID, amount=FLK, registration=swap), "cannot change")


def test_genesis_nodes_are_registered_without_a_blob_and_update_with_one(chain: DevChain, store: StateStore) -> None:
    keys = chain.nodes[1]
    gid = keys.node.public.raw
    n = node(store, gid)
    assert n is not None and n.registration_seq == 0
    (r,) = run(chain, store, chain.sign(keys.account, "stake", node=gid, amount=FLK))
    assert r.status == "ok", r.reason
    # only its node key can re-register it, only for its owner, and never with a stolen signature
    outsider = SigningKey(b"\x42" * 32)
    forged = decode(chain.registration(outsider, keys.consensus, keys.account, host="10.6.6.6"))
    forged["registration"]["node"] = gid
    tx = chain.sign(keys.account, "stake", node=gid, amount=FLK, registration=encode(forged))
    refused(chain, store, tx, "not signed by node key")
    update = chain.registration(keys.node, keys.consensus, keys.account, host="10.2.2.2", seq=1)
    (r,) = run(chain, store, chain.sign(keys.account, "stake", node=gid, amount=FLK, registration=update))
    assert r.status == "ok", r.reason
    n = node(store, gid)
    assert n is not None and (n.host, n.registration_seq, n.participation) == ("10.2.2.2", 1, "true")
