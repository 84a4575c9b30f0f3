"""Catch-up: committed blocks with their commit proofs, served and fetched over the pool's sync scope
(``blocks.py``). Edge nodes follow the chain over broadcast (``gossip.py``: :class:`BlockGossip`) and fall back to
the sync scope (``lightning.chain.Follower`` with a :class:`PoolBlockSource`) for gaps and late starts; committee
members that lag fetch from it too."""

from lightning.sync.blocks import MAX_BLOCKS, PoolBlockSource, SyncServer
from lightning.sync.gossip import BlockGossip, GossipStatistics, encode_block_message

__all__ = ["MAX_BLOCKS", "BlockGossip", "GossipStatistics", "PoolBlockSource", "SyncServer", "encode_block_message"]
