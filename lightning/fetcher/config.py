"""Config of the fetcher (``[fetcher]``) and of its origins (``[origin_ipfs]``, ``[origin_url]``). Stdlib only: see
:mod:`lightning.config_fields`."""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning.config_fields import doc, positive

__all__ = ["FetcherConfig", "OriginIpfsConfig", "OriginUrlConfig"]


@dataclass(frozen=True)
class FetcherConfig:
    max_concurrent: int = field(default=8, metadata=doc("downloads running at once", positive))
    max_queued: int = field(
        default=256, metadata=doc("downloads waiting for a slot; beyond it clients get 503", positive)
    )
    first_byte_timeout_s: float = field(
        default=15.0, metadata=doc("a source must send its first verified byte within this", positive)
    )
    idle_timeout_s: float = field(
        default=30.0, metadata=doc("a source that sends nothing for this long is abandoned", positive)
    )
    spool_max_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=doc("bytes of an in-flight download buffered between its slowest client and the source", positive),
    )


@dataclass(frozen=True)
class OriginIpfsConfig:
    gateways: list[str] = field(
        default_factory=list,
        metadata=doc('trustless IPFS gateways, tried in order, e.g. ["https://trustless-gateway.link"]'),
    )
    request_timeout_s: float = field(default=60.0, metadata=doc("whole-request timeout per gateway", positive))


@dataclass(frozen=True)
class OriginUrlConfig:
    enabled: bool = field(
        default=False, metadata=doc("serve /services/0/url/<url#integrity=…> (the node fetches URLs clients name)")
    )
    allow_private_addresses: bool = field(
        default=False, metadata=doc("allow URLs on loopback, private and link-local addresses (tests, labs)")
    )
    max_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=doc("largest body a URL origin may return (it is held in memory)", positive),
    )
