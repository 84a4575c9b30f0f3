"""The application state on LMDB: tables, the Merkle tree, the block log and receipts; one write transaction per block.

One environment (``<home>/data/state``) holds:

===================  ==============================  ===================================================
database             key                             value
===================  ==============================  ===================================================
``t/<table>``        the table's key                 canonical msgpack row (covered by the state root)
``smt``              tree position                   tree node (``smt.py``)
``chain``            ``head``, ``genesis``            ChainHead; the genesis digest the state was built from
``blocks``           u64be height                    ``{block, proof, receipts: [encoded Receipt]}``
``receipts``         transaction hash                Receipt
===================  ==============================  ===================================================

:meth:`StateStore.apply_block` executes a block, writes its rows, the tree nodes, the new head, the block and its
receipts in one write transaction, and commits: after a crash (even SIGKILL mid-block) the state is exactly the one
after the last committed block. The environment is opened with ``sync=True`` (each commit is durable) and without
``writemap`` (a full disk is an error, never a crash). Writes must come from one thread (the component's writer
thread); reads may come from any thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from lightning.codec import decode, encode
from lightning.crypto import parse_public_key
from lightning.genesis import Genesis, parse_amount
from lightning.ids import AccountId, NodeId
from lightning.state import smt
from lightning.state.block import Block, ChainHead, CommitProof
from lightning.state.errors import StateError
from lightning.state.executor import Execution, Overlay, Receipt, Skipped, execute_block
from lightning.state.fastcodec import encode_fast
from lightning.state.records import TABLES, Account, Committee, EpochInfo, NodeInfo, Ports, StateView, u64
from lightning.storage import open_env, write_txn

__all__ = ["BlockOutcome", "StateFull", "StateStore", "genesis_params"]

_HEAD = b"head"
PATH_CACHE_ENTRIES = 1 << 16
_GENESIS = b"genesis"


class StateFull(StateError):
    """The state's LMDB map is full; the block was not applied."""


@dataclass(frozen=True)
class BlockOutcome:
    block: Block
    head: ChainHead
    receipts: tuple[Receipt, ...]
    skipped: tuple[Skipped, ...] = ()  # unpaid transactions: no receipt, nothing written (executor.py)


def genesis_params(genesis: Genesis) -> dict[str, int]:
    """Protocol params as the state stores them (amounts in base units)."""
    p = genesis.params
    out: dict[str, int] = {}
    for name in p.__dataclass_fields__:
        v = getattr(p, name)
        out[name] = parse_amount(v, f"params.{name}") if isinstance(v, str) else int(v)
    return out


class _TxnKV:
    """The tables of one LMDB transaction as a :class:`KV`."""

    def __init__(self, store: StateStore, txn: lmdb.Transaction) -> None:
        self._dbs = store._tables
        self.txn = txn

    def get(self, table: str, key: bytes) -> bytes | None:
        v = self.txn.get(key, db=self._dbs[table])
        return None if v is None else bytes(v)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self.txn.put(key, value, db=self._dbs[table])

    def delete(self, table: str, key: bytes) -> None:
        self.txn.delete(key, db=self._dbs[table])

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        with self.txn.cursor(db=self._dbs[table]) as cur:
            if not cur.set_range(prefix):
                return
            for k, v in cur:
                k = bytes(k)
                if not k.startswith(prefix):
                    return
                yield k, bytes(v)


class _TxnNodes:
    """The Merkle tree's nodes in one LMDB transaction, as an :class:`smt.NodeStore`."""

    def __init__(self, txn: lmdb.Transaction, db: Any) -> None:
        self.txn = txn
        self.db = db

    def get(self, pos: bytes) -> bytes | None:
        v = self.txn.get(pos, db=self.db)
        return None if v is None else bytes(v)

    def put(self, pos: bytes, node: bytes) -> None:
        self.txn.put(pos, node, db=self.db)

    def delete(self, pos: bytes) -> None:
        self.txn.delete(pos, db=self.db)


