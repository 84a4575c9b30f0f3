"""BFT consensus among the epoch's committee: a sans-IO two-round HotStuff-family core (``core.py``), its messages and
certificates (``messages.py``), persisted safety state (``safety.py``), a deterministic simulator (``sim.py``) and
the trio adapter over the pool's consensus scope (``service.py``). See docs/consensus.md."""

from typing import TYPE_CHECKING

from lightning._lazy import lazy_exports

if TYPE_CHECKING:
    from lightning.consensus.core import *  # noqa: F403
    from lightning.consensus.messages import *  # noqa: F403
    from lightning.consensus.safety import *  # noqa: F403
else:  # at run time a name's module loads on first use
    __getattr__, __dir__ = lazy_exports(__name__)
