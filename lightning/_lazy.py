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

Which module defines a name is read from the modules' literal ``__all__`` lists (parsed, not imported), once, on the
first lookup; ``__all__`` of the package is their concatenation. A module listed here must define ``__all__`` as a
literal list and no two of them may export the same name (both checked, raising ImportError naming the module).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def _source(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"{module}: not found")
    with open(spec.origin, encoding="utf-8") as f:
        return ast.parse(f.read(), spec.origin)


def _exports_of(module: str) -> list[str]:
    tree = _source(module)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, list | tuple) and all(isinstance(n, str) for n in value):
                return list(value)
    raise ImportError(f"{module}: a package face re-exports it, so it needs a literal __all__ list")


def _star_imports(package: str) -> list[str]:
    """The submodules a face star-imports under ``if TYPE_CHECKING:``, in order."""
    tree = _source(package)
    prefix = package + "."
    return [
        node.module[len(prefix) :]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module is not None
        and node.module.startswith(prefix)
        and [a.name for a in node.names] == ["*"]
    ]


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