class StateStore:
    """Synchronous LMDB state. Raises :class:`StateError` subclasses; writes from one thread only."""

    def __init__(self, path: Path, *, map_size: int = 64 * 1024**3, readonly: bool = False, sync: bool = True) -> None:
        self.path = path
        self.env = open_env(
            path,
            what="the state",
            error=StateError,
            map_size=map_size,
            max_dbs=len(TABLES) + 8,
            sync=sync,
            readonly=readonly,
        )
        create = not readonly
        self._tables = {t: self.env.open_db(f"t/{t}".encode(), create=create) for t in TABLES}
        self._smt = self.env.open_db(b"smt", create=create)
        self._chain = self.env.open_db(b"chain", create=create)
        self._blocks = self.env.open_db(b"blocks", create=create)
        self._receipts = self.env.open_db(b"receipts", create=create)
        self._paths: dict[tuple[str, bytes], bytes] = {}  # tree paths of recently written rows (hot accounts)

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> contextlib.AbstractContextManager[lmdb.Transaction]:
        return write_txn(self.env, self.path, full=StateFull, full_hint="raise state.map_size_bytes", error=StateError)

    # -- genesis ------------------------------------------------------------------------------------------------
    def initialize(self, genesis: Genesis) -> ChainHead:
        """Build the genesis state if the store is empty; otherwise check it was built from ``genesis``.

        Raises :class:`StateError` if the store belongs to another genesis."""
        digest = genesis.digest()
        with self._write() as txn:
            raw = txn.get(_GENESIS, db=self._chain)
            if raw is not None:
                if bytes(raw) != digest:
                    raise StateError(
                        f"{self.path}: this state was built from another genesis (chain {genesis.chain_id}'s genesis "
                        "differs); move the data directory away to start over"
                    )
                return self._head(txn)
            overlay = Overlay(_TxnKV(self, txn))
            _write_genesis(StateView(overlay), genesis)
            root = self._write_rows(txn, overlay.writes)
            head = ChainHead(0, digest, root, genesis.genesis_time_ms, 0)
            txn.put(_GENESIS, digest, db=self._chain)
            txn.put(_HEAD, encode(head.to_wire()), db=self._chain)
            return head

    def _write_rows(self, txn: lmdb.Transaction, writes: dict[tuple[str, bytes], bytes | None]) -> bytes:
        changes: dict[bytes, bytes | None] = {}
        paths = self._paths
        for (table, key), value in writes.items():
            db = self._tables[table]
            path = paths.get((table, key))
            if path is None:
                if len(paths) >= PATH_CACHE_ENTRIES:
                    paths.clear()
                path = paths[(table, key)] = smt.key_path(table, key)
            if value is None:
                txn.delete(key, db=db)
                changes[path] = None
            else:
                txn.put(key, value, db=db)
                changes[path] = smt.value_hash(value)
        return smt.update(_TxnNodes(txn, self._smt), changes)

    def import_rows(self, rows: dict[tuple[str, bytes], bytes | None]) -> ChainHead:
        """Write rows (``None`` deletes) and update the tree and the head's root in one transaction, outside any
        block: bulk loading by tools and benchmarks. Returns the new head."""
        with self._write() as txn:
            head = self._head(txn)
            root = self._write_rows(txn, rows)
            head = ChainHead(head.height, head.block_hash, root, head.timestamp_ms, head.epoch)
            txn.put(_HEAD, encode(head.to_wire()), db=self._chain)
            return head

    # -- blocks -------------------------------------------------------------------------------------------------
    def apply_block(
        self, block: Block, proof: CommitProof, *, on_tx: Callable[[int], None] | None = None
    ) -> BlockOutcome:
        """Execute and persist ``block`` atomically. Raises InvalidBlock (nothing written), :class:`StateFull`."""
        with self._write() as txn:
            head = self._head(txn)
            ex: Execution = execute_block(_TxnKV(self, txn), head, block, on_tx=on_tx)
            root = self._write_rows(txn, ex.writes)
            new_head = ChainHead(block.height, block.hash(), root, block.timestamp_ms, ex.epoch)
            txn.put(_HEAD, encode(new_head.to_wire()), db=self._chain)
            receipts = [encode_fast(r.to_wire()) for r in ex.receipts]
            record = {"block": block.to_wire(), "proof": proof.to_wire(), "receipts": receipts}
            txn.put(u64(block.height), encode_fast(record), db=self._blocks)
            for r, raw in zip(ex.receipts, receipts, strict=True):
                # An invalid copy (a replay) never hides the receipt of the transaction that did execute.
                if r.status != "invalid" or txn.get(r.tx_hash, db=self._receipts) is None:
                    txn.put(r.tx_hash, raw, db=self._receipts)
        return BlockOutcome(block, new_head, ex.receipts, ex.skipped)

    # -- reads --------------------------------------------------------------------------------------------------
    def _head(self, txn: lmdb.Transaction) -> ChainHead:
        raw = txn.get(_HEAD, db=self._chain)
        if raw is None:
            raise StateError(f"{self.path}: the state has no genesis yet")
        return ChainHead.from_wire(decode(bytes(raw)))

    def head(self) -> ChainHead:
        with self.env.begin() as txn:
            return self._head(txn)

    def is_initialized(self) -> bool:
        with self.env.begin() as txn:
            return txn.get(_HEAD, db=self._chain) is not None

    @contextlib.contextmanager
    def view(self) -> Iterator[StateView]:
        """A consistent read-only view of the state (one read transaction)."""
        with self.env.begin() as txn:
            yield StateView(_TxnKV(self, txn))

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        with self.env.begin() as txn:
            raw = txn.get(tx_hash, db=self._receipts)
            return None if raw is None else Receipt.from_wire(decode(bytes(raw)))

    def block(self, height: int) -> tuple[Block, CommitProof, tuple[Receipt, ...]] | None:
        with self.env.begin() as txn:
            raw = txn.get(u64(height), db=self._blocks)
            if raw is None:
                return None
            rec = decode(bytes(raw), max_bytes=256 * 1024 * 1024)
            return (
                Block.from_wire(rec["block"]),
                CommitProof.from_wire(rec["proof"]),
                tuple(Receipt.from_wire(decode(r)) for r in rec["receipts"]),
            )

    def block_record(self, height: int) -> bytes | None:
        """The stored ``{block, proof, receipts}`` bytes of ``height``, as served to followers."""
        with self.env.begin() as txn:
            raw = txn.get(u64(height), db=self._blocks)
            return None if raw is None else bytes(raw)

    def root(self) -> bytes:
        return self.head().state_root

    def prove(self, table: str, key: bytes) -> tuple[ChainHead, bytes | None, smt.Proof]:
        """The head, the row's value (or None) and its proof against ``head.state_root``, read consistently."""
        if table not in self._tables:
            raise StateError(f"unknown table {table!r} (tables: {', '.join(TABLES)})")
        with self.env.begin() as txn:
            head = self._head(txn)
            value = _TxnKV(self, txn).get(table, key)
            proof = smt.make_proof(_TxnNodes(txn, self._smt), smt.key_path(table, key))
            return head, value, proof

    def tree_root(self) -> bytes:
        """The root recomputed from the stored tree (equals ``head().state_root`` unless the store is damaged)."""
        with self.env.begin() as txn:
            return smt.root_hash(_TxnNodes(txn, self._smt))


