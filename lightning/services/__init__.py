"""Client-facing services on the client endpoint: 0 = content retrieval, 1 = video streaming (later)."""

from lightning.services.content import ContentService, ServiceMetrics

__all__ = ["ContentService", "ServiceMetrics"]
