"""Package faces that re-export their modules' ``__all__`` and import a module only when one of its names is used
(PEP 562), so that importing one sans-IO module of a package never loads the package's trio, QUIC or LMDB parts, and
no package repeats its modules' export lists.

Usage in a package ``__init__.py`` (each module named once: type checkers read the star imports, and at run time
:func:`lazy_exports` reads the same lines from the package's source)::

    if TYPE_CHECKING:
        from lightning.net.errors import *  # noqa: F403
        from lightning.net.pool import *  # noqa: F403
    else:
        __getattr__, __dir__ = lazy_exports(__name__)

Which module defines a name is read from the modules' literal ``__all__`` lists (scanned, not imported), once, on the
first lookup; ``__all__`` of the package is their concatenation. A module listed here must define ``__all__`` as a
literal list and no two of them may export the same name (both checked, raising ImportError naming the module).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"{module}: not found")
    with open(spec.origin, encoding="utf-8") as f:
        return f.read()


# Text scans, not ast.parse: a node reads every face at start-up, and parsing ~50 modules cost ~0.1 s of it.
_ALL = re.compile(r"^__all__\s*=\s*(\[[^\]]*\])", re.MULTILINE)
_STAR = re.compile(r"^\s+from\s+([\w.]+)\s+import\s+\*", re.MULTILINE)


def _exports_of(module: str) -> list[str]:
    found = _ALL.search(_source(module))
    value = ast.literal_eval(found.group(1)) if found else None
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise ImportError(f"{module}: a package face re-exports it, so it needs a literal __all__ list")
    return value


def _star_imports(package: str) -> list[str]:
    """The submodules a face star-imports under ``if TYPE_CHECKING:``, in order."""
    prefix = package + "."
    return [m[len(prefix) :] for m in _STAR.findall(_source(package)) if m.startswith(prefix)]


def lazy_exports(
    package: str, modules: Sequence[str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``modules``: submodule names relative to ``package`` (default: those the face star-imports). Returns the
    package's ``__getattr__`` and ``__dir__``."""
    where: dict[str, str] = {}

    def table() -> dict[str, str]:
        if not where:
            for module in modules if modules is not None else _star_imports(package):
                for name in _exports_of(f"{package}.{module}"):
                    if name in where:
                        raise ImportError(f"{package}: {name!r} is exported by both {where[name]} and {module}")
                    where[name] = module
        return where

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            return list(table())
        module = table().get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        importlib.import_module(package).__dict__[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*importlib.import_module(package).__dict__, *table()})

    return __getattr__, __dir__
