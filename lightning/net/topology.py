"""Which peers each node keeps connected: a pure function of (epoch, node set, latency matrix), and its component.

Theory of operation
-------------------
:func:`compute_topology` gives every node of the network its peer set; every node runs it on the same inputs and
keeps its own row. It is symmetric (``b in peers[a]`` iff ``a in peers[b]``), has no self links, and:

1. **Small networks connect fully**: ``n <= full_mesh_max`` gives every node every other node.
2. **Long links**: ``long_cycles`` Hamiltonian cycles, each visiting the nodes in the order of
   ``blake3(seed || cycle || node id)``, with ``seed = blake3(domain || epoch || sorted node ids)``. They depend on
   (epoch, node set) only, so nodes agree on them even while their latency views differ; one cycle alone keeps the
   overlay connected, and a union of random cycles is an expander with high probability (diameter ``O(log n)``).
3. **Clusters of nearby nodes**: ``m = ceil(n / cluster_size)`` centres chosen by farthest-point traversal on the
   latency matrix (the first centre is the node with the smallest hash), then every (node, centre) pair in order of
   latency (ties by hash) assigns the node to the centre unless that cluster is full. Each cluster is a full mesh.

Degree is at most ``(cluster_size - 1) + 2 * long_cycles``, whatever ``n``. Latencies are integer microseconds,
made symmetric by taking the smaller of the a→b and b→a measurements; an unmeasured pair counts as
``UNKNOWN_LATENCY_US`` (after every measurement, ties broken by hash), so the result is deterministic with any
amount of data, down to none.

Inputs. The node set is a :class:`~lightning.net.known.KnownNodes` view (in a running node: the genesis nodes, the
``[net] allow`` list and every registered node staked at least ``min_stake``, re-read at each epoch change);
latencies are this node's own RTT measurements (the broadcast's ping/pong frames feed :class:`LatencyTable`). Nodes
hold different latency rows and may pick different clusters; the long links still agree, a node serves every
admitted peer that connects to it, and the broadcast advertises back to peers that talk to it, so the union of the
choices stays connected. The component recomputes on :meth:`Topology.recompute` (the node's epoch hook), on
:meth:`Topology.set_epoch`, and every ``recompute_interval_s`` (fresh measurements while the epoch does not change).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import blake3
import trio

from lightning.codec import encode
from lightning.ids import NodeId
from lightning.net.config import TopologyConfig
from lightning.net.known import GenesisNodes, KnownNodes

__all__ = [
    "UNKNOWN_LATENCY_US",
    "GenesisNodes",
    "KnownNodes",
    "LatencyTable",
    "Topology",
    "TopologyParams",
    "TopologyStatistics",
    "compute_topology",
    "diameter",
    "max_degree",
]

logger = logging.getLogger(__name__)

UNKNOWN_LATENCY_US = 10_000_000
_DOMAIN = b"lightning/topology/v1"

Latency = Mapping[tuple[NodeId, NodeId], int]


# -- the pure function --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopologyParams:
    full_mesh_max: int = 12
    cluster_size: int = 8
    long_cycles: int = 2

    def __post_init__(self) -> None:
        assert self.full_mesh_max >= 1 and self.cluster_size >= 1 and self.long_cycles >= 1

    @property
    def degree_bound(self) -> int:
        return max(self.full_mesh_max - 1, self.cluster_size - 1 + 2 * self.long_cycles)

    @classmethod
    def from_config(cls, config: TopologyConfig) -> TopologyParams:
        return cls(config.full_mesh_max, config.cluster_size, config.long_cycles)


def compute_topology(
    epoch: int, nodes: Iterable[NodeId], latency: Latency, params: TopologyParams = TopologyParams()
) -> dict[NodeId, frozenset[NodeId]]:
    """Every node's peer set (see the module docstring). Pure: the same inputs give the same output, whatever
    their iteration order."""
    ordered = sorted(set(nodes), key=lambda k: k)
    n = len(ordered)
    links: dict[NodeId, set[NodeId]] = {k: set() for k in ordered}
    if n <= params.full_mesh_max:
        for a in ordered:
            links[a].update(b for b in ordered if b != a)
        return {k: frozenset(v) for k, v in links.items()}

    seed = blake3.blake3(_DOMAIN + encode([epoch, [k for k in ordered]])).digest()

    def link(a: NodeId, b: NodeId) -> None:
        if a != b:
            links[a].add(b)
            links[b].add(a)

    for cycle in range(params.long_cycles):
        ring = sorted(ordered, key=lambda k: blake3.blake3(seed + cycle.to_bytes(4, "big") + k).digest())
        for i, a in enumerate(ring):
            link(a, ring[(i + 1) % n])

    for cluster in _clusters(seed, ordered, latency, params.cluster_size):
        for i, a in enumerate(cluster):
            for b in cluster[i + 1 :]:
                link(a, b)
    return {k: frozenset(v) for k, v in links.items()}


def _clusters(seed: bytes, ordered: Sequence[NodeId], latency: Latency, size: int) -> list[list[NodeId]]:
    rank = {k: blake3.blake3(seed + b"rank" + k).digest() for k in ordered}

    def dist(a: NodeId, b: NodeId) -> int:
        if a == b:
            return 0
        ab, ba = latency.get((a, b)), latency.get((b, a))
        known = [v for v in (ab, ba) if v is not None and v >= 0]
        return min(known) if known else UNKNOWN_LATENCY_US

    m = math.ceil(len(ordered) / size)
    first = min(ordered, key=lambda k: rank[k])
    centres = [first]
    nearest = {k: dist(k, first) for k in ordered}
    while len(centres) < m:
        # The node farthest from every chosen centre (ties: the smallest hash).
        far = max((k for k in ordered if k not in centres), key=lambda k: (nearest[k], _inverse(rank[k])))
        centres.append(far)
        for k in ordered:
            nearest[k] = min(nearest[k], dist(k, far))

    pairs = sorted(
        ((dist(k, c), rank[k], rank[c], k, c) for k in ordered for c in centres),
        key=lambda p: (p[0], p[1], p[2]),
    )
    members: dict[NodeId, list[NodeId]] = {c: [] for c in centres}
    assigned: set[NodeId] = set()
    for _, _, _, k, c in pairs:
        if k in assigned or len(members[c]) >= size:
            continue
        members[c].append(k)
        assigned.add(k)
    assert len(assigned) == len(ordered)
    return [sorted(v, key=lambda k: k) for v in members.values()]


def _inverse(digest: bytes) -> bytes:
    return bytes(255 - b for b in digest)


def max_degree(peers: Mapping[NodeId, frozenset[NodeId]]) -> int:
    return max((len(v) for v in peers.values()), default=0)


def diameter(peers: Mapping[NodeId, frozenset[NodeId]]) -> int | None:
    """The longest shortest path in hops, None if the graph is disconnected (BFS from every node)."""
    worst = 0
    for start in peers:
        seen = {start: 0}
        queue = deque([start])
        while queue:
            a = queue.popleft()
            for b in peers[a]:
                if b not in seen:
                    seen[b] = seen[a] + 1
                    queue.append(b)
        if len(seen) != len(peers):
            return None
        worst = max(worst, max(seen.values()))
    return worst


# -- measurements -------------------------------------------------------------------------------------------------
class LatencyTable:
    """This node's round-trip samples per peer. The estimate is the minimum of the last ``window`` samples (queueing
    behind large messages only ever adds delay), halved into a one-way latency in microseconds."""

    def __init__(self, window: int = 8, max_peers: int = 4096) -> None:
        self.window = window
        self.max_peers = max_peers
        self._samples: dict[NodeId, deque[float]] = {}
        self._measured_at: dict[NodeId, float] = {}

    def observe(self, peer: NodeId, rtt_s: float, now: float) -> None:
        if not 0 <= rtt_s < 3600:
            return
        samples = self._samples.get(peer)
        if samples is None:
            if len(self._samples) >= self.max_peers:
                return
            samples = self._samples[peer] = deque(maxlen=self.window)
        samples.append(rtt_s)
        self._measured_at[peer] = now

    def one_way_us(self, peer: NodeId) -> int | None:
        samples = self._samples.get(peer)
        if not samples:
            return None
        return round(min(samples) / 2 * 1_000_000)

    def measured_at(self, peer: NodeId) -> float | None:
        return self._measured_at.get(peer)

    def row(self, me: NodeId) -> dict[tuple[NodeId, NodeId], int]:
        """This node's row of the latency matrix."""
        out = {}
        for peer in self._samples:
            us = self.one_way_us(peer)
            if us is not None:
                out[(me, peer)] = us
        return out

    def __len__(self) -> int:
        return len(self._samples)


