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

__all__ = ["LIGHTNING_PARAM_NAMES", "TX_REJECTED", "node_json", "receipt_json", "register_state_rpc"]

TX_REJECTED = -32010  # data: {"code": <mempool code>}
MAX_WAIT_MS = 30_000
MAX_REGISTRY_PAGE = 1000
MAX_BLOCKS_PAGE = 64
MAX_BLOCKS_BYTES = 8 * 1024 * 1024  # per flk_get_blocks answer (at least one block)


def _bad(what: str, message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"{what}: {message}", {"param": what})


def _node_id(text: Any, what: str) -> NodeId:
    if not isinstance(text, str):
        raise _bad(what, "expected a hex string")
    try:
        return NodeId.parse(text)
    except LightningError as exc:
        raise _bad(what, str(exc)) from None


def _account(text: Any, what: str) -> AccountId:
    if not isinstance(text, str):
        raise _bad(what, "expected a hex string")
    try:
        account = AccountId.parse(text)
    except LightningError as exc:
        raise _bad(what, str(exc)) from None
    if not account.is_ed25519:
        raise _bad(what, "20-byte addresses are not supported yet; use the account's Ed25519 key")
    return account


def _hex(text: Any, what: str, *, size: int | None = None, max_bytes: int = 1 << 20) -> bytes:
    if not isinstance(text, str) or len(text) > 2 * max_bytes + 2:
        raise _bad(what, "expected a hex string")
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise _bad(what, "not hex") from None
    if size is not None and len(raw) != size:
        raise _bad(what, f"expected {size} bytes, got {len(raw)}")
    return raw


