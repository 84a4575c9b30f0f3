"""A small deterministic chain for tests, simulations and benchmarks: known keys, a genesis, and block building.

Keys derive from a seed, so a failing run reproduces exactly. Nothing here is used by a running node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import blake3

from lightning.crypto import SigningKey
from lightning.genesis import Genesis, parse_genesis
from lightning.home import Keys
from lightning.state.block import Block, ChainHead, CommitProof
from lightning.state.records import Ports
from lightning.state.registration import sign_registration
from lightning.state.store import BlockOutcome, StateStore
from lightning.state.tx import SignedTransaction, sign_transaction

__all__ = ["DevChain", "derive_key"]

CHAIN_ID = 7


def derive_key(seed: int, label: str, index: int = 0) -> SigningKey:
    return SigningKey(blake3.blake3(f"devchain/{seed}/{label}/{index}".encode()).digest())


@dataclass
class DevChain:
    genesis: Genesis
    nodes: list[Keys]
    accounts: list[SigningKey]
    faucet: SigningKey
    governance: SigningKey
    nonces: dict[bytes, int] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        *,
        seed: int = 0,
        nodes: int = 1,
        committee: int = 1,
        accounts: int = 4,
        balance: str = "1000 FLK",
        epoch_time_ms: int = 60_000,
        genesis_time_ms: int = 1_700_000_000_000,
        params: dict[str, Any] | None = None,
    ) -> DevChain:
        node_keys = [
            Keys(derive_key(seed, "node", i), derive_key(seed, "consensus", i), derive_key(seed, "owner", i))
            for i in range(nodes)
        ]
        account_keys = [derive_key(seed, "account", i) for i in range(accounts)]
        faucet, governance = derive_key(seed, "faucet"), derive_key(seed, "governance")
        data = {
            "chain_id": CHAIN_ID,
            "genesis_time_ms": genesis_time_ms,
            "faucet": faucet.public.hex,
            "governance": governance.public.hex,
            "params": {"committee_size": committee, "epoch_time_ms": epoch_time_ms, **(params or {})},
            "nodes": [
                {
                    "node_key": k.node.public.hex,
                    "consensus_key": k.consensus.public.hex,
                    "owner": k.account.public.hex,
                    "host": f"127.0.0.{i + 1}",
                    "stake": "1000 FLK",
                    "committee": i < committee,
                }
                for i, k in enumerate(node_keys)
            ],
            "accounts": [{"address": a.public.hex, "balance": balance} for a in account_keys]
            + [{"address": k.account.public.hex, "balance": balance} for k in node_keys]
            # the faucet and governance pay fees like anyone (docs/fees.md)
            + [{"address": k.public.hex, "balance": balance} for k in (faucet, governance)],
        }
        return cls(parse_genesis(data), node_keys, account_keys, faucet, governance)

    def sign(self, key: SigningKey, method: str, *, nonce: int | None = None, **args: Any) -> SignedTransaction:
        """Sign with the next nonce this chain object has handed out for ``key`` (or ``nonce``)."""
        sender = key.public.raw
        if nonce is None:
            nonce = self.nonces.get(sender, 0) + 1
            self.nonces[sender] = nonce
        return sign_transaction(key, chain_id=self.genesis.chain_id, nonce=nonce, method=method, **args)

    def registration(
        self,
        node: SigningKey,
        consensus: SigningKey,
        owner: SigningKey | bytes,
        *,
        host: str = "10.0.0.1",
        ports: Ports | None = None,
        seq: int = 1,
        chain_id: int | None = None,
    ) -> bytes:
        """A registration blob for a ``stake`` (docs/wire.md), signed by ``node`` and ``consensus``."""
        return sign_registration(
            node,
            consensus,
            chain_id=self.genesis.chain_id if chain_id is None else chain_id,
            owner=owner.public.raw if isinstance(owner, SigningKey) else owner,
            host=host,
            ports=ports or Ports(1, 2, 3),
            seq=seq,
        )

    def block(
        self,
        head: ChainHead,
        txs: Sequence[SignedTransaction | bytes],
        *,
        timestamp_ms: int | None = None,
        proposer: int = 0,
        epoch: int | None = None,
    ) -> tuple[Block, CommitProof]:
        """A block on ``head`` proposed and sequencer-signed by genesis node ``proposer``."""
        raw = [t if isinstance(t, bytes) else t.raw for t in txs]
        keys = self.nodes[proposer]
        block = Block.build(
            head=head,
            proposer=keys.node_id,
            timestamp_ms=head.timestamp_ms + 1000 if timestamp_ms is None else timestamp_ms,
            txs=raw,
            epoch=head.epoch if epoch is None else epoch,
        )
        return block, CommitProof.sequencer(block, keys.consensus, chain_id=self.genesis.chain_id)

    def apply(
        self, store: StateStore, txs: Sequence[SignedTransaction | bytes], *, timestamp_ms: int | None = None
    ) -> BlockOutcome:
        """Build a block on the store's head from the committee member 0 of its epoch and apply it."""
        head = store.head()
        with store.view() as view:
            committee = view.committee(view.epoch)
        assert committee is not None
        proposer = next(i for i, k in enumerate(self.nodes) if k.node_id == committee.members[0])
        block, proof = self.block(head, txs, timestamp_ms=timestamp_ms, proposer=proposer)
        return store.apply_block(block, proof)
