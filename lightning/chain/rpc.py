"""JSON-RPC methods of the state (``flk_*``), registered on the node's Dispatcher. Reference: docs/state.md.

JSON conventions: keys, addresses, hashes and byte strings are lowercase hex (``0x`` accepted on input); amounts are
decimal strings of base units (a JSON number cannot hold a u128 exactly); other integers are JSON numbers.
"""

from __future__ import annotations

from typing import Any

import trio

from lightning.chain.component import State
from lightning.chain.mempool import Mempool
from lightning.chain.mempool_core import TxRejected
from lightning.codec import encode
from lightning.errors import LightningError
from lightning.ids import AccountId, NodeId
from lightning.rpc import Dispatcher, RpcError
from lightning.rpc.jsonrpc import INVALID_PARAMS
from lightning.state.errors import StateError
from lightning.state.executor import Receipt
from lightning.state.methods import AMOUNT_PARAMS
from lightning.state.records import TABLES, NodeInfo
from lightning.state.tx import MAX_TX_BYTES

__all__ = ["TX_REJECTED", "node_json", "receipt_json", "register_state_rpc"]

TX_REJECTED = -32010  # data: {"code": <mempool code>}
MAX_WAIT_MS = 30_000
MAX_REGISTRY_PAGE = 1000
MAX_BLOCKS_PAGE = 64
MAX_BLOCKS_BYTES = 8 * 1024 * 1024  # per flk_get_blocks answer (at least one block)


def _node_id(text: Any, what: str) -> NodeId:
    if not isinstance(text, str):
        raise RpcError(INVALID_PARAMS, f"{what}: expected a hex string")
    try:
        return NodeId.parse(text)
    except LightningError as exc:
        raise RpcError(INVALID_PARAMS, f"{what}: {exc}") from None


def _account(text: Any, what: str) -> AccountId:
    if not isinstance(text, str):
        raise RpcError(INVALID_PARAMS, f"{what}: expected a hex string")
    try:
        account = AccountId.parse(text)
    except LightningError as exc:
        raise RpcError(INVALID_PARAMS, f"{what}: {exc}") from None
    if not account.is_ed25519:
        raise RpcError(
            INVALID_PARAMS, f"{what}: 20-byte addresses are not supported yet; use the account's Ed25519 key"
        )
    return account


