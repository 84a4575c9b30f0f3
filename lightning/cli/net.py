"""``lightning dev fetch``: ask the running node to fetch an object from a peer (registered on ``dev_app``).

The node does the fetch over its own QUIC pool (admin RPC ``admin_fetch``), so no second endpoint with the node's
key is ever opened; ``-o`` then copies the verified object out of the home's blockstore.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lightning.blockstore.store import BlockStore
from lightning.cli.dev import dev_app
from lightning.config import load_config
from lightning.home import Home, HomeError, default_home

__all__ = ["fetch"]

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", envvar="LIGHTNING_HOME", help="Node home directory [default: ~/.lightning]", show_default=False
    ),
]


@dev_app.command("fetch")
def fetch(
    root: Annotated[str, typer.Argument(help="Object root (hex).")],
    peer: Annotated[
        list[str] | None,
        typer.Option(
            "--peer", help="NODE_ID@HOST:PORT to fetch from; repeat to try several in order [default: known peers]."
        ),
    ] = None,
    home: HomeOpt = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Then write the object here.")] = None,
    pin: Annotated[bool, typer.Option("--pin", help="Never evict the fetched object.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the node.")] = 600.0,
) -> None:
    """Fetch an object from a peer into the running node's blockstore, verifying every block."""
    from lightning.cli.main import rpc_call  # main imports this module

    h = Home((home.expanduser() if home else default_home()).absolute())
    ports = h.read_ports()
    if ports is None:
        raise HomeError(f"no node is running on {h.root} (no {h.ports_path}); start one with `lightning run`")
    result = rpc_call(
        f"http://{ports['rpc']}/rpc/v0", "admin_fetch", {"root": root, "peer": peer, "pin": pin}, timeout_s=timeout
    )
    source = result["peer"] or "the local store (already there)"
    typer.echo(f"{result['root']}  {result['length']} bytes from {source}")
    if output is None:
        return
    config = load_config(h.config_path)
    partial = output.with_name(f".{output.name}.partial")
    try:
        with BlockStore(h.data / "blockstore", map_size=config.blockstore.map_size_bytes) as store:
            with open(partial, "wb") as f:
                for chunk in store.read_range(bytes.fromhex(result["root"])):
                    f.write(chunk)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
