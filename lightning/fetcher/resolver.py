"""Resolver records: which blake3 root an origin pointer (``ipfs:<cid>/<path>``, ``url:…``) resolved to, and who
holds it — gossiped on the broadcast ``resolver`` topic so other nodes fetch from peers instead of the origin.

A node announces a record after it fetched from an origin and published the object. Records from others are kept
in a bounded in-memory LRU (they are hints: a restart forgets them and the origin path still works). Trust: a record
is signed by its origin node (broadcast checks the signature and that the node is known); a node announces only
what it verified against the origin itself (never a record it learned); the first record for an alias wins and
conflicting claims are logged. A peer's content is verified against the record's root block by block, but that the
root *is* the CID's content rests on the announcer's honesty — the trust the network puts in a staked node (no
evidence kind exists yet to slash a false record). URL pointers are never resolved through records: their
integrity hash must be checked on the bytes, which only the origin path does.

Payload: canonical msgpack ``{"alias": str, "root": 32 bytes, "epoch": int, "seq": int, "sig": 64 bytes}``, where
``sig`` is the origin node key's signed statement (lightning/statement.py) of kind ``resolver_record`` on this chain,
``epoch`` and ``seq`` (the node's own record counter, restarting with the process: a record is a hint, never
evidence) over ``blake3(encode({"alias", "root"}))``. So a record stands on its own, outside the broadcast message
that carried it, and a record signed for another chain or by another node is rejected.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CollectorRegistry, Counter

from lightning.codec import CodecError, decode, encode
from lightning.crypto import SIGNATURE_BYTES, BadSignature, SigningKey
from lightning.errors import LightningError
from lightning.ids import NodeId
from lightning.statement import Kind, SignedStatement, Statement, payload_hash

if TYPE_CHECKING:
    from lightning.broadcast import Broadcast

__all__ = ["Resolver", "record_statement", "sign_record"]

logger = logging.getLogger(__name__)

MAX_ALIAS_BYTES = 511
PROVIDERS_PER_RECORD = 16
ANNOUNCE_QUEUE = 1024
_RECORD_FIELDS = frozenset({"alias", "root", "epoch", "seq", "sig"})


def record_statement(chain_id: int, epoch: int, seq: int, alias: str, root: bytes) -> Statement:
    """The ``resolver_record`` statement a node signs for ``alias`` → ``root``."""
    digest = payload_hash(encode({"alias": alias, "root": root}))
    return Statement(chain_id, epoch, seq, Kind.RESOLVER_RECORD, digest)


def sign_record(key: SigningKey, chain_id: int, epoch: int, seq: int, alias: str, root: bytes) -> bytes:
    """The gossip payload of a record, signed by ``key`` (the announcing node's node key)."""
    signed = record_statement(chain_id, epoch, seq, alias, root).sign(key)
    return encode({"alias": alias, "root": root, "epoch": epoch, "seq": seq, "sig": signed.signature})


def _check_record(body: Any, chain_id: int, origin: NodeId) -> tuple[str, bytes]:
    """``(alias, root)`` of a well-formed record signed by ``origin`` for this chain. Raises ValueError."""
    if not isinstance(body, dict) or set(body) != _RECORD_FIELDS:
        raise ValueError(f"not a map of {', '.join(sorted(_RECORD_FIELDS))}")
    alias, root, epoch, seq, sig = (body[k] for k in ("alias", "root", "epoch", "seq", "sig"))
    if not (isinstance(alias, str) and 0 < len(alias.encode()) <= MAX_ALIAS_BYTES and alias.startswith("ipfs:")):
        raise ValueError(f"alias: an ipfs: pointer of 1 to {MAX_ALIAS_BYTES} bytes")
    if not isinstance(root, bytes) or len(root) != 32:
        raise ValueError("root: expected 32 bytes")
    if not isinstance(sig, bytes) or len(sig) != SIGNATURE_BYTES:
        raise ValueError(f"sig: expected {SIGNATURE_BYTES} bytes")
    try:
        statement = record_statement(chain_id, epoch, seq, alias, root)  # checks epoch and seq
        SignedStatement(statement, sig).verify(bytes(origin))
    except (LightningError, BadSignature) as exc:
        raise ValueError(f"signature: {exc}") from None
    return alias, root


class Resolver:
    def __init__(
        self,
        broadcast: Broadcast | None,
        *,
        max_records: int = 100_000,
        registry: CollectorRegistry | None = None,
        epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        """Records are signed with the broadcast's node key for its chain id; ``epoch`` gives the current epoch for
        the records this node signs."""
        self._broadcast = broadcast
        self._epoch = epoch
        self._seq = 0
        registry = registry or CollectorRegistry()
        self._m_announced = Counter("lightning_resolver_announced", "Records of ours gossiped", registry=registry)
        self._m_learned = Counter("lightning_resolver_learned", "Records learned from other nodes", registry=registry)
        self._m_rejected = Counter("lightning_resolver_rejected", "Malformed records rejected", registry=registry)
        self._max = max_records
        self._records: OrderedDict[str, tuple[bytes, list[NodeId]]] = OrderedDict()
        self._send, self._recv = trio.open_memory_channel[tuple[str, bytes]](ANNOUNCE_QUEUE)
        self.announced = 0
        self.conflicts = 0
        self.learned = 0
        self.rejected = 0

    def lookup(self, alias: str) -> tuple[bytes, list[NodeId]] | None:
        record = self._records.get(alias)
        if record is not None:
            self._records.move_to_end(alias)
        return record

    def learn(self, alias: str, root: bytes, provider: NodeId) -> None:
        record = self._records.get(alias)
        if record is not None and record[0] != root:
            # A conflicting claim: keep the first (an attacker cannot displace a record others already hold) and
            # count it; a node that serves the wrong content is caught by nobody here, so log who claimed what.
            self.conflicts += 1
            logger.warning("resolver: %s claims %s is %s, we hold %s", provider.short(), alias, root.hex()[:16],
                           record[0].hex()[:16])  # fmt: skip
            return
        if record is None:
            record = (root, [])
        providers = [p for p in record[1] if p != provider][: PROVIDERS_PER_RECORD - 1]
        self._records[alias] = (root, [provider, *providers])
        self._records.move_to_end(alias)
        while len(self._records) > self._max:
            self._records.popitem(last=False)

    def announce_nowait(self, alias: str, root: bytes) -> None:
        """Queue a record of ours for gossip (dropped if the queue is full: records are hints)."""
        try:
            self._send.send_nowait((alias, root))
        except trio.WouldBlock:
            logger.debug("resolver announce queue full; dropping %s", alias)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._broadcast is None:
            task_status.started()
            await trio.sleep_forever()
        from lightning.broadcast import Topic

        broadcast = self._broadcast
        subscription = broadcast.subscribe(Topic.RESOLVER)
        async with trio.open_nursery() as nursery:

            async def announcer() -> None:
                async for alias, root in self._recv:
                    self._seq += 1
                    payload = sign_record(broadcast.key, broadcast.chain_id, self._epoch(), self._seq, alias, root)
                    try:
                        await broadcast.send(Topic.RESOLVER, payload)
                        self.announced += 1
                        self._m_announced.inc()
                    except LightningError as exc:  # a hint that did not go out; the origin path still works
                        logger.info("could not announce %s: %s", alias, exc)

            nursery.start_soon(announcer)
            task_status.started()
            async for received in subscription:
                origin = received.message.origin
                try:
                    alias, root = _check_record(decode(received.message.payload), broadcast.chain_id, origin)
                except (CodecError, ValueError) as exc:
                    self.rejected += 1
                    self._m_rejected.inc()
                    logger.warning(
                        "bad resolver record from %s (origin %s): %s", received.sender.short(), origin.short(), exc
                    )
                    subscription.reject(received)
                    continue
                self.learn(alias, root, origin)
                self.learned += 1
                self._m_learned.inc()
                subscription.propagate(received)
