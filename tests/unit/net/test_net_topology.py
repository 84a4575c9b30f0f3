"""The topology function (properties, with hypothesis), the latency table and the component."""

from __future__ import annotations

import math
import random

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning.ids import NodeId
from lightning.net.config import TopologyConfig
from lightning.net.topology import (
    GenesisNodes,
    LatencyTable,
    Topology,
    TopologyParams,
    compute_topology,
    diameter,
    max_degree,
)


def keys(n: int, seed: int) -> list[NodeId]:
    rng = random.Random(seed)
    return [NodeId(rng.randbytes(32)) for _ in range(n)]


def random_latency(nodes: list[NodeId], seed: int, share: float) -> dict[tuple[NodeId, NodeId], int]:
    rng = random.Random(seed)
    return {(a, b): rng.randrange(100, 300_000) for a in nodes for b in nodes if a != b and rng.random() < share}


params_st = st.builds(
    TopologyParams,
    full_mesh_max=st.integers(1, 16),
    cluster_size=st.integers(1, 12),
    long_cycles=st.integers(1, 3),
)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 120),
    seed=st.integers(0, 2**32),
    share=st.sampled_from([0.0, 0.1, 1.0]),
    epoch=st.integers(0, 1000),
    params=params_st,
)
def test_symmetric_bounded_connected_small(n: int, seed: int, share: float, epoch: int, params: TopologyParams) -> None:
    nodes = keys(n, seed)
    peers = compute_topology(epoch, nodes, random_latency(nodes, seed, share), params)
    assert set(peers) == set(nodes)
    for a, ps in peers.items():
        assert a not in ps
        assert all(a in peers[b] for b in ps)
    assert max_degree(peers) <= params.degree_bound
    d = diameter(peers)
    assert d is not None, f"disconnected (seed {seed})"
    if n <= params.full_mesh_max:
        assert all(len(ps) == n - 1 for ps in peers.values())
    elif params.long_cycles >= 2:  # one cycle alone is a ring (diameter n/2); two make an expander
        assert d <= 2 * math.ceil(math.log2(n)), f"diameter {d} for {n} nodes (seed {seed})"


@settings(max_examples=30, deadline=None)
@given(n=st.integers(13, 80), seed=st.integers(0, 2**32), epoch=st.integers(0, 10))
def test_pure_and_order_independent(n: int, seed: int, epoch: int) -> None:
    nodes = keys(n, seed)
    latency = random_latency(nodes, seed, 0.5)
    a = compute_topology(epoch, nodes, latency)
    shuffled = list(nodes)
    random.Random(seed + 1).shuffle(shuffled)
    b = compute_topology(epoch, reversed(shuffled), dict(reversed(list(latency.items()))))
    assert a == b
    # Another epoch draws other long links.
    assert compute_topology(epoch + 1, nodes, latency) != a


@settings(max_examples=25, deadline=None)
@given(regions=st.integers(2, 8), seed=st.integers(0, 2**32))
def test_clusters_follow_latency(regions: int, seed: int) -> None:
    """Regions of ``cluster_size`` nodes, near inside (≤ 5 ms), far apart (≥ 40 ms): every node's cluster is its
    region, so it links to all of its region and to at most ``2 * long_cycles`` nodes elsewhere."""
    params = TopologyParams(full_mesh_max=4, cluster_size=6, long_cycles=2)
    rng = random.Random(seed)
    nodes = keys(regions * params.cluster_size, seed)
    region = {k: i // params.cluster_size for i, k in enumerate(nodes)}
    latency = {
        (a, b): rng.randrange(100, 5_000) if region[a] == region[b] else rng.randrange(40_000, 200_000)
        for a in nodes
        for b in nodes
        if a != b
    }
    peers = compute_topology(3, nodes, latency, params)
    for a, ps in peers.items():
        mates = {b for b in nodes if region[b] == region[a] and b != a}
        assert mates <= ps
        assert len(ps - mates) <= 2 * params.long_cycles


latency_value = st.one_of(st.integers(-5, 400_000), st.just(0))


@st.composite
def topology_inputs(draw: st.DrawFn) -> tuple[list[NodeId], dict[tuple[NodeId, NodeId], int], TopologyParams]:
    """Any node set (with repeats), any partial and asymmetric latency matrix (negative values included), any
    parameters."""
    n = draw(st.integers(1, 60))
    nodes = keys(n, draw(st.integers(0, 2**32)))
    pairs = [(a, b) for a in nodes for b in nodes if a != b]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=200)) if pairs else []
    latency = {pair: draw(latency_value) for pair in chosen}
    repeats = draw(st.lists(st.sampled_from(nodes), max_size=5))
    return nodes + repeats, latency, draw(params_st)


@settings(max_examples=80, deadline=None)
@given(inputs=topology_inputs(), epoch=st.integers(0, 2**32), data=st.data())
def test_any_input_order_gives_the_same_topology(
    inputs: tuple[list[NodeId], dict[tuple[NodeId, NodeId], int], TopologyParams], epoch: int, data: st.DataObject
) -> None:
    """Every node computes the peer sets from its own copy of the inputs: node order, repeats and the order of the
    latency entries must not matter, nor which direction of a pair was measured when both give the same value."""
    nodes, latency, params = inputs
    expected = compute_topology(epoch, nodes, latency, params)
    shuffled_nodes = data.draw(st.permutations(nodes))
    shuffled_latency = dict(data.draw(st.permutations(list(latency.items()))))
    assert compute_topology(epoch, iter(shuffled_nodes), shuffled_latency, params) == expected
    assert compute_topology(epoch, set(nodes), latency, params) == expected
    # Latencies are made symmetric with the smaller direction: giving that value both ways changes nothing.
    symmetric = dict(latency)
    for (a, b), v in latency.items():
        known = [x for x in (v, latency.get((b, a))) if x is not None and x >= 0]
        if known:
            symmetric[(a, b)] = symmetric[(b, a)] = min(known)
    assert compute_topology(epoch, nodes, symmetric, params) == expected


