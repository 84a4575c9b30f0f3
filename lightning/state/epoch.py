"""Epochs: the change vote, the committee-selection beacon, reputation measurements, and the epoch transition.

Epoch ``e`` runs from ``epochs[e].start_ms`` until a block at or after its planned ``end_ms`` executes the
ChangeEpoch vote that completes a quorum (2f+1) of epoch ``e``'s committee; the votes are transactions signed with
the members' node keys. That block's transaction performs the transition, so every node derives the same result:

1. the beacon seed: ``H(SEED_DOMAIN || previous seed || u64be(e) || node id || reveal ...)`` over the members that
   revealed, in node-id order (the commit phase is the first half of the epoch, the reveal phase the rest);
   each member that committed but did not reveal before the change is slashed ``beacon_no_reveal_slash`` (at most
   its stake plus what it is unstaking; from the stake first; burnt, so the supply falls by as much);
2. participation: ``opted_in`` becomes ``true``, ``opted_out`` becomes ``false``;
3. the committee of ``e+1``: ``committee_size`` eligible nodes (participation ``true``, stake >= ``min_stake``)
   drawn stake-weighted without replacement, seeded by the beacon (:func:`select_committee`; the previous
   committee if none is eligible);
4. reputation: for each node measured during ``e``, the lower medians of the reporters' latency and uptime give
   ``reputation = uptime_pct * 1000 // (1000 + latency_ms)`` (0..100); nodes not measured keep theirs;
5. epoch ``e+1`` starts at the block's timestamp and is planned to end ``epoch_time_ms`` later; the votes, beacon
   rows, measurements and protocol-transaction counts of ``e`` are deleted (served counters are kept).

The four methods here are protocol transactions (``fee="protocol"``): free for their role, within
``protocol_txs_per_epoch`` per node (``fees.py``); the executor checks the role before the handler runs, so the
handlers' own membership checks are a second line.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import blake3

from lightning.ids import NodeId
from lightning.state.block import quorum
from lightning.state.method import Revert, TxContext, method
from lightning.state.records import (
    BEACON,
    EPOCH_VOTES,
    MEASUREMENTS,
    PARAMS,
    PROTOCOL_TXS,
    SERVED,
    BeaconEntry,
    Committee,
    EpochInfo,
    Measurement,
    StateView,
    u64,
)
from lightning.state.schema import EPOCH, KEY, U64, ListOf, MapOf, integer

__all__ = [
    "METHODS",
    "advance_epoch",
    "beacon_commitment",
    "reputation_score",
    "select_committee",
    "slash_non_revealers",
]

SEED_DOMAIN = b"lightning/committee-seed/v1\x00"
MAX_MEASUREMENTS = 1024

MEASUREMENT = MapOf(
    {
        "node": KEY,
        "latency_ms": integer(0, 3_600_000),
        "uptime_pct": integer(0, 100),
        "bytes_served": U64,
        "requests": U64,
    }
)


def _h(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def beacon_commitment(reveal: bytes) -> bytes:
    return _h(reveal)


def _committee_member(ctx: TxContext) -> Committee:
    committee = ctx.view.committee(ctx.epoch)
    assert committee is not None, "every epoch has a committee"
    if bytes(ctx.sender) not in committee.members:  # a node-role method: the sender is a node key
        raise Revert("only members of the current committee (signing with their node key) may do this")
    return committee


def _current_epoch(ctx: TxContext, epoch: int) -> EpochInfo:
    if epoch != ctx.epoch:
        raise Revert(f"epoch {epoch} is not the current epoch {ctx.epoch}")
    info = ctx.view.epoch_info(epoch)
    assert info is not None
    return info


@method(
    "change_epoch",
    MapOf({"epoch": EPOCH}),
    sender="node key of a current committee member",
    rule="epoch is current; block time ≥ planned end; one vote each; a quorum changes the epoch",
    fee="protocol",
    role="committee",
)
def change_epoch(ctx: TxContext, args: dict[str, Any]) -> None:
    committee = _committee_member(ctx)
    info = _current_epoch(ctx, args["epoch"])
    if ctx.timestamp_ms < info.end_ms:
        raise Revert(f"epoch {ctx.epoch} ends at {info.end_ms} ms; this block is at {ctx.timestamp_ms} ms")
    prefix = u64(ctx.epoch)
    if ctx.view.kv.get(EPOCH_VOTES, prefix + ctx.sender) is not None:
        raise Revert(f"already voted to end epoch {ctx.epoch}")
    ctx.view.put_row(EPOCH_VOTES, prefix + ctx.sender, True)
    votes = sum(1 for _ in ctx.view.kv.scan(EPOCH_VOTES, prefix))
    if votes >= quorum(len(committee.members)):
        advance_epoch(ctx.view, ctx.timestamp_ms)


@method(
    "beacon_commit",
    MapOf({"epoch": EPOCH, "commitment": KEY}),
    sender="committee member (node key)",
    rule="current epoch, first half (block time); once",
    fee="protocol",
    role="committee",
)
def beacon_commit(ctx: TxContext, args: dict[str, Any]) -> None:
    _committee_member(ctx)
    info = _current_epoch(ctx, args["epoch"])
    if ctx.timestamp_ms >= (info.start_ms + info.end_ms) // 2:
        raise Revert("the beacon commit phase (first half of the epoch) is over")
    key = u64(ctx.epoch) + ctx.sender
    if ctx.view.kv.get(BEACON, key) is not None:
        raise Revert("already committed to a beacon value this epoch")
    ctx.view.put_row(BEACON, key, BeaconEntry(args["commitment"]).to_wire())


@method(
    "beacon_reveal",
    MapOf({"epoch": EPOCH, "reveal": KEY}),
    sender="committee member (node key)",
    rule="second half; `blake3(reveal) == commitment`; once",
    fee="protocol",
    role="committee",
)
def beacon_reveal(ctx: TxContext, args: dict[str, Any]) -> None:
    _committee_member(ctx)
    info = _current_epoch(ctx, args["epoch"])
    if ctx.timestamp_ms < (info.start_ms + info.end_ms) // 2:
        raise Revert("the beacon reveal phase starts half-way through the epoch")
    key = u64(ctx.epoch) + ctx.sender
    row = ctx.view.row(BEACON, key)
    if row is None:
        raise Revert("no beacon commitment to reveal this epoch")
    entry = BeaconEntry.from_wire(row)
    if entry.reveal is not None:
        raise Revert("already revealed")
    if beacon_commitment(args["reveal"]) != entry.commitment:
        raise Revert("the reveal does not match the commitment")
    ctx.view.put_row(BEACON, key, BeaconEntry(entry.commitment, args["reveal"]).to_wire())


@method(
    "submit_reputation_measurements",
    MapOf({"epoch": EPOCH, "measurements": ListOf(MEASUREMENT, MAX_MEASUREMENTS, unique_by="node")}),
    sender="node key of a node with stake ≥ `min_stake`",
    rule="current epoch; subjects registered, not itself; once per (reporter, subject, epoch); adds to `served`",
    fee="protocol",
    role="node",
)
def submit_reputation_measurements(ctx: TxContext, args: dict[str, Any]) -> None:
    reporter = ctx.sender
    node = ctx.view.node(reporter)
    if node is None or node.stake < ctx.param("min_stake"):
        raise Revert("only staked nodes (signing with their node key) submit measurements")
    _current_epoch(ctx, args["epoch"])
    prefix = u64(ctx.epoch)
    for m in args["measurements"]:
        subject = m["node"]
        if subject == reporter:
            raise Revert("a node cannot measure itself")
        if ctx.view.node(subject) is None:
            raise Revert(f"measured node {subject.hex()[:16]}… is not registered")
        key = prefix + subject + reporter
        if ctx.view.kv.get(MEASUREMENTS, key) is not None:
            raise Revert("measurements for this epoch were already submitted")
        ctx.view.put_row(
            MEASUREMENTS, key, Measurement(m["latency_ms"], m["uptime_pct"], m["bytes_served"], m["requests"]).to_wire()
        )
        served = ctx.view.row(SERVED, prefix + subject) or {"bytes": 0, "requests": 0}
        ctx.view.put_row(
            SERVED,
            prefix + subject,
            {"bytes": served["bytes"] + m["bytes_served"], "requests": served["requests"] + m["requests"]},
        )


def _lower_median(values: list[int]) -> int:
    values = sorted(values)
    return values[(len(values) - 1) // 2]


def reputation_score(measurements: list[Measurement]) -> int:
    latency = _lower_median([m.latency_ms for m in measurements])
    uptime = _lower_median([m.uptime_pct for m in measurements])
    return max(0, min(100, uptime * 1000 // (1000 + latency)))


def select_committee(seed: bytes, eligible: dict[NodeId, int], size: int) -> tuple[NodeId, ...]:
    """Draw ``size`` members from ``eligible`` (node id -> stake) without replacement, each draw picking a node with
    probability proportional to its stake: draw ``k`` takes ``r = int(H(seed || u32be(k))) mod (remaining stake)``
    and walks the remaining nodes in node-id order. Integers only, so every node derives the same committee."""
    remaining = sorted((node_id, max(stake, 1)) for node_id, stake in eligible.items())  # min_stake may be 0
    chosen: list[NodeId] = []
    for k in range(min(size, len(remaining))):
        total = sum(stake for _, stake in remaining)
        r = int.from_bytes(_h(seed + k.to_bytes(4, "big")), "big") % total
        for i, (node_id, stake) in enumerate(remaining):
            if r < stake:
                chosen.append(node_id)
                del remaining[i]
                break
            r -= stake
    return tuple(chosen)


def slash_non_revealers(view: StateView, node_ids: list[bytes]) -> dict[bytes, int]:
    """Slash each of ``node_ids`` (in the given, node-id, order) ``beacon_no_reveal_slash``: from its stake first,
    then from what it is unstaking, never more than both; the amount is burnt. Returns node id -> amount slashed.
    A state created before the param existed has no row for it and slashes nothing."""
    amount = view.row(PARAMS, b"beacon_no_reveal_slash")
    if not isinstance(amount, int) or amount <= 0:
        return {}
    slashed: dict[bytes, int] = {}
    for node_id in node_ids:
        node = view.node(node_id)
        if node is None:
            continue
        take = min(amount, node.stake + node.locked)
        from_stake = min(take, node.stake)
        view.set_node(node_id, node.with_(stake=node.stake - from_stake, locked=node.locked - (take - from_stake)))
        view.set_meta("supply", view.meta("supply", 0) - take)
        slashed[node_id] = take
    return slashed


def advance_epoch(view: StateView, timestamp_ms: int) -> None:
    """Move the state from its epoch ``e`` to ``e+1`` (see the module docstring)."""
    e = view.epoch
    prefix = u64(e)
    committee = view.committee(e)
    assert committee is not None
    beacon = list(view.scan(BEACON, prefix))
    reveals = b"".join(k[8:] + v["reveal"] for k, v in beacon if v["reveal"] is not None)
    seed = _h(SEED_DOMAIN + committee.seed + prefix + reveals)
    slash_non_revealers(view, [k[8:] for k, v in beacon if v["reveal"] is None])

    min_stake = view.param("min_stake")
    eligible: dict[NodeId, int] = {}
    for node_id, node in list(view.nodes()):
        new = {"opted_in": "true", "opted_out": "false"}.get(node.participation, node.participation)
        if new != node.participation:
            node = node.with_(participation=new)
            view.set_node(node_id, node)
        if new == "true" and node.stake >= min_stake:
            eligible[node_id] = node.stake
    members = select_committee(seed, eligible, view.param("committee_size")) or committee.members
    view.set_committee(e + 1, Committee(members, seed))

    by_subject: dict[bytes, list[Measurement]] = defaultdict(list)
    for key, v in list(view.scan(MEASUREMENTS, prefix)):
        by_subject[key[8:40]].append(Measurement.from_wire(v))
        view.kv.delete(MEASUREMENTS, key)
    for subject in sorted(by_subject):
        measured = view.node(subject)
        if measured is not None:
            view.set_node(subject, measured.with_(reputation=reputation_score(by_subject[subject])))
    for key, _ in beacon:
        view.kv.delete(BEACON, key)
    for key, _ in list(view.kv.scan(EPOCH_VOTES, prefix)):
        view.kv.delete(EPOCH_VOTES, key)
    for key, _ in list(view.kv.scan(PROTOCOL_TXS, prefix)):
        view.kv.delete(PROTOCOL_TXS, key)

    view.set_epoch_info(e + 1, EpochInfo(timestamp_ms, timestamp_ms + view.param("epoch_time_ms")))
    view.set_meta("epoch", e + 1)


METHODS = (
    change_epoch,
    beacon_commit,
    beacon_reveal,
    submit_reputation_measurements,
)
