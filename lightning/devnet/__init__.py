"""Local multi-node networks for developers: generated genesis and homes, a cluster supervisor."""

from lightning.devnet.genesis import ClusterLayout, NodeLayout, make_cluster

__all__ = ["ClusterLayout", "NodeLayout", "make_cluster"]
