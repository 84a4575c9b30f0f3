"""``lightning dev …``: developer tools that work on a home whether its node runs or not."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lightning.blockstore.store import BlockStore, BlockstoreError
from lightning.blockstore.writer import ObjectWriter
from lightning.cli.common import DevOpt, HomeOpt, resolve_home
from lightning.cli.progress import byte_progress
from lightning.config import load_config

if TYPE_CHECKING:
    from lightning.devnet import ClusterLayout
    from lightning.devnet.cluster import NodeFailedToStart

dev_app = typer.Typer(help="Developer tools.", no_args_is_help=True)
blockstore_app = typer.Typer(help="Inspect the blockstore.", no_args_is_help=True)
dev_app.add_typer(blockstore_app, name="blockstore")

READ_CHUNK = 4 * 1024 * 1024
DEFAULT_COMMITTEE = 4  # `dev genesis` and `dev cluster`: a committee of min(N, 4) unless --committee says otherwise


def _open_store(home: Path | None, dev: bool) -> BlockStore:
    h = resolve_home(home, dev)
    config = load_config(h.config_path)
    return BlockStore(h.data / "blockstore", map_size=config.blockstore.map_size_bytes)


def parse_root(text: str) -> bytes:
    try:
        root = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        root = b""
    if len(root) != 32:
        raise typer.BadParameter(f"{text!r} is not a blockstore root (64 hex digits)", param_hint="ROOT")
    return root


@dev_app.command("store")
def store_files(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Files to store.", exists=False)],
    home: HomeOpt = None,
    dev: DevOpt = False,
    pin: Annotated[bool, typer.Option("--pin", help="Never evict these objects.")] = False,
) -> None:
    """Store files in the blockstore (the node may be running); print each root in hex, which the client endpoint
    serves at /services/0/blake3/<root> (not a `b3sum` hash: see docs/blockstore-format.md)."""
    for path in files:  # every file readable before any is stored (a pipe or device streams like a file)
        if not path.exists() or path.is_dir():
            why = "no such file" if not path.exists() else "a directory, not a file"
            raise typer.BadParameter(f"{path}: {why}", param_hint="FILE")
    with _open_store(home, dev) as store:
        for path in files:
            try:
                f = open(path, "rb")
            except OSError as exc:
                raise BlockstoreError(f"{path}: cannot read ({exc.strerror})") from None
            with f, ObjectWriter(store, pin=pin) as writer:
                with byte_progress(str(path), os.fstat(f.fileno()).st_size) as advance:
                    while chunk := f.read(READ_CHUNK):
                        writer.write(chunk)
                        advance(len(chunk))
                root = writer.close()
            typer.echo(f"{root.hex()}  {path}")


@dev_app.command("get")
def get_object(
    root: Annotated[str, typer.Argument(metavar="ROOT", help="Object root (hex).")],
    home: HomeOpt = None,
    dev: DevOpt = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Write an object, verifying every block as it is read. With -o, the file appears only if all of it verified."""
    r = parse_root(root)
    if output is not None and not output.absolute().parent.is_dir():
        raise typer.BadParameter(f"{output}: its directory does not exist", param_hint="-o/--output")
    with _open_store(home, dev) as store:
        info = store.get_info(r)
        if output is None:
            out = sys.stdout.buffer
            for chunk in store.read_range(r):
                out.write(chunk)
            out.flush()
            return
        partial = output.with_name(f".{output.name}.partial")
        try:
            with open(partial, "wb") as f, byte_progress(str(output), info.length) as advance:
                for chunk in store.read_range(r):
                    f.write(chunk)
                    advance(len(chunk))
            os.replace(partial, output)
        except OSError as exc:
            raise BlockstoreError(f"{output}: cannot write ({exc.strerror})") from None
        finally:
            partial.unlink(missing_ok=True)


@blockstore_app.command("stats")
def blockstore_stats(home: HomeOpt = None, dev: DevOpt = False) -> None:
    """Objects, bytes and evictions of the home's blockstore."""
    with _open_store(home, dev) as store:
        s = store.statistics()
    typer.echo(f"objects:    {s.objects} ({s.pinned} pinned)")
    typer.echo(f"blocks:     {s.blocks}")
    typer.echo(f"bytes:      {s.bytes}")
    typer.echo(f"evictions:  {s.evictions}")
    if s.staging_writers:
        typer.echo(f"writers in progress: {s.staging_writers}")


