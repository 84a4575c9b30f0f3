"""Client-facing services on the client endpoint: 0 = content retrieval, 1 = video streaming."""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.services.content import *  # noqa: F403
    from lightning.services.serve import *  # noqa: F403
    from lightning.services.video import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
