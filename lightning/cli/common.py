"""What every ``lightning`` command shares: the ``--home``/``--dev`` options and how they find a home, the running
node's RPC URL, and FLK amounts in and out of the CLI.

Home resolution (every command that takes ``--home``): ``--home DIR``, else ``LIGHTNING_HOME``, else
``~/.lightning-dev`` with ``--dev``, else ``~/.lightning``. A command that needs an existing home and finds none says
which home it looked at and how to get one; when it looked at ``~/.lightning`` and a dev home exists, it says so.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import urllib.parse
from pathlib import Path
from typing import Annotated

import typer

from lightning.amounts import AmountError, format_flk, parse_flk
from lightning.config import Config
from lightning.home import Home, HomeError, default_home

__all__ = [
    "DevOpt",
    "HomeOpt",
    "RpcOpt",
    "check_rpc_url",
    "flk",
    "flk_in_text",
    "node_rpc_url",
    "parse_amount",
    "resolve_home",
    "taken_ports_hint",
]

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="LIGHTNING_HOME",
        metavar="DIR",
        help="Node home directory [default: ~/.lightning; ~/.lightning-dev with --dev]",
        show_default=False,
    ),
]


def check_rpc_url(value: str | None) -> str | None:
    """``--rpc``: an ``http(s)://host[:port]/path`` URL (a bare ``host:port`` gets ``http://`` and ``/rpc/v0``)."""
    if value is None:
        return None
    text = value.strip()
    if "://" not in text:
        text = f"http://{text}/rpc/v0"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise typer.BadParameter(f"{value!r} is not a node RPC URL: expected http://HOST:PORT/rpc/v0")
    return text


RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc",
        metavar="URL",
        help="Node RPC URL [default: the home's running node]",
        show_default=False,
        callback=check_rpc_url,
    ),
]
DevOpt = Annotated[
    bool, typer.Option("--dev", help="Use the dev node's home (~/.lightning-dev, as `lightning run --dev`).")
]


def _tilde(path: Path) -> str:
    """``~/.lightning`` rather than ``/home/me/.lightning`` in hints the user will type."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _dev_home_if_other(h: Home, dev: bool, explicit: bool) -> Home | None:
    """The default dev home, if the user did not choose a home, did not say ``--dev``, and one exists."""
    if dev or explicit or os.environ.get("LIGHTNING_HOME"):
        return None
    other = Home(default_home(True).absolute())
    return other if other.root != h.root and other.exists() else None


def resolve_home(path: Path | None, dev: bool = False, *, must_exist: bool = True) -> Home:
    """The home a command works on. With ``must_exist``, raise :class:`HomeError` (naming the home looked at, and
    a dev home that exists when the default one does not) unless it has a config."""
    h = Home((path.expanduser() if path else default_home(dev)).absolute())
    if not must_exist or h.exists():
        return h
    other = _dev_home_if_other(h, dev, path is not None)
    if other is not None:
        raise HomeError(
            f"{_tilde(h.root)} does not exist, but the dev home {_tilde(other.root)} does: add --dev "
            "(or pass --home DIR)"
        )
    if dev:
        raise HomeError(f"{h.root}: no dev home yet; `lightning run --dev` creates it and starts the dev node")
    raise HomeError(
        f"{h.root}: not a node home (no config.toml); create one with `lightning init --home {_tilde(h.root)}`, "
        "or use the dev node's home with --dev"
    )


def node_rpc_url(h: Home, rpc: str | None = None, *, dev: bool = False, explicit_home: bool = False) -> str:
    """The JSON-RPC URL of the node running on ``h`` (from its ``run/ports.json``), or ``rpc`` if given.

    Raises :class:`HomeError` when no node runs there, naming a running dev node if there is one."""
    if rpc is not None:
        return rpc
    ports = h.read_ports()
    if ports is not None:
        return f"http://{ports['rpc']}/rpc/v0"
    start = "lightning run --dev" if dev else f"lightning run{'' if not explicit_home else f' --home {h.root}'}"
    other = _dev_home_if_other(h, dev, explicit_home)
    if other is not None and other.read_ports() is not None:
        raise HomeError(
            f"no node is running on {_tilde(h.root)}, but the dev node is ({_tilde(other.root)}): add --dev"
        )
    raise HomeError(f"no node is running on {h.root} (no {h.ports_path}); start it with `{start}`, or pass --rpc URL")


def taken_ports_hint(config: Config | None, command: str) -> str:
    """After a bind failed: which of the node's fixed ports are taken on this machine, and the command line that
    runs it beside whatever holds them (``--http-port 0 …``: any free port). Empty if none is taken (any more)."""
    if config is None:
        return ""
    checks = (
        ("--http-port", config.node.listen_host, config.http.port, socket.SOCK_STREAM, "tcp"),
        ("--rpc-port", config.node.rpc_host, config.rpc.port, socket.SOCK_STREAM, "tcp"),
        ("--quic-port", config.node.listen_host, config.net.port, socket.SOCK_DGRAM, "udp"),
    )
    taken = []
    for option, host, port, kind, proto in checks:
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the node's listener does
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    taken.append((option, f"{port}/{proto}"))
    if not taken:
        return ""
    ports = ", ".join(where for _, where in taken)
    flags = " ".join(f"{option} 0" for option, _ in taken)
    return f"taken here: {ports}; to run beside it: `{command} {flags}` (0 = any free port)"


# -- FLK amounts ---------------------------------------------------------------------------------------------------
def parse_amount(text: str, *, name: str = "AMOUNT") -> int:
    """A positive FLK amount (``12.5``, ``100 FLK``) in base units; a malformed one is a usage error (exit 2)."""
    s = text.strip()
    if s.upper().endswith("FLK"):
        s = s[:-3].strip()
    try:
        units = parse_flk(s)
    except AmountError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None
    if units == 0:
        raise typer.BadParameter(f"{text!r}: must be more than 0 FLK", param_hint=name)
    return units


def flk(units: str | int) -> str:
    """``1000000000000000000`` -> ``1 FLK``."""
    return f"{format_flk(int(units))} FLK"


# An integer of 13+ digits that is not part of a word, a decimal or a hex string, nor a time in ms: in a message
# from the state machine that is an amount in base units (0.00001 FLK and up).
_BASE_UNITS = re.compile(r"(?<![\w.])(\d{13,})(?![\w.])(?! ms)")
# A smaller one where the state machine's reasons put an amount: "has 5, needs 7", "got 0 this epoch", "has 9 staked"
_AMOUNT_WORDS = re.compile(r"\b(got|has|needs|unstake) (\d{1,12})(?=,|;| this epoch| staked|$)")


def flk_in_text(text: str) -> str:
    """Rewrite amounts in base units inside a message (a revert reason) as FLK: ``the cap is 1000000000000000000000
    per epoch`` -> ``the cap is 1000 FLK per epoch``."""
    text = _BASE_UNITS.sub(lambda m: flk(int(m.group(1))), text)
    return _AMOUNT_WORDS.sub(lambda m: f"{m.group(1)} {flk(int(m.group(2)))}", text)