def _write_genesis(view: StateView, genesis: Genesis) -> None:
    params = genesis_params(genesis)
    for name, value in params.items():
        view.set_param(name, value)
    view.set_meta("chain_id", genesis.chain_id)
    view.set_meta("faucet", genesis.faucet.raw if genesis.faucet else b"")
    view.set_meta("governance", genesis.governance.raw if genesis.governance else b"")
    view.set_meta("epoch", 0)
    for address, balance in sorted(genesis.balances.items()):
        view.set_account(bytes.fromhex(address), Account(balance, 0))
    for n in genesis.nodes:
        node_id = bytes.fromhex(n.node_id)
        ckey = parse_public_key(n.consensus_key).raw
        view.set_node(
            node_id,
            NodeInfo(
                owner=AccountId.parse(n.owner),
                consensus_key=ckey,
                host=n.host,
                ports=Ports(n.quic_port, n.http_port, n.pinger_port, n.rpc_port),
                stake=genesis.stakes[n.node_id],
                participation="true",
            ),
        )
        view.index_key(node_id, node_id)
        view.index_key(ckey, node_id)
    members = tuple(NodeId.parse(n.node_id) for n in genesis.committee)
    view.set_committee(0, Committee(members, genesis.digest()))
    view.set_epoch_info(0, EpochInfo(genesis.genesis_time_ms, genesis.genesis_time_ms + params["epoch_time_ms"]))
    view.set_meta("supply", sum(genesis.balances.values()) + sum(genesis.stakes.values()))
