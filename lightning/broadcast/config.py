"""Config of broadcast, the gossip of signed topic messages (``[broadcast]``). Stdlib only: see
:mod:`lightning.config_fields`."""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning.config_fields import doc, non_negative, positive

__all__ = ["BroadcastConfig"]


def _check_payload(v: int) -> str | None:
    return None if 0 < v <= 3 * 1024 * 1024 else "must be between 1 and 3145728 (a message must fit a 4 MiB frame)"


@dataclass(frozen=True)
class BroadcastConfig:
    """Gossip of signed topic messages (docs/broadcast.md)."""

    max_payload_bytes: int = field(
        default=1024 * 1024, metadata=doc("largest message payload; larger ones are dropped", _check_payload)
    )
    max_age_s: float = field(
        default=300.0,
        metadata=doc("messages timestamped longer ago than this are dropped (the dedup cache covers it)", positive),
    )
    max_skew_s: float = field(
        default=30.0, metadata=doc("messages timestamped further ahead of our clock are dropped", positive)
    )
    future_epochs: int = field(
        default=1, metadata=doc("messages at most this many epochs ahead of ours are accepted", non_negative)
    )
    seen_cache_entries: int = field(
        default=100_000, metadata=doc("message digests remembered (in memory and in LMDB) at most", positive)
    )
    want_timeout_s: float = field(
        default=2.0, metadata=doc("a wanted message not sent within this is asked of the next advertiser", positive)
    )
    want_queue_len: int = field(
        default=8192, metadata=doc("advertised messages being fetched at once; more adverts are ignored", positive)
    )
    retain_s: float = field(
        default=60.0, metadata=doc("relayed messages are kept this long to answer peers' wants", positive)
    )
    retain_bytes: int = field(
        default=64 * 1024 * 1024, metadata=doc("bytes of relayed messages kept at most", positive)
    )
    subscriber_buffer: int = field(
        default=1024, metadata=doc("messages waiting for a topic's subscriber; more are dropped", positive)
    )
    validation_timeout_s: float = field(
        default=60.0, metadata=doc("a message its subscriber has not judged by then is dropped unrelayed", positive)
    )
    send_queue_len: int = field(
        default=1024, metadata=doc("frames queued for one peer; more are dropped (and re-advertised)", positive)
    )
    ping_interval_s: float = field(
        default=15.0, metadata=doc("peers are pinged (latency, liveness) this often", positive)
    )
    max_inbound_peers: int = field(
        default=64, metadata=doc("peers outside our topology that we also advertise to at most", non_negative)
    )
    map_size_bytes: int = field(
        default=1024**3, metadata=doc("LMDB map size of the dedup cache (sparse file)", positive)
    )