NodesOpt = Annotated[int, typer.Option("--nodes", min=1, max=250, help="Number of nodes.")]
CommitteeOpt = Annotated[
    int | None,
    typer.Option(
        "--committee",
        min=1,
        help=f"Genesis committee: the first K nodes [default: min(N, {DEFAULT_COMMITTEE})].",
        show_default=False,
    ),
]
HostBaseOpt = Annotated[
    str,
    typer.Option(
        "--host-base",
        metavar="IPV4",
        help="Address of node 1; node k binds base + k-1 (another loopback range, e.g. 127.0.1.1, avoids a node "
        "already running on 127.0.0.1).",
    ),
]
HttpPortOpt = Annotated[int, typer.Option("--http-port", min=1, max=65535, help="Client HTTP port of every node.")]
RpcPortOpt = Annotated[int, typer.Option("--rpc-port", min=1, max=65535, help="RPC port of every node.")]
QuicPortOpt = Annotated[int, typer.Option("--quic-port", min=1, max=65535, help="QUIC port (udp) of every node.")]


def _committee(nodes: int, committee: int | None) -> int:
    if committee is None:
        return min(nodes, DEFAULT_COMMITTEE)
    if committee > nodes:
        raise typer.BadParameter(
            f"a committee of {committee} needs at least {committee} nodes", param_hint="--committee"
        )
    return committee


def _host_base(text: str, nodes: int) -> None:
    from lightning.devnet.genesis import DevnetError, node_hosts

    try:
        node_hosts(nodes, text)
    except DevnetError as exc:
        raise typer.BadParameter(
            str(exc).removeprefix(f"--host-base {text}: ").removeprefix("--host-base: "), param_hint="--host-base"
        ) from None


@dev_app.command("genesis")
def dev_genesis(
    nodes: NodesOpt = 4,
    committee: CommitteeOpt = None,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Output directory (must be empty).")] = Path(
        "cluster"
    ),
    host_base: HostBaseOpt = "127.0.0.1",
    compose: Annotated[bool, typer.Option("--compose", help="Hosts are compose services node-1..N.")] = False,
    epoch_ms: Annotated[int, typer.Option("--epoch-ms", min=1, help="Epoch length in milliseconds.")] = 24
    * 3600
    * 1000,
    http_port: HttpPortOpt = 4220,
    rpc_port: RpcPortOpt = 4240,
    quic_port: QuicPortOpt = 4300,
) -> None:
    """Generate keys, homes and one genesis for a local N-node network."""
    from lightning.devnet import make_cluster

    size = _committee(nodes, committee)
    if not compose:
        _host_base(host_base, nodes)
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out}: a file, not a directory", param_hint="--out")
    layout = make_cluster(
        out,
        nodes=nodes,
        committee=size,
        host_base=host_base,
        compose=compose,
        epoch_time_ms=epoch_ms,
        http_port=http_port,
        rpc_port=rpc_port,
        quic_port=quic_port,
    )
    for n in layout.nodes:
        role = "committee" if n.committee else "edge"
        typer.echo(f"{n.name}  {n.node_id}  {n.host}  http :{n.http_port}  rpc :{n.rpc_port}  {role}  {n.home}")
    typer.echo(f"faucet {layout.faucet}  (key: {layout.root / 'faucet.key'})")