def _hex(text: Any, what: str, *, size: int | None = None, max_bytes: int = 1 << 20) -> bytes:
    if not isinstance(text, str) or len(text) > 2 * max_bytes + 2:
        raise RpcError(INVALID_PARAMS, f"{what}: expected a hex string")
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise RpcError(INVALID_PARAMS, f"{what}: not hex") from None
    if size is not None and len(raw) != size:
        raise RpcError(INVALID_PARAMS, f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


def _int(v: Any, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise RpcError(INVALID_PARAMS, f"{what}: expected an integer in [{lo}, {hi}]")
    return v


def node_json(node_id: NodeId, n: NodeInfo, *, committee: bool) -> dict[str, Any]:
    return {
        "node_id": node_id.hex(),
        "owner": n.owner.hex(),
        "consensus_key": n.consensus_key.hex(),
        "host": n.host,
        "ports": n.ports.to_wire(),
        "stake": str(n.stake),
        "stake_locked_until": n.stake_locked_until,
        "locked": str(n.locked),
        "locked_until": n.locked_until,
        "participation": n.participation,
        "reputation": n.reputation,
        "registered_epoch": n.registered_epoch,
        "registration_seq": n.registration_seq,
        "committee": committee,
    }


def receipt_json(r: Receipt) -> dict[str, Any]:
    return {
        "tx_hash": r.tx_hash.hex(),
        "height": r.height,
        "index": r.index,
        "sender": r.sender.hex(),
        "nonce": r.nonce,
        "method": r.method,
        "status": r.status,
        "reason": r.reason,
    }


def register_state_rpc(d: Dispatcher, state: State, pool: Mempool) -> None:  # one closure per method
    def committee_members() -> set[bytes]:
        return set(state.committee().members)

    async def get_account_info(address: str) -> dict[str, Any]:
        addr = _account(address, "address")
        acct = state.account(addr)
        return {
            "address": addr.hex(),
            "balance": str(acct.balance),
            "nonce": acct.nonce,
            "next_nonce": pool.next_nonce(addr),
        }

    async def get_flk_balance(address: str) -> str:
        return str(state.account(_account(address, "address")).balance)

    async def get_staked(node_id: str) -> str:
        n = state.node(_node_id(node_id, "node_id"))
        return "0" if n is None else str(n.stake)

    async def get_locked(node_id: str) -> str:
        n = state.node(_node_id(node_id, "node_id"))
        return "0" if n is None else str(n.locked)

    async def get_node_info(node_id: str) -> dict[str, Any] | None:
        nid = _node_id(node_id, "node_id")
        n = state.node(nid)
        return None if n is None else node_json(nid, n, committee=nid in committee_members())

    async def get_node_registry(offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        offset = _int(offset, "offset")
        limit = _int(limit, "limit", 1, MAX_REGISTRY_PAGE)
        members = committee_members()
        out = []
        with state.view() as view:
            for i, (nid, n) in enumerate(view.nodes()):
                if i >= offset + limit:
                    break
                if i >= offset:
                    out.append(node_json(nid, n, committee=nid in members))
        return out

    async def get_committee_members(epoch: int | None = None) -> list[str]:
        e = state.epoch() if epoch is None else _int(epoch, "epoch")
        try:
            return [m.hex() for m in state.committee(e).members]
        except LookupError:
            raise RpcError(
                INVALID_PARAMS, f"epoch {e} has no committee (the current epoch is {state.epoch()})"
            ) from None

    async def get_epoch() -> int:
        return state.epoch()

    async def get_epoch_info(epoch: int | None = None) -> dict[str, Any]:
        e = state.epoch() if epoch is None else _int(epoch, "epoch")
        info = state.epoch_info(e)
        if info is None:
            raise RpcError(INVALID_PARAMS, f"epoch {e} has not started (the current epoch is {state.epoch()})")
        committee = state.committee(e)
        return {
            "epoch": e,
            "current": e == state.epoch(),
            "start_ms": info.start_ms,
            "end_ms": info.end_ms,
            "committee": [m.hex() for m in committee.members],
            "seed": committee.seed.hex(),
        }

    async def get_protocol_params() -> dict[str, Any]:
        with state.view() as view:
            params = view.params()
        return {k: str(v) if k in AMOUNT_PARAMS else v for k, v in sorted(params.items())}

    async def get_reputation(node_id: str) -> int | None:
        n = state.node(_node_id(node_id, "node_id"))
        return None if n is None else n.reputation

    async def get_state_root() -> dict[str, Any]:
        h = state.head()
        return {
            "root": h.state_root.hex(),
            "height": h.height,
            "block_hash": h.block_hash.hex(),
            "epoch": h.epoch,
            "timestamp_ms": h.timestamp_ms,
        }

    async def get_state_proof(table: str, key: str) -> dict[str, Any]:
        if table not in TABLES:
            raise RpcError(INVALID_PARAMS, f"table: unknown table {table!r} (tables: {', '.join(TABLES)})")
        raw_key = _hex(key, "key", max_bytes=1024)
        try:
            head, value, proof = state.store.prove(table, raw_key)
        except StateError as exc:
            raise RpcError(INVALID_PARAMS, str(exc)) from None
        return {
            "root": head.state_root.hex(),
            "height": head.height,
            "table": table,
            "key": raw_key.hex(),
            "value": None if value is None else value.hex(),
            "proof": encode(proof.to_wire()).hex(),
        }

    async def send_txn(tx: str) -> dict[str, Any]:
        raw = _hex(tx, "tx", max_bytes=MAX_TX_BYTES)
        try:
            stx, new = pool.submit(raw)
        except TxRejected as exc:
            raise RpcError(TX_REJECTED, f"transaction rejected: {exc}", {"code": exc.code}) from None
        return {"hash": stx.hash.hex(), "new": new}

    async def get_txn_receipt(hash: str, wait_ms: int = 0) -> dict[str, Any] | None:  # JSON name
        tx_hash = _hex(hash, "hash", size=32)
        wait_ms = _int(wait_ms, "wait_ms", 0, MAX_WAIT_MS)
        receipt = await state.wait_receipt(tx_hash, wait_ms / 1000) if wait_ms else state.store.receipt(tx_hash)
        return None if receipt is None else receipt_json(receipt)

    async def get_blocks(start: int, max_blocks: int = 16, wait_ms: int = 0) -> list[str]:
        start = _int(start, "start", 1)
        max_blocks = _int(max_blocks, "max_blocks", 1, MAX_BLOCKS_PAGE)
        wait_ms = _int(wait_ms, "wait_ms", 0, MAX_WAIT_MS)
        if wait_ms and state.head().height < start:
            with trio.move_on_after(wait_ms / 1000):
                await state.wait_head_change(start - 1)
        out: list[str] = []
        size = 0
        for h in range(start, min(start + max_blocks, state.head().height + 1)):
            rec = state.store.block_record(h)
            if rec is None or (out and size + len(rec) > MAX_BLOCKS_BYTES):
                break
            out.append(rec.hex())
            size += len(rec)
        return out

    d.add("flk_get_account_info", get_account_info)
    d.add("flk_get_flk_balance", get_flk_balance)
    d.add("flk_get_staked", get_staked)
    d.add("flk_get_locked", get_locked)
    d.add("flk_get_node_info", get_node_info)
    d.add("flk_get_node_registry", get_node_registry)
    d.add("flk_get_committee_members", get_committee_members)
    d.add("flk_get_epoch", get_epoch)
    d.add("flk_get_epoch_info", get_epoch_info)
    d.add("flk_get_protocol_params", get_protocol_params)
    d.add("flk_get_reputation", get_reputation)
    d.add("flk_get_state_root", get_state_root)
    d.add("flk_get_state_proof", get_state_proof)
    d.add("flk_send_txn", send_txn)
    d.add("flk_get_txn_receipt", get_txn_receipt)
    d.add("flk_get_blocks", get_blocks)
