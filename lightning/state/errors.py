"""The root of the state machine's errors, so that a caller can catch the package's failures as one family.

Each error lives beside the rule it reports::

    StateError                          the store refuses (another genesis, no genesis yet, an unknown table)
    ├── StateFull        store.py       the LMDB map or the disk is full; the block was not applied
    ├── StateCorrupt     records.py     a stored row does not decode as its table's type
    ├── TxMalformed      schema.py      bytes that are not a well-formed signed transaction
    ├── BlockMalformed   block.py       bytes that are not a well-formed block or commit proof
    ├── InvalidBlock     executor.py    a block that does not extend the head or breaks a block rule
    └── StateProofError  smt.py         a state proof that does not verify against the given root

A malformed transaction inside a block is not an error of the block: the executor records it as an ``invalid``
receipt. ``Revert`` (method.py) is control flow inside the executor and never escapes it.
"""

from __future__ import annotations

from lightning.errors import LightningError

__all__ = ["StateError"]


class StateError(LightningError):
    """Root of the state machine's errors."""