@settings(max_examples=80, deadline=None)
@given(inputs=topology_inputs(), epoch=st.integers(0, 1000))
def test_symmetric_without_self_links_and_bounded_for_any_input(
    inputs: tuple[list[NodeId], dict[tuple[NodeId, NodeId], int], TopologyParams], epoch: int
) -> None:
    nodes, latency, params = inputs
    peers = compute_topology(epoch, nodes, latency, params)
    assert set(peers) == set(nodes)
    for a, ps in peers.items():
        assert a not in ps and ps <= set(nodes)
        assert all(a in peers[b] for b in ps)
    n = len(set(nodes))
    if n > params.full_mesh_max:  # beyond the full mesh the bound no longer depends on full_mesh_max
        assert max_degree(peers) <= params.cluster_size - 1 + 2 * params.long_cycles
    else:
        assert all(len(ps) == n - 1 for ps in peers.values())
    assert diameter(peers) is not None


@settings(max_examples=50, deadline=None)
@given(inputs=topology_inputs(), epoch=st.integers(0, 1000), seed=st.integers(0, 2**32))
def test_long_links_ignore_latency(
    inputs: tuple[list[NodeId], dict[tuple[NodeId, NodeId], int], TopologyParams], epoch: int, seed: int
) -> None:
    """The long cycles depend on (epoch, node set) only: nodes with different latency views agree on them. With
    clusters of one node, only the cycles are left; every other choice of latencies and cluster size adds to
    them."""
    nodes, latency, params = inputs
    if len(set(nodes)) <= params.full_mesh_max:
        return
    cycles_only = TopologyParams(params.full_mesh_max, 1, params.long_cycles)
    long_links = compute_topology(epoch, nodes, {}, cycles_only)
    assert compute_topology(epoch, nodes, latency, cycles_only) == long_links
    assert all(len(ps) <= 2 * params.long_cycles for ps in long_links.values())
    other_view = random_latency(sorted(set(nodes)), seed, 0.3)
    for view in (latency, other_view):
        peers = compute_topology(epoch, nodes, view, params)
        assert all(long_links[a] <= peers[a] for a in peers)


def test_only_own_measurements_still_give_a_connected_bounded_overlay() -> None:
    """Before latencies are shared, each node knows only its own row: the views differ, the union of everyone's
    choice stays connected and each node's own choice stays bounded."""
    nodes = keys(64, 1)
    rng = random.Random(2)
    full = {(a, b): rng.randrange(1000, 100_000) for a in nodes for b in nodes if a != b}
    union: dict[NodeId, set[NodeId]] = {k: set() for k in nodes}
    for me in nodes:
        mine = compute_topology(0, nodes, {k: v for k, v in full.items() if k[0] == me})[me]
        assert len(mine) <= TopologyParams().degree_bound
        for p in mine:
            union[me].add(p)
            union[p].add(me)
    assert diameter({k: frozenset(v) for k, v in union.items()}) is not None


def test_latency_table_keeps_the_minimum_of_recent_samples() -> None:
    table = LatencyTable(window=3)
    me, a, b = keys(3, 5)
    for rtt in (0.1, 0.02, 0.5):
        table.observe(a, rtt, now=1.0)
    assert table.one_way_us(a) == 10_000 and table.one_way_us(b) is None
    for rtt in (0.3, 0.3, 0.3):  # the 20 ms sample leaves the window
        table.observe(a, rtt, now=2.0)
    assert table.row(me) == {(me, a): 150_000} and table.measured_at(a) == 2.0
    table.observe(b, -1.0, now=3.0)
    assert len(table) == 1


@pytest.mark.parametrize("n", [5, 40])
async def test_component_recomputes_and_probes(autojump_clock: trio.testing.MockClock, n: int) -> None:
    nodes = keys(n, 9)
    me = nodes[0]
    topo = Topology(TopologyConfig(recompute_interval_s=10.0), me, GenesisNodes(nodes))
    async with trio.open_nursery() as nursery:
        await nursery.start(topo.run)
        assert topo.version == 1 and topo.peers() == compute_topology(0, nodes, {})[me]
        outside = set(nodes) - topo.peers() - {me}
        assert set(topo.probe_targets(100)) == outside
        if outside:
            probe = topo.probe_targets(1)[0]
            topo.latency.observe(probe, 0.001, trio.current_time())
            assert topo.probe_targets(len(outside))[-1] == probe  # measured: last in line
        # Measurements flow in; the periodic recompute uses them (and may change the peer set).
        for k in nodes[1:]:
            topo.latency.observe(k, 0.001 if k in outside else 0.2, trio.current_time())
        await trio.sleep(10.5)
        expected = compute_topology(0, nodes, topo.latency.row(me))[me]
        assert topo.peers() == expected
        topo.set_epoch(5)
        assert topo.statistics().epoch == 5 and topo.peers() == compute_topology(5, nodes, topo.latency.row(me))[me]
        nursery.cancel_scope.cancel()
