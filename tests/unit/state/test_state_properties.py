"""Properties of the executor over random block sequences (hypothesis).

Supply — balances + stakes + unstaking + the protocol fund that fees go to — is conserved except by mint and slash
(governance slashes, and the epoch change's slash of a member that committed to a beacon value but did not reveal it);
no balance is negative; each sender's executed nonces are 1, 2, 3 …; replays and transactions for another chain are
invalid and change nothing; a sender that cannot pay the fee is skipped (no receipt, no nonce); the incremental root
equals a root recomputed from every row; the same blocks on a fresh state give the same heads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.amounts import UNIT
from lightning.state import smt
from lightning.state.fees import FUND, Costs
from lightning.state.records import TABLES, StateView
from lightning.state.store import StateStore
from lightning.state.tx import SignedTransaction, sign_transaction
from lightning.testing.devchain import DevChain

ACCOUNTS = 3
NODES = 2

amounts = st.integers(1, 1500).map(lambda n: n * UNIT // 2)
ops = st.one_of(
    st.tuples(st.just("transfer"), st.integers(0, ACCOUNTS + NODES - 1), st.integers(0, ACCOUNTS + 1), amounts),
    st.tuples(st.just("mint"), st.booleans(), st.integers(0, ACCOUNTS - 1), amounts),
    st.tuples(st.just("stake"), st.integers(0, NODES - 1), amounts),
    st.tuples(st.just("unstake"), st.integers(0, NODES - 1), amounts),
    st.tuples(st.just("slash"), st.integers(0, NODES - 1), amounts),
    st.tuples(st.just("beacon_commit"), st.integers(0, 1000)),
    st.tuples(st.just("replay"), st.integers(0, 1000)),
    st.tuples(st.just("wrong_chain"), st.integers(0, ACCOUNTS - 1)),
    st.tuples(st.just("drain"), st.integers(0, ACCOUNTS - 1)),  # all but the fee: the sender's next one is unpaid
)
blocks = st.lists(st.one_of(st.just("epoch"), st.lists(ops, min_size=1, max_size=6)), min_size=1, max_size=10)


def _signers(chain: DevChain) -> list[Any]:
    return [*chain.accounts, *(k.account for k in chain.nodes)]


def _to_tx(
    chain: DevChain, op: tuple[Any, ...], executed: list[SignedTransaction], store: StateStore
) -> SignedTransaction | bytes:
    signers = _signers(chain)
    kind = op[0]
    epoch = store.head().epoch
    if kind == "drain":
        key = chain.accounts[op[1]]
        with store.view() as view:
            have, nonce = view.account(key.public.raw).balance, chain.nonces.get(key.public.raw, 0) + 1
            costs = Costs(view)
        amount = max(1, have - costs.rules.fee(200))
        for _ in range(3):  # the fee depends on the signed size, which depends on the amount's encoding
            tx = sign_transaction(
                key, chain_id=chain.genesis.chain_id, nonce=nonce, method="transfer", to=b"\x0e" * 32, amount=amount
            )
            amount = max(1, have - costs.rules.fee(len(tx.raw)))
        chain.nonces[key.public.raw] = nonce
        return tx
    if kind == "transfer":
        _, s, to, amount = op
        recipient = signers[to].public.raw if to < len(signers) else b"\x0e" * 32
        return chain.sign(signers[s], "transfer", to=recipient, amount=amount)
    if kind == "mint":
        _, by_faucet, to, amount = op
        return chain.sign(
            chain.faucet if by_faucet else chain.accounts[0], "mint", to=signers[to].public.raw, amount=amount
        )
    if kind in ("stake", "unstake"):
        _, n, amount = op
        k = chain.nodes[n]
        return chain.sign(k.account, kind, node=k.node.public.raw, amount=amount)
    if kind == "slash":
        _, n, amount = op
        evidence = {"kind": "governance", "data": b""}
        return chain.sign(
            chain.governance, "slash", node=chain.nodes[n].node.public.raw, amount=amount, evidence=evidence
        )
    if kind == "beacon_commit":  # the committee (node 0) commits and never reveals: slashed at the epoch change
        commitment = op[1].to_bytes(32, "big")
        return chain.sign(chain.nodes[0].node, "beacon_commit", epoch=epoch, commitment=commitment)
    if kind == "replay":
        return executed[op[1] % len(executed)].raw if executed else b"\x00"
    assert kind == "wrong_chain"
    key = chain.accounts[op[1]]
    nonce = chain.nonces.get(key.public.raw, 0) + 1
    return sign_transaction(
        key, chain_id=chain.genesis.chain_id + 1, nonce=nonce, method="transfer", to=b"\x0e" * 32, amount=1
    )


def _totals(view: StateView) -> tuple[int, int]:
    balances = [v["balance"] for _, v in view.scan("accounts")]
    assert all(b >= 0 for b in balances)
    staked = sum(n.stake + n.locked for _, n in view.nodes())
    return sum(balances) + staked + view.meta(FUND, 0), view.meta("supply")


def _recomputed_root(store: StateStore) -> bytes:
    tree = smt.DictNodeStore()
    with store.view() as view:
        rows = {smt.key_path(t, k): smt.value_hash(v) for t in TABLES for k, v in view.kv.scan(t)}
    return smt.update(tree, rows)


def _end_epoch_block(chain: DevChain, store: StateStore) -> tuple[list[SignedTransaction], int]:
    with store.view() as v:
        e, info, committee = v.epoch, v.epoch_info(v.epoch), v.committee(v.epoch)
    assert info is not None and committee is not None
    voter = next(k for k in chain.nodes if k.node.public.raw == committee.members[0])
    return [chain.sign(voter.node, "change_epoch", epoch=e)], max(info.end_ms, store.head().timestamp_ms)


@settings(max_examples=40)
@given(blocks)
def test_invariants_over_random_blocks(plan: list[Any]) -> None:
    chain = DevChain.create(nodes=NODES, committee=1, accounts=ACCOUNTS, balance="1000 FLK", epoch_time_ms=10_000)
    with tempfile.TemporaryDirectory() as d, StateStore(Path(d) / "s", map_size=1 << 28, sync=False) as store:
        store.initialize(chain.genesis)
        with store.view() as view:
            expected_supply = _totals(view)[0]
        executed: list[SignedTransaction] = []
        model_nonce: dict[bytes, int] = {}
        for step in plan:
            txs: list[SignedTransaction | bytes]
            if step == "epoch":
                votes, ts = _end_epoch_block(chain, store)
                txs = list(votes)
                with store.view() as view:
                    member = view.node(chain.nodes[0].node.public.raw)
                    committed = view.row("beacon", view.epoch.to_bytes(8, "big") + chain.nodes[0].node.public.raw)
                    penalty = view.param("beacon_no_reveal_slash")
                assert member is not None
                outcome = chain.apply(store, txs, timestamp_ms=ts)
                if committed is not None and committed["reveal"] is None:
                    expected_supply -= min(penalty, member.stake + member.locked)
            else:
                txs = [_to_tx(chain, op, executed, store) for op in step]
                outcome = chain.apply(store, txs)
            by_hash = {t.hash: t for t in txs if isinstance(t, SignedTransaction)}
            skipped = {s.index: s for s in outcome.skipped}
            gapped: set[bytes] = set()  # senders whose transaction was skipped: their later ones have a nonce gap
            receipts = iter(outcome.receipts)
            for i, op in enumerate(step if step != "epoch" else [("epoch",)]):
                if i in skipped:  # unpaid: the balance no longer covers the fee, or node 0 left the committee
                    expect = "not_authorized" if op[0] == "beacon_commit" else "insufficient_balance"
                    assert skipped[i].code == expect and op[0] != "epoch"
                    gapped.add(skipped[i].sender)
                    chain.nonces[skipped[i].sender] = model_nonce.get(skipped[i].sender, 0)
                    continue
                r = next(receipts)
                if op[0] in ("replay", "wrong_chain") or r.sender in gapped:
                    assert r.status == "invalid"
                    continue
                assert r.status in ("ok", "reverted"), r.reason
                assert r.nonce == model_nonce.get(r.sender, 0) + 1  # nonces strictly increase, one by one
                model_nonce[r.sender] = r.nonce
                executed.append(by_hash[r.tx_hash])
                if r.status == "ok" and op[0] == "mint":
                    expected_supply += op[3]
                if r.status == "ok" and op[0] == "slash":
                    expected_supply -= op[2]
            with store.view() as view:
                total, supply = _totals(view)
                assert total == supply == expected_supply
                for sender, nonce in model_nonce.items():
                    assert view.account(sender).nonce == nonce
            assert store.tree_root() == store.head().state_root == _recomputed_root(store)
        _replay_on_fresh_state(chain, store, Path(d) / "twin")


def _replay_on_fresh_state(chain: DevChain, store: StateStore, path: Path) -> None:
    with StateStore(path, map_size=1 << 28, sync=False) as twin:
        twin.initialize(chain.genesis)
        for height in range(1, store.head().height + 1):
            stored = store.block(height)
            assert stored is not None
            block, proof, receipts = stored
            outcome = twin.apply_block(block, proof)
            assert outcome.receipts == receipts
        assert twin.head() == store.head()
