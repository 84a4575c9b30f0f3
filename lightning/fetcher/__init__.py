"""Getting content that is not local: from peers that hold it, then from origins (IPFS gateways …)."""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.fetcher.fetcher import *  # noqa: F403
    from lightning.fetcher.spool import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