@dev_app.command("cluster")
def dev_cluster(
    nodes: NodesOpt = 4,
    committee: CommitteeOpt = None,
    home: Annotated[Path, typer.Option("--home", metavar="DIR", help="Cluster directory.")] = Path(
        "~/.lightning-cluster"
    ),
    keep: Annotated[
        bool, typer.Option("--keep", help="Run the cluster already in --home again (same keys and chain).")
    ] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Delete the cluster already in --home and generate a new one.")
    ] = False,
    host_base: HostBaseOpt = "127.0.0.1",
    http_port: HttpPortOpt = 4220,
    rpc_port: RpcPortOpt = 4240,
    quic_port: QuicPortOpt = 4300,
) -> None:
    """Run an N-node local cluster in the foreground; Ctrl-C or SIGTERM stops every node (exit 0). A cluster
    already in --home is run again with --keep, replaced with --fresh (asked when interactive, refused otherwise).
    The --nodes/--committee/--host-base/--*-port options apply to a new cluster only."""
    import shutil
    import signal as _signal

    import trio

    from lightning.devnet import ClusterLayout, make_cluster
    from lightning.devnet.cluster import ClusterSupervisor, NodeFailedToStart
    from lightning.devnet.genesis import DevnetError
    from lightning.errors import leaf_exceptions

    if keep and fresh:
        raise typer.BadParameter(
            "--keep runs the existing cluster, --fresh replaces it: give one", param_hint="--fresh"
        )
    size = _committee(nodes, committee)
    _host_base(host_base, nodes)
    root = home.expanduser().absolute()
    existing = (root / "cluster.json").exists()
    if keep and existing:
        layout = ClusterLayout.load(root)
    else:
        if root.exists() and any(root.iterdir()):
            if not existing:
                raise DevnetError(f"{root}: exists and is not a cluster directory; choose another --home")
            if not fresh:
                question = f"{root} holds a cluster (its keys and chain); delete it and generate a new one?"
                if not (sys.stdin.isatty() and typer.confirm(question, default=False)):
                    raise DevnetError(
                        f"{root} holds a cluster from before: pass --keep to run it again, or --fresh to delete it "
                        "and generate a new one"
                    )
            shutil.rmtree(root)
        layout = make_cluster(
            root,
            nodes=nodes,
            committee=size,
            host_base=host_base,
            http_port=http_port,
            rpc_port=rpc_port,
            quic_port=quic_port,
        )

    def echo(line: str) -> None:
        typer.echo(line)

    async def main() -> None:
        supervisor = ClusterSupervisor(layout, echo=echo)
        with trio.open_signal_receiver(_signal.SIGINT, _signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def wait_signal() -> None:
                    async for signum in signals:
                        echo(f"received {_signal.Signals(signum).name}: stopping {len(layout.nodes)} nodes")
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(wait_signal)
                endpoints = await nursery.start(supervisor.run)
                for line in cluster_ready_lines(layout, endpoints):
                    echo(line)
        echo("cluster stopped")

    try:
        trio.run(main)
    except BaseException as exc:
        failed = [e for e in leaf_exceptions(exc) if isinstance(e, NodeFailedToStart)]
        if not failed:
            raise
        raise DevnetError(_start_failure(failed[0])) from None


def _start_failure(failed: NodeFailedToStart) -> str:
    """One line for a cluster node that exited before it was ready: its own error, and for a port in use, the
    cluster's options that move every node elsewhere."""
    errors = [line for line in failed.tail if "error:" in line]
    cause = errors[-1].split("error:", 1)[1].strip() if errors else "see its log lines above"
    message = f"{failed.name} exited before it was ready: {cause}"
    if "already in use" in cause or "not on this machine" in cause:
        message = (
            f"{failed.name} exited before it was ready: {cause.split(': the ', 1)[0]}: "
            + ("the port is already in use" if "already in use" in cause else "the address is not on this machine")
            + " (another node or cluster?); stop it, or start the cluster elsewhere: --fresh with --host-base "
            "127.0.1.1 (another loopback range) or --http-port/--rpc-port/--quic-port N"
        )
    return message


def cluster_ready_lines(layout: ClusterLayout, endpoints: dict[str, dict[str, object]]) -> list[str]:
    """What ``lightning dev cluster`` prints once every node is ready: the next commands to try on node-1."""
    first = layout.nodes[0]
    http = endpoints[first.name]["http"]
    return [
        "next, in another terminal:",
        f"  curl http://{http}/health",
        f"  lightning dev store FILE --home {first.home}    # prints the object's <root>",
        f"  curl -o copy http://{http}/services/0/blake3/<root>",
        f"  lightning account mint <address> 100 --key {layout.root / 'faucet.key'} --home {first.home}",
    ]
