"""Between nodes, only the pool. Catch-up: committed blocks with their commit proofs, served and fetched over the
pool's sync scope (``blocks.py``). Edge nodes follow the chain over broadcast (``gossip.py``: :class:`BlockGossip`) and
fall back to the sync scope (``lightning.chain.Follower`` with a :class:`PoolBlockSource`) for gaps and late starts;
committee members that lag fetch from it too. Client transactions travel towards the committee over the TXS scope
(``txs.py``: :class:`PoolForwarder`, :class:`TxServer`)."""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.sync.blocks import *  # noqa: F403
    from lightning.sync.gossip import *  # noqa: F403
    from lightning.sync.txs import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
