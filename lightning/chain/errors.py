"""The root of the errors of what drives the state machine inside a node, so a caller can catch them as one family.

Each error lives beside the code that raises it::

    ChainError
    ├── TxRejected        mempool_core.py   the mempool refuses a transaction; ``code`` is a stable identifier
    ├── ForwardError      forward.py        a transaction could not be handed to the ordering node
    └── BlockSourceError  forward.py        committed blocks could not be fetched, or the peer sent malformed ones

The state machine's own errors (a malformed block, an invalid one, a full store …) are ``lightning.state``'s
``StateError`` family; the :class:`~lightning.chain.component.State` component passes them through.
"""

from __future__ import annotations

from lightning.errors import LightningError

__all__ = ["ChainError"]


class ChainError(LightningError):
    """Root of the chain package's errors."""