def _int(v: Any, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _bad(what, f"expected an integer in [{lo}, {hi}]")
    return v


def _current_epoch_only(state: State, epoch: int | None) -> None:
    """Lightning's optional ``epoch`` argument: this node keeps the current state only, so any other epoch is
    refused (naming the current one) rather than answered from the wrong state."""
    current = state.epoch()
    if epoch is not None and _int(epoch, "epoch") != current:
        raise _bad("epoch", f"this node keeps the current state only (epoch {current}); omit epoch or pass null")


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
        "public_key": node_id.hex(),  # Lightning's names for node_id and host
        "domain": n.host,
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


# Lightning's ProtocolParamKey names for the params this state has under another name.
LIGHTNING_PARAM_NAMES = {
    "EpochTime": "epoch_time_ms",
    "CommitteeSize": "committee_size",
    "MinimumNodeStake": "min_stake",
    "LockTime": "stake_lock_epochs",
    "MaxStakeLockTime": "max_stake_lock_epochs",
}


def register_state_rpc(d: Dispatcher, state: State, pool: Mempool) -> None:  # one closure per method
    def committee_members() -> set[bytes]:
        return set(state.committee().members)

    def param_json(name: str, value: int) -> int | str:
        return str(value) if name in AMOUNT_PARAMS else value

    async def get_account_info(address: str, epoch: int | None = None) -> dict[str, Any]:
        """An account's balance and nonces (an unknown account has balance 0, nonce 0).

        Args:
            address: the account's Ed25519 public key (hex)
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: {address, balance, flk_balance (the same amount, Lightning's name), nonce (of its last executed
            transaction), next_nonce (the nonce its next transaction should carry, counting those in this node's
            mempool)}.
        """
        addr = _account(address, "address")
        _current_epoch_only(state, epoch)
        acct = state.account(addr)
        return {
            "address": addr.hex(),
            "balance": str(acct.balance),
            "flk_balance": str(acct.balance),
            "nonce": acct.nonce,
            "next_nonce": pool.next_nonce(addr),
        }

    async def get_flk_balance(address: str, epoch: int | None = None) -> str:
        """An account's FLK balance.

        Args:
            address: the account's Ed25519 public key (hex)
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: the balance in base units (decimal string; 1 FLK = 10^18).
        """
        addr = _account(address, "address")
        _current_epoch_only(state, epoch)
        return str(state.account(addr).balance)

    def node_field(node_id: str, epoch: int | None) -> NodeInfo | None:
        nid = _node_id(node_id, "node_id")
        _current_epoch_only(state, epoch)
        return state.node(nid)

    async def get_staked(node_id: str, epoch: int | None = None) -> str:
        """A node's stake.

        Args:
            node_id: the node's public key (hex)
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: the stake in base units (decimal string); "0" for an unknown node.
        """
        n = node_field(node_id, epoch)
        return "0" if n is None else str(n.stake)

    async def get_locked(node_id: str, epoch: int | None = None) -> str:
        """What a node has unstaked and not yet withdrawn.

        Args:
            node_id: the node's public key (hex)
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: the amount in base units (decimal string); "0" for an unknown node.
        """
        n = node_field(node_id, epoch)
        return "0" if n is None else str(n.locked)

    async def get_stake_locked_until(node_id: str, epoch: int | None = None) -> int:
        """The epoch before which a node's stake cannot be unstaked (``stake lock``).

        Args:
            node_id: the node's public key (hex)
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: an epoch number; 0 for an unknown node or a stake never locked.
        """
        n = node_field(node_id, epoch)
        return 0 if n is None else n.stake_locked_until

    async def get_locked_time(node_id: str, epoch: int | None = None) -> int:
        """The epoch from which a node's unstaked (locked) amount may be withdrawn.

        Args:
            node_id: the node's public key (hex)
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: an epoch number; 0 for an unknown node or nothing unstaked.
        """
        n = node_field(node_id, epoch)
        return 0 if n is None else n.locked_until

    async def get_node_info(node_id: str, epoch: int | None = None) -> dict[str, Any] | None:
        """A node's registry entry.

        Args:
            node_id: the node's public key (hex)
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: null for an unknown node, else {node_id, public_key (the same), owner, consensus_key, host, domain
            (the same), ports: {quic, http, pinger, rpc}, stake, stake_locked_until, locked, locked_until,
            participation (true, false, opted_in, opted_out), reputation (0..100, null until measured),
            registered_epoch, registration_seq, committee (in the current epoch's committee)}; amounts are decimal
            strings of base units.
        """
        nid = _node_id(node_id, "node_id")
        _current_epoch_only(state, epoch)
        n = state.node(nid)
        return None if n is None else node_json(nid, n, committee=nid in committee_members())

    async def get_node_info_epoch(node_id: str) -> list[Any]:
        """A node's registry entry with the epoch it was read in (Lightning's pair).

        Args:
            node_id: the node's public key (hex)
        Returns: [node info as flk_get_node_info answers it (null for an unknown node), the current epoch].
        """
        with state.view() as view:
            nid = _node_id(node_id, "node_id")
            n = view.node(nid)
            epoch = view.epoch
            c = view.committee(epoch)
        info = None if n is None else node_json(nid, n, committee=c is not None and nid in c.members)
        return [info, epoch]

    async def node_has_sufficient_stake(node_id: str) -> bool:
        """Whether a node's stake reaches the protocol's minimum (``min_stake``).

        Args:
            node_id: the node's public key (hex)
        Returns: true or false (false for an unknown node).
        """
        nid = _node_id(node_id, "node_id")
        with state.view() as view:
            n = view.node(nid)
            return n is not None and n.stake >= view.param("min_stake")

    async def get_staking_amount() -> str:
        """The minimum stake a node needs to participate (protocol param ``min_stake``).

        Returns: base units (decimal string). Lightning answers a whole-FLK number; this node keeps its amount
            convention.
        """
        with state.view() as view:
            return str(view.param("min_stake"))

    async def get_total_supply(epoch: int | None = None) -> str:
        """All FLK in existence: balances, stakes, unstaked amounts and the protocol fund.

        Args:
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: base units (decimal string).
        """
        _current_epoch_only(state, epoch)
        with state.view() as view:
            return str(view.meta("supply", 0))

    async def get_chain_id() -> int:
        """The chain id every transaction signs (genesis ``chain_id``).

        Returns: an integer.
        """
        with state.view() as view:
            return int(view.meta("chain_id"))

    async def net_version() -> str:
        """The chain id as Ethereum's ``net_version`` gives it.

        Returns: the chain id as a decimal string.
        """
        return str(await get_chain_id())

    async def get_node_registry(offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """A page of the node registry, in node id order.

        Args:
            offset: how many nodes to skip
            limit: at most this many nodes (1..1000)
        Returns: [node info as flk_get_node_info answers it].
        """
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
        """An epoch's committee, in signing order.

        Args:
            epoch: the epoch (default: the current one); the next epoch's is known once selected
        Returns: [node id (hex)].
        """
        e = state.epoch() if epoch is None else _int(epoch, "epoch")
        try:
            return [m.hex() for m in state.committee(e).members]
        except LookupError:
            raise _bad("epoch", f"epoch {e} has no committee (the current epoch is {state.epoch()})") from None

    async def get_genesis_committee() -> list[list[Any]]:
        """The genesis committee (epoch 0's), with each member's current registry entry.

        Returns: [[index, node info as flk_get_node_info answers it (null if it left the registry)]].
        """
        members = committee_members()
        out: list[list[Any]] = []
        with state.view() as view:
            genesis = view.committee(0)
            assert genesis is not None, "the genesis committee is written at initialisation"
            for i, m in enumerate(genesis.members):
                n = view.node(m)
                out.append([i, None if n is None else node_json(m, n, committee=m in members)])
        return out

    async def get_epoch() -> int:
        """The current epoch.

        Returns: the epoch number (0 at genesis).
        """
        return state.epoch()

    async def get_epoch_info(epoch: int | None = None) -> dict[str, Any]:
        """When an epoch started and is planned to end, and its committee.

        Args:
            epoch: the epoch (default: the current one)
        Returns: {epoch, current (whether it is the current epoch), start_ms, end_ms (planned end, Unix ms; the epoch
            changes at the first block at or after it with a quorum of votes), epoch_end (the same, Lightning's
            name), committee: [node id], seed (the beacon output that selected it)}.
        """
        e = state.epoch() if epoch is None else _int(epoch, "epoch")
        info = state.epoch_info(e)
        if info is None:
            raise _bad("epoch", f"epoch {e} has not started (the current epoch is {state.epoch()})")
        committee = state.committee(e)
        return {
            "epoch": e,
            "current": e == state.epoch(),
            "start_ms": info.start_ms,
            "end_ms": info.end_ms,
            "epoch_end": info.end_ms,
            "committee": [m.hex() for m in committee.members],
            "seed": committee.seed.hex(),
        }

    async def get_protocol_params(protocol_params: str | None = None) -> Any:
        """The protocol params (genesis values as changed by governance), or one of them.

        Args:
            protocol_params: one param's name (``min_stake``, or Lightning's ``MinimumNodeStake``, ``EpochTime``,
                ``CommitteeSize``, ``LockTime``, ``MaxStakeLockTime``); omit for all of them
        Returns: {name: value} for all, or the one value; amounts (min_stake, faucet_mint_per_epoch,
            beacon_no_reveal_slash, base_fee, fee_per_byte) are decimal strings of base units, the rest integers.
        """
        with state.view() as view:
            params = view.params()
        if protocol_params is None:
            return {k: param_json(k, v) for k, v in sorted(params.items())}
        name = LIGHTNING_PARAM_NAMES.get(protocol_params, protocol_params)
        if name not in params:
            raise _bad("protocol_params", f"unknown param {protocol_params!r} (params: {', '.join(sorted(params))})")
        return param_json(name, params[name])

    async def get_reputation(node_id: str, epoch: int | None = None) -> int | None:
        """A node's reputation score.

        Args:
            node_id: the node's public key (hex)
            epoch: Lightning's optional epoch; only the current one (or null) is answered
        Returns: 0..100, or null for an unknown node or one not measured yet.
        """
        n = node_field(node_id, epoch)
        return None if n is None else n.reputation

    async def get_state_root() -> dict[str, Any]:
        """The state root of the last executed block.

        Returns: {root (hex), height, block_hash, epoch, timestamp_ms}.
        """
        h = state.head()
        return {
            "root": h.state_root.hex(),
            "height": h.height,
            "block_hash": h.block_hash.hex(),
            "epoch": h.epoch,
            "timestamp_ms": h.timestamp_ms,
        }

    async def get_state_proof(table: str, key: str) -> dict[str, Any]:
        """A row of the state with its Merkle proof against the current state root (docs/state.md).

        Args:
            table: the table (accounts, nodes, node_keys, committees, epochs, params, meta, …)
            key: the row's key (hex; at most 1024 bytes)
        Returns: {root, height, table, key, value (the row's canonical msgpack, hex; null if absent), proof
            (msgpack, hex)}.
        """
        if table not in TABLES:
            raise _bad("table", f"unknown table {table!r} (tables: {', '.join(TABLES)})")
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
        """Submit a signed transaction to the mempool (forwarded to the committee over the pool).

        Args:
            tx: the signed transaction (hex of its canonical encoding, docs/state.md)
        Returns: {hash (hex), new (false when the mempool already held it)}; a refused transaction is error -32010
            with data {code} (nonce_too_low, insufficient_balance, wrong_chain, malformed, …).
        """
        raw = _hex(tx, "tx", max_bytes=MAX_TX_BYTES)
        try:
            stx, new = pool.submit(raw)
        except TxRejected as exc:
            raise RpcError(TX_REJECTED, f"transaction rejected: {exc}", {"code": exc.code}) from None
        return {"hash": stx.hash.hex(), "new": new}

    async def get_txn_receipt(hash: str, wait_ms: int = 0) -> dict[str, Any] | None:  # JSON name
        """A transaction's receipt once executed.

        Args:
            hash: the transaction hash (hex, 32 bytes)
            wait_ms: wait up to this long for it (0..30000)
        Returns: null while not executed, else {tx_hash, height, index, sender, nonce, method, status (ok,
            reverted, invalid), reason}.
        """
        tx_hash = _hex(hash, "hash", size=32)
        wait_ms = _int(wait_ms, "wait_ms", 0, MAX_WAIT_MS)
        receipt = await state.wait_receipt(tx_hash, wait_ms / 1000) if wait_ms else state.store.receipt(tx_hash)
        return None if receipt is None else receipt_json(receipt)

    async def get_blocks(start: int, max_blocks: int = 16, wait_ms: int = 0) -> list[str]:
        """Committed blocks with their commit proofs and receipts, from a height on.

        Args:
            start: the first height (1 or more)
            max_blocks: at most this many (1..64; fewer when they exceed 8 MiB together)
            wait_ms: when start is beyond the head, wait up to this long for it (0..30000)
        Returns: [the stored record of each block (msgpack {block, proof, receipts}, hex)]; empty when start is
            beyond the head.
        """
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
    d.add("flk_get_stake_locked_until", get_stake_locked_until)
    d.add("flk_get_locked_time", get_locked_time)
    d.add("flk_get_node_info", get_node_info)
    d.add("flk_get_node_info_epoch", get_node_info_epoch)
    d.add("flk_node_has_sufficient_stake", node_has_sufficient_stake)
    d.add("flk_get_staking_amount", get_staking_amount)
    d.add("flk_get_total_supply", get_total_supply)
    d.add("flk_get_chain_id", get_chain_id)
    d.add("net_version", net_version)
    d.add("flk_get_node_registry", get_node_registry)
    d.add("flk_get_committee_members", get_committee_members)
    d.add("flk_get_genesis_committee", get_genesis_committee)
    d.add("flk_get_epoch", get_epoch)
    d.add("flk_get_epoch_info", get_epoch_info)
    d.add("flk_get_protocol_params", get_protocol_params)
    d.add("flk_get_reputation", get_reputation)
    d.add("flk_get_state_root", get_state_root)
    d.add("flk_get_state_proof", get_state_proof)
    d.add("flk_send_txn", send_txn)
    d.add("flk_get_txn_receipt", get_txn_receipt)
    d.add("flk_get_blocks", get_blocks)
