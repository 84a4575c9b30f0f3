"""Resolver records: which blake3 root an origin pointer (``ipfs:<cid>/<path>``, ``url:…``) resolved to, and who
holds it — gossiped on the broadcast ``resolver`` topic so other nodes fetch from peers instead of the origin.

A node announces a record after it fetched from an origin and published the object. Records from others are kept
in a bounded in-memory LRU (they are hints: a restart forgets them and the origin path still works). Trust: a record
is signed by its origin node (broadcast checks the signature and that the node is known); a node announces only
what it verified against the origin itself (never a record it learned); the first record for an alias wins and
conflicting claims are logged. A peer's content is verified against the record's root block by block, but that the
root *is* the CID's content rests on the announcer's honesty — the trust the network puts in a staked node (no
evidence kind exists yet to slash a false record). URL pointers are never resolved through records: their
integrity hash must be checked on the bytes, which only the origin path does. Payload: canonical msgpack
``{"alias": str, "root": 32 bytes}``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry, Counter

from lightning.codec import CodecError, decode, encode
from lightning.errors import LightningError
from lightning.ids import NodeId

if TYPE_CHECKING:
    from lightning.broadcast import Broadcast

__all__ = ["Resolver"]

logger = logging.getLogger(__name__)

MAX_ALIAS_BYTES = 511
PROVIDERS_PER_RECORD = 16
ANNOUNCE_QUEUE = 1024


class Resolver:
    def __init__(
        self, broadcast: Broadcast | None, *, max_records: int = 100_000, registry: CollectorRegistry | None = None
    ) -> None:
        self._broadcast = broadcast
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
                    try:
                        await broadcast.send(Topic.RESOLVER, encode({"alias": alias, "root": root}))
                        self.announced += 1
                        self._m_announced.inc()
                    except LightningError as exc:  # a hint that did not go out; the origin path still works
                        logger.info("could not announce %s: %s", alias, exc)

            nursery.start_soon(announcer)
            task_status.started()
            async for received in subscription:
                try:
                    body = decode(received.message.payload)
                    alias, root = body["alias"], body["root"]
                    ok = (
                        isinstance(body, dict)
                        and set(body) == {"alias", "root"}
                        and isinstance(alias, str)
                        and 0 < len(alias.encode()) <= MAX_ALIAS_BYTES
                        and alias.startswith("ipfs:")
                        and isinstance(root, bytes)
                        and len(root) == 32
                    )
                except (CodecError, KeyError, TypeError):
                    ok = False
                if not ok:
                    self.rejected += 1
                    self._m_rejected.inc()
                    logger.warning("bad resolver record from %s", received.message.origin.short())
                    subscription.reject(received)
                    continue
                self.learn(alias, root, received.message.origin)
                self.learned += 1
                self._m_learned.inc()
                subscription.propagate(received)
