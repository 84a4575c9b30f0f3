"""Broadcast metrics: messages per topic and direction, duplicates suppressed, invalid messages by reason, strikes,
local drops, the propagation delay and hop count of arriving messages, and the dedup cache's size."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from lightning.broadcast.core import CoreStatistics

__all__ = ["BroadcastMetrics"]

DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HOP_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32)


class BroadcastMetrics:
    """One per broadcast component. Counters are read from the core's statistics at scrape time (so they can never
    drift from what ``flk_broadcast_stats`` reports); histograms are observed as messages arrive."""

    def __init__(
        self, registry: CollectorRegistry | None, stats: Callable[[], tuple[CoreStatistics, dict[str, int], int]]
    ):
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.delay = Histogram(
            "lightning_broadcast_propagation_seconds",
            "From a message's origin timestamp to its arrival here, per topic",
            ["topic"],
            buckets=DELAY_BUCKETS,
            registry=self.registry,
        )
        self.hops = Histogram(
            "lightning_broadcast_hops",
            "Links a message crossed from its origin to here",
            buckets=HOP_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StatsCollector(stats))


class _StatsCollector(Collector):
    def __init__(self, stats: Callable[[], tuple[CoreStatistics, dict[str, int], int]]) -> None:
        self._stats = stats

    def describe(self) -> list[CounterMetricFamily | GaugeMetricFamily]:
        return []  # unchecked: the names are unique to this module

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        core, local, seen = self._stats()
        messages = CounterMetricFamily(
            "lightning_broadcast_messages",
            "Messages per topic: in = new valid ones from peers, out = payloads sent to peers, published = ours",
            labels=["topic", "direction"],
        )
        for direction, table in (("in", core.received), ("out", core.payloads_sent), ("published", core.published)):
            for topic, n in sorted(table.items()):
                messages.add_metric([topic, direction], n)
        yield messages
        dup = CounterMetricFamily(
            "lightning_broadcast_duplicates", "Adverts and payloads of messages already seen", labels=["kind"]
        )
        dup.add_metric(["advert"], core.duplicate_adverts)
        dup.add_metric(["payload"], core.duplicate_payloads)
        yield dup
        invalid = CounterMetricFamily(
            "lightning_broadcast_invalid", "Messages and frames from peers dropped, by reason", labels=["reason"]
        )
        for reason, n in sorted(core.invalid.items()):
            invalid.add_metric([reason], n)
        yield invalid
        dropped = CounterMetricFamily(
            "lightning_broadcast_dropped",
            "Work dropped locally (subscriber buffer or send queue full, want queue full, timeouts), by reason",
            labels=["reason"],
        )
        for reason, n in sorted(
            {
                **local,
                "want_queue_full": core.want_queue_full,
                "want_timeout": core.want_timeouts,
                "want_expired": core.wants_expired,
                "validation_timeout": core.validation_timeouts,
            }.items()
        ):
            dropped.add_metric([reason], n)
        yield dropped
        yield CounterMetricFamily(
            "lightning_broadcast_strikes", "Strikes against peers (each one a pool penalty)", value=core.strikes
        )
        yield GaugeMetricFamily("lightning_broadcast_seen_digests", "Digests in the dedup cache", value=seen)
