"""Catch-up: committed blocks with their commit proofs, served and fetched over the pool's sync scope
(``blocks.py``). Edge nodes follow the chain through it (``lightning.state.Follower`` with a
:class:`PoolBlockSource`); committee members that lag fetch from it too. Checkpoints will join it later."""

from lightning.sync.blocks import MAX_BLOCKS, PoolBlockSource, SyncServer

__all__ = ["MAX_BLOCKS", "PoolBlockSource", "SyncServer"]
