"""``lightning dev …``: developer tools that work on a home whether its node runs or not."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lightning.blockstore.store import BlockStore, BlockstoreError
from lightning.blockstore.writer import ObjectWriter
from lightning.config import load_config
from lightning.home import Home, default_home

dev_app = typer.Typer(help="Developer tools.", no_args_is_help=True)
blockstore_app = typer.Typer(help="Inspect the blockstore.", no_args_is_help=True)
dev_app.add_typer(blockstore_app, name="blockstore")

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", envvar="LIGHTNING_HOME", help="Node home directory [default: ~/.lightning]", show_default=False
    ),
]

READ_CHUNK = 4 * 1024 * 1024
PROGRESS_MIN_BYTES = 64 * 1024 * 1024


def _open_store(home: Path | None) -> BlockStore:
    h = Home((home.expanduser() if home else default_home()).absolute())
    config = load_config(h.config_path)
    return BlockStore(h.data / "blockstore", map_size=config.blockstore.map_size_bytes)


def parse_root(text: str) -> bytes:
    try:
        root = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        root = b""
    if len(root) != 32:
        raise BlockstoreError(f"{text!r} is not a blockstore root (64 hex digits)")
    return root


@dev_app.command("store")
def store_files(
    files: Annotated[list[Path], typer.Argument(help="Files to store.", exists=False)],
    home: HomeOpt = None,
    pin: Annotated[bool, typer.Option("--pin", help="Never evict these objects.")] = False,
) -> None:
    """Store files in the blockstore; print each root in hex (not a `b3sum` hash: see docs/blockstore-format.md)."""
    with _open_store(home) as store:
        for path in files:
            try:
                f = open(path, "rb")
            except OSError as exc:
                raise BlockstoreError(f"{path}: cannot read ({exc.strerror})") from None
            with f, ObjectWriter(store, pin=pin) as writer:
                size = os.fstat(f.fileno()).st_size
                if size >= PROGRESS_MIN_BYTES and sys.stderr.isatty():
                    with typer.progressbar(length=size, label=str(path), file=sys.stderr) as bar:
                        while chunk := f.read(READ_CHUNK):
                            writer.write(chunk)
                            bar.update(len(chunk))
                else:
                    while chunk := f.read(READ_CHUNK):
                        writer.write(chunk)
                root = writer.close()
            typer.echo(f"{root.hex()}  {path}")


@dev_app.command("get")
def get_object(
    root: Annotated[str, typer.Argument(help="Object root (hex).")],
    home: HomeOpt = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")] = None,
) -> None:
    """Write an object, verifying every block as it is read. With -o, the file appears only if all of it verified."""
    r = parse_root(root)
    with _open_store(home) as store:
        if output is None:
            out = sys.stdout.buffer
            for chunk in store.read_range(r):
                out.write(chunk)
            out.flush()
            return
        partial = output.with_name(f".{output.name}.partial")
        try:
            with open(partial, "wb") as f:
                for chunk in store.read_range(r):
                    f.write(chunk)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)


@blockstore_app.command("stats")
def blockstore_stats(home: HomeOpt = None) -> None:
    """Objects, bytes and evictions of the home's blockstore."""
    with _open_store(home) as store:
        s = store.statistics()
    typer.echo(f"objects:    {s.objects} ({s.pinned} pinned)")
    typer.echo(f"blocks:     {s.blocks}")
    typer.echo(f"bytes:      {s.bytes}")
    typer.echo(f"evictions:  {s.evictions}")
    if s.staging_writers:
        typer.echo(f"writers in progress: {s.staging_writers}")


@dev_app.command("genesis")
def dev_genesis(
    nodes: Annotated[int, typer.Option("--nodes", help="Number of nodes.")] = 4,
    committee: Annotated[int, typer.Option("--committee", help="Genesis committee size (first K nodes).")] = 4,
    out: Annotated[Path, typer.Option("--out", help="Output directory (must be empty).")] = Path("cluster"),
    host_base: Annotated[str, typer.Option("--host-base", help="Address of node 1; node k gets base + k-1.")] = (
        "127.0.0.1"
    ),
    compose: Annotated[bool, typer.Option("--compose", help="Hosts are compose services node-1..N.")] = False,
    epoch_ms: Annotated[int, typer.Option("--epoch-ms", help="Epoch length in milliseconds.")] = 24 * 3600 * 1000,
) -> None:
    """Generate keys, homes and one genesis for a local N-node network."""
    from lightning.devnet import make_cluster

    layout = make_cluster(
        out, nodes=nodes, committee=committee, host_base=host_base, compose=compose, epoch_time_ms=epoch_ms
    )
    for n in layout.nodes:
        role = "committee" if n.committee else "edge"
        typer.echo(f"{n.name}  {n.node_id}  {n.host}  http :{n.http_port}  rpc :{n.rpc_port}  {role}  {n.home}")
    typer.echo(f"faucet {layout.faucet}  (key: {layout.root / 'faucet.key'})")


@dev_app.command("cluster")
def dev_cluster(
    nodes: Annotated[int, typer.Option("--nodes", help="Number of nodes.")] = 4,
    committee: Annotated[int | None, typer.Option("--committee", help="Committee size [default: min(N, 4)].")] = None,
    home: Annotated[Path, typer.Option("--home", help="Cluster directory.")] = Path("~/.lightning-cluster"),
    keep: Annotated[bool, typer.Option("--keep", help="Reuse the existing homes instead of regenerating.")] = False,
    host_base: Annotated[str, typer.Option("--host-base", help="Address of node 1.")] = "127.0.0.1",
) -> None:
    """Run an N-node local cluster in the foreground; Ctrl-C or SIGTERM stops every node (exit 0)."""
    import shutil
    import signal as _signal

    import trio

    from lightning.devnet import ClusterLayout, make_cluster
    from lightning.devnet.cluster import ClusterSupervisor
    from lightning.devnet.genesis import DevnetError

    root = home.expanduser().absolute()
    if keep and (root / "cluster.json").exists():
        layout = ClusterLayout.load(root)
    else:
        if root.exists() and any(root.iterdir()):
            if not (root / "cluster.json").exists():
                raise DevnetError(f"{root}: exists and is not a cluster directory; choose another --home")
            shutil.rmtree(root)
        layout = make_cluster(root, nodes=nodes, committee=committee or min(nodes, 4), host_base=host_base)

    def echo(line: str) -> None:
        typer.echo(line)

    async def main() -> None:
        supervisor = ClusterSupervisor(layout, echo=echo)
        with trio.open_signal_receiver(_signal.SIGINT, _signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(supervisor.run)

                async def wait_signal() -> None:
                    async for signum in signals:
                        echo(f"received {_signal.Signals(signum).name}: stopping {len(layout.nodes)} nodes")
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(wait_signal)
        echo("cluster stopped")

    trio.run(main)
