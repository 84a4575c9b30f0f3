"""Client-facing services on the client endpoint: 0 = content retrieval, 1 = video streaming."""

from lightning.services.content import ContentService, parse_target
from lightning.services.serve import ObjectServer, ServiceMetrics, Target
from lightning.services.video import VideoService, parse_playlist

__all__ = [
    "ContentService",
    "ObjectServer",
    "ServiceMetrics",
    "Target",
    "VideoService",
    "parse_playlist",
    "parse_target",
]
