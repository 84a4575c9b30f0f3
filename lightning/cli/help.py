"""Plain help for ``lightning … --help``: applied to the click command tree typer builds, before it runs.

Typer labels values by their Python annotation (``{files}...``, ``<list[str]>``, ``<int range>``); here every
value gets a metavar a user reads (``FILE...``, ``URL``, ``N``), options that may be given more than once say
``(repeatable)``, and every subcommand's help ends with the global options (they are accepted anywhere on the line).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["GLOBAL_OPTIONS_EPILOG", "tidy"]

GLOBAL_OPTIONS_EPILOG = (
    "Global options, accepted anywhere on the line: -v/--verbose and -q/--quiet (repeatable: more or less logging, "
    "tracebacks with -v), --log-format text|json."
)

_TYPE_METAVARS = {"int": "N", "float": "NUM", "str": "TEXT", "path": "PATH", "file": "FILE", "dir": "DIR"}


def _metavar_for(param: Any, ctx: Any) -> str:
    """``<list[str]>`` -> ``TEXT``, ``<int range>`` -> ``N``, ``<text|json>`` -> ``text|json``."""
    label = str(param.display_type(ctx)).strip("<>")
    inner = re.fullmatch(r"list\[(.*)\]", label)
    if inner:
        label = inner.group(1)
    label = label.removesuffix(" range")
    if "|" in label:
        return label
    return _TYPE_METAVARS.get(label.lower(), label.upper())


def _tidy_argument(param: Any, ctx: Any) -> None:
    if param.metavar is None:
        param.metavar = param.name.upper()
    many = param.nargs != 1
    shown = param.metavar + ("..." if many else "")
    usage = shown if param.required else f"[{shown}]"
    # per instance: typer draws these from the annotation
    param._usage_display_name = lambda: usage
    param._rich_display_name = lambda: shown
    param.display_type_rich = lambda ctx: None


def _tidy_option(param: Any, ctx: Any) -> None:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        if getattr(param, "count", False) and "repeatable" not in (param.help or ""):
            param.help = f"{param.help or ''} (repeatable)".strip()
        return
    if param.metavar is None:
        param.metavar = _metavar_for(param, ctx)
    if getattr(param, "multiple", False) and "repeatable" not in (param.help or ""):
        param.help = f"{(param.help or '').rstrip()} (repeatable)".strip()


def tidy(command: Any, *, root: bool = True) -> Any:
    """Give ``command`` (typer's click command for the app) and every subcommand readable help. Returns it."""
    from typer.core import TyperArgument, TyperOption

    ctx = None  # display_type only needs a context for choices shown case-insensitively; none of ours are
    for param in command.params:
        if isinstance(param, TyperArgument):
            _tidy_argument(param, ctx)
        elif isinstance(param, TyperOption):
            _tidy_option(param, ctx)
    if not root and not command.epilog:
        command.epilog = GLOBAL_OPTIONS_EPILOG
    for sub in getattr(command, "commands", {}).values():
        tidy(sub, root=False)
    return command