# -- the component ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopologyStatistics:
    epoch: int
    nodes: int
    peers: int
    measured: int
    version: int


class Topology:
    """Keeps this node's peer set (``peers()``) up to date; the broadcast connects to it and pings it."""

    def __init__(
        self,
        config: TopologyConfig,
        node_id: NodeId,
        known: KnownNodes,
        *,
        epoch: Callable[[], int] = lambda: 0,
        latency: Latency | None = None,
    ) -> None:
        self.config = config
        self.params = TopologyParams.from_config(config)
        self.node_id = node_id
        self.known = known
        self._epoch_fn = epoch
        self._fixed_latency = latency
        self.latency = LatencyTable()
        self._epoch = -1
        self._peers: frozenset[NodeId] = frozenset()
        self._version = 0
        self._changed = trio.Event()

    def peers(self) -> frozenset[NodeId]:
        return self._peers

    @property
    def version(self) -> int:
        return self._version

    async def wait_changed(self, version: int) -> int:
        """Wait until the peer set's version is not ``version``; return the new version."""
        while self._version == version:
            await self._changed.wait()
        return self._version

    def latency_matrix(self) -> dict[tuple[NodeId, NodeId], int]:
        if self._fixed_latency is not None:
            return dict(self._fixed_latency)
        return self.latency.row(self.node_id)

    def recompute(self, epoch: int | None = None) -> bool:
        """Recompute from the current inputs; True if this node's peer set changed."""
        self._epoch = self._epoch_fn() if epoch is None else epoch
        nodes = set(self.known.nodes()) | {self.node_id}
        table = compute_topology(self._epoch, nodes, self.latency_matrix(), self.params)
        peers = table[self.node_id]
        if peers == self._peers:
            return False
        logger.info(
            "topology (epoch %d, %d nodes): %d peers (%d new)",
            self._epoch,
            len(nodes),
            len(peers),
            len(peers - self._peers),
        )
        self._peers = peers
        self._version += 1
        self._changed.set()
        self._changed = trio.Event()
        return True

    def set_epoch(self, epoch: int) -> None:
        """The epoch changed (the consensus calls this): recompute at once."""
        if epoch != self._epoch:
            self.recompute(epoch)

    def probe_targets(self, count: int) -> list[NodeId]:
        """Known nodes outside the peer set to measure next: never measured first, then the longest ago."""
        others = [k for k in self.known.nodes() if k != self.node_id and k not in self._peers]

        def age(k: NodeId) -> tuple[float, bytes]:
            at = self.latency.measured_at(k)
            return (-math.inf if at is None else at, k)

        return sorted(others, key=age)[:count]

    def statistics(self) -> TopologyStatistics:
        return TopologyStatistics(
            epoch=self._epoch,
            nodes=len(self.known.nodes()),
            peers=len(self._peers),
            measured=len(self.latency),
            version=self._version,
        )

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self.recompute()
        task_status.started()
        while True:
            await trio.sleep(self.config.recompute_interval_s)
            self.recompute()
