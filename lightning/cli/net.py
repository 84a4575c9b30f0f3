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
from lightning.cli.common import DevOpt, HomeOpt, node_rpc_url, resolve_home
from lightning.cli.dev import dev_app, parse_root
from lightning.config import load_config

__all__ = ["fetch"]


@dev_app.command("fetch")
def fetch(
    root: Annotated[str, typer.Argument(metavar="ROOT", help="Object root (hex).")],
    peer: Annotated[
        list[str] | None,
        typer.Option(
            "--peer",
            metavar="NODE_ID@HOST:PORT",
            help="A peer to fetch from; repeat to try several in order [default: known peers].",
        ),
    ] = None,
    home: HomeOpt = None,
    dev: DevOpt = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Then write the object here.")
    ] = None,
    pin: Annotated[bool, typer.Option("--pin", help="Never evict the fetched object.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, metavar="SECONDS", help="How long to wait for the node.")
    ] = 600.0,
) -> None:
    """Fetch an object from a peer into the running node's blockstore, verifying every block."""
    from lightning.cli.main import rpc_call  # main imports this module

    parse_root(root)
    if output is not None and not output.absolute().parent.is_dir():
        raise typer.BadParameter(f"{output}: its directory does not exist", param_hint="-o/--output")
    h = resolve_home(home, dev)
    url = node_rpc_url(h, dev=dev, explicit_home=home is not None)
    result = rpc_call(url, "admin_fetch", {"root": root, "peer": peer, "pin": pin}, timeout_s=timeout)
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
