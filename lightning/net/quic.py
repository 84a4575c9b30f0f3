"""The production pool: :class:`PeerPool` over the QUIC endpoint."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry

from lightning.crypto import SigningKey
from lightning.net.admission import AddressBook, Admission
from lightning.net.config import NetConfig
from lightning.net.endpoint import QuicEndpoint
from lightning.net.identity import TlsIdentity
from lightning.net.metrics import NetMetrics
from lightning.net.pool import PeerPool

__all__ = ["QuicPool"]


class QuicPool(PeerPool):
    """One UDP socket on ``host:config.port``; peers are dialed at the addresses in ``addresses``."""

    def __init__(
        self,
        config: NetConfig,
        node_key: SigningKey,
        *,
        host: str,
        admission: Admission,
        addresses: AddressBook | None = None,
        registry: CollectorRegistry | None = None,
        identity: TlsIdentity | None = None,
    ) -> None:
        self.endpoint = QuicEndpoint(config, node_key, host=host, identity=identity)
        super().__init__(
            config,
            self.endpoint,
            admission=admission,
            addresses=addresses,
            metrics=NetMetrics(registry),
            rng=random.Random(),
        )
