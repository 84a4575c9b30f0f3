"""``lightning`` CLI entry point (typer). Commands only parse, load and call; the work lives in the library."""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import json
import logging
import shutil
import signal
import sys
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import trio
import typer

import lightning
from lightning.bootstrap import init_home
from lightning.cli.account import account_app, opt_app, stake_app
from lightning.cli.common import DevOpt, HomeOpt, RpcOpt, flk_in_text, resolve_home, taken_ports_hint
from lightning.cli.dev import dev_app
from lightning.cli.help import tidy
from lightning.cli.net import fetch as _dev_fetch  # noqa: F401  (registers `lightning dev fetch`)
from lightning.cli.registration import keys_registration
from lightning.cli.simulate import simulate_app as _simulate_app  # noqa: F401  (registers `lightning dev simulate`)
from lightning.config import Config, ConfigError, dump_toml, load_config
from lightning.errors import LightningError, leaf_exceptions
from lightning.genesis import load_genesis
from lightning.home import Home, HomeError, Keys
from lightning.logs import setup_logging

logger = logging.getLogger("lightning.cli")

app = typer.Typer(
    name="lightning",
    help="lightning-py: an edge node for a decentralized content-delivery network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
keys_app = typer.Typer(help="Manage the node's keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(dev_app, name="dev")
app.add_typer(account_app, name="account")
app.add_typer(stake_app, name="stake")
app.add_typer(opt_app, name="opt")


@dataclasses.dataclass
class _Globals:
    verbose: int = 0
    quiet: int = 0
    log_format: str | None = None


G = _Globals()


class LogFormat(enum.Enum):
    text = "text"
    json = "json"


def _home(path: Path | None, *, dev: bool = False, must_exist: bool = False) -> Home:
    return resolve_home(path, dev, must_exist=must_exist)


def _log_level(config_level: str = "info") -> int:
    base = logging.getLevelName(config_level.upper())
    level = int(base) - 10 * G.verbose + 10 * G.quiet
    return max(logging.DEBUG, min(logging.CRITICAL, level))


def _configure_logging(config: Config | None = None) -> None:
    level = config.log.level if config else "info"
    fmt = G.log_format or (config.log.format if config else "text")
    setup_logging(_log_level(level), fmt)


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More logging (repeatable).")] = 0,
    quiet: Annotated[int, typer.Option("-q", "--quiet", count=True, help="Less logging (repeatable).")] = 0,
    log_format: Annotated[LogFormat | None, typer.Option("--log-format", help="Log line format.")] = None,
) -> None:
    G.verbose, G.quiet = verbose, quiet
    G.log_format = log_format.value if log_format else None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"lightning-py {lightning.__version__}")


@app.command()
def init(
    home: HomeOpt = None,
    dev: Annotated[bool, typer.Option("--dev", help="Single-node dev home (loopback, own genesis).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config and keys.")] = False,
    genesis: Annotated[
        Path | None, typer.Option("--genesis", help="Copy this network genesis into the home.", show_default=False)
    ] = None,
) -> None:
    """Create a home: config.toml and three Ed25519 keys (node, consensus, account)."""
    if genesis is not None and not genesis.is_file():
        why = "no such file" if not genesis.exists() else "not a regular file"
        raise typer.BadParameter(f"{genesis}: {why}", param_hint="--genesis")
    _configure_logging()
    h = _home(home, dev=dev)
    keys = init_home(h, dev=dev, force=force, genesis_src=genesis)
    typer.echo(f"initialised {h.root}")
    _print_keys(keys)
    if not dev and genesis is None:
        typer.echo(f"next: put the network's genesis at {h.root / 'genesis.toml'} (or re-run with --genesis FILE)")


def _print_keys(keys: Keys) -> None:
    typer.echo(f"node id:        {keys.node_id}")
    typer.echo(f"node key:       {keys.node.public.hex}")
    typer.echo(f"consensus key:  {keys.consensus.public.hex}")
    typer.echo(f"account:        {keys.account.public.hex}")


@keys_app.command("generate")
def keys_generate(
    home: HomeOpt = None,
    dev: DevOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Replace existing keys.")] = False,
) -> None:
    """Generate the node, consensus and account keys."""
    h = _home(home, dev=dev)
    if h.has_keys() and not force:
        raise HomeError(f"{h.keystore}: keys exist; pass --force to replace them (the node id will change)")
    h.ensure_dirs()
    with h.lock():
        keys = Keys.generate()
        h.write_keys(keys)
    _print_keys(keys)


@keys_app.command("show")
def keys_show(home: HomeOpt = None, dev: DevOpt = False) -> None:
    """Show the public keys and the node id."""
    _print_keys(_home(home, dev=dev, must_exist=True).load_keys())


keys_app.command("registration")(keys_registration)


@app.command("print-config")
def print_config(
    home: HomeOpt = None,
    dev: DevOpt = False,
    default: Annotated[bool, typer.Option("--default", help="Print the built-in defaults.")] = False,
) -> None:
    """Print the effective config as TOML."""
    config = Config() if default else load_config(_home(home, dev=dev, must_exist=True).config_path)
    typer.echo(dump_toml(config), nl=False)


@app.command()
def run(
    home: HomeOpt = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Run a single-node dev network in ~/.lightning-dev (created if missing).")
    ] = False,
    listen_host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Override node.listen_host.", show_default=False)
    ] = None,
    rpc_host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Override node.rpc_host.", show_default=False)
    ] = (None),
    http_port: Annotated[int | None, typer.Option(help="Override http.port (0 = any free port).")] = None,
    rpc_port: Annotated[int | None, typer.Option(help="Override rpc.port (0 = any free port).")] = None,
    quic_port: Annotated[int | None, typer.Option(help="Override net.port (0 = any free port).")] = None,
    pinger_port: Annotated[
        int | None, typer.Option(help="Override pinger.port, the UDP port the registration publishes.")
    ] = None,
    hints: Annotated[bool, typer.Option("--hints/--no-hints", hidden=True)] = True,  # off for `dev cluster` nodes
) -> None:
    """Run the node in the foreground until SIGINT/SIGTERM; once it is ready, print its URLs and what to try next."""
    from lightning.config import parse_section
    from lightning.node import Node

    for name, value in (
        ("--http-port", http_port),
        ("--rpc-port", rpc_port),
        ("--quic-port", quic_port),
        ("--pinger-port", pinger_port),
    ):
        if value is not None and not 0 <= value <= 65535:
            raise typer.BadParameter(f"{value} is not a port (0..65535; 0 = any free port)", param_hint=name)
    _configure_logging()
    h = _home(home, dev=dev, must_exist=not dev)
    created: Path | None = None  # a dev home this run created: removed again if the node never becomes ready
    if dev and not h.exists():
        fresh = not h.root.exists()
        init_home(h, dev=True, force=False)
        created = h.root if fresh else None
        logger.info("created dev home %s", h.root)
    ready = False
    config = load_config(h.config_path) if h.exists() else None

    def on_ready(ports: dict[str, Any]) -> None:
        nonlocal ready
        ready = True
        if hints and not G.quiet:
            home_args = "--dev" if dev and home is None else f"--home {h.root}"
            for line in ready_lines(ports, home_args):
                typer.echo(line)

    try:
        with h.lock():
            config = load_config(h.config_path)
            overrides: dict[str, dict[str, Any]] = {"node": {}, "http": {}, "rpc": {}, "pinger": {}}
            options = {("node", "listen_host"): "--listen-host", ("node", "rpc_host"): "--rpc-host"}
            if listen_host is not None:
                overrides["node"]["listen_host"] = listen_host
            if rpc_host is not None:
                overrides["node"]["rpc_host"] = rpc_host
            if http_port is not None:
                overrides["http"]["port"] = http_port
            if rpc_port is not None:
                overrides["rpc"]["port"] = rpc_port
            if pinger_port is not None:
                overrides["pinger"]["port"] = pinger_port
            for section, values in overrides.items():
                if values:
                    merged = {**dataclasses.asdict(getattr(config, section)), **values}
                    try:
                        new = parse_section(type(getattr(config, section)), merged, section)
                    except ConfigError as exc:
                        hint = next(
                            (o for (sec, key), o in options.items() if sec == section and key in str(exc)), None
                        )
                        raise typer.BadParameter(str(exc), param_hint=hint) from None
                    config = dataclasses.replace(config, **{section: new})
            if quic_port is not None:
                config = dataclasses.replace(config, net=dataclasses.replace(config.net, port=quic_port))
            _configure_logging(config)
            genesis_path = h.genesis_path(config.node.genesis)
            if not genesis_path.exists():
                raise HomeError(
                    f"{genesis_path}: no genesis; copy your network's genesis file there (`lightning init --genesis"
                    " FILE` does it for a new home; format: docs/genesis.md), or `lightning run --dev` for a local one"
                )
            genesis = load_genesis(genesis_path)
            keys = h.load_keys()
            node = Node(home=h, config=config, genesis=genesis, keys=keys)
            logger.info("lightning-py %s starting: home %s, node %s", lightning.__version__, h.root, keys.node_id)
            trio.run(_serve, node, config.node.shutdown_grace_s, on_ready)
    except BaseException as exc:
        if created is not None and not ready:
            shutil.rmtree(created, ignore_errors=True)
            logger.info("removed the dev home %s again: the node did not start", created)
        in_use = [e for e in leaf_exceptions(exc) if isinstance(e, LightningError) and "already in use" in str(e)]
        if in_use and not ready:  # name every taken port at once, not one per attempt
            again = ["lightning run"]
            again += ["--dev"] if dev and home is None else [f"--home {h.root}"] if home is not None else []
            again += [
                f"{flag} {value}" for flag, value in (("--listen-host", listen_host), ("--rpc-host", rpc_host)) if value
            ]
            hint = taken_ports_hint(config, " ".join(again))
            if hint:
                raise LightningError(f"{in_use[0]}; {hint}") from None
        raise
    logger.info("stopped")


def ready_lines(ports: dict[str, Any], home_args: str) -> list[str]:
    """What ``lightning run`` prints once the node is ready: its URLs and the next commands to try."""
    http, rpc = ports.get("http"), ports.get("rpc")
    if http is None or rpc is None:
        return []
    status_args = home_args
    if home_args == "--dev" and "dev" not in inspect.signature(status).parameters:
        status_args = f"--home {resolve_home(None, True, must_exist=False).root}"
    return [
        f"ready: node {ports.get('node_id', '?')}",
        f"  client  http://{http}  (content: /services/0/blake3/<root>, /services/0/ipfs/<cid>)",
        f"  rpc     http://{rpc}/rpc/v0  (metrics: http://{rpc}/metrics)",
        "next, in another terminal:",
        f"  curl http://{http}/health",
        f"  lightning dev store FILE {home_args}             # prints the object's <root>",
        f"  curl -o copy http://{http}/services/0/blake3/<root>",
        f"  lightning status {status_args}",
        "Ctrl-C stops the node.",
    ]


async def _serve(node: Any, grace_s: float, on_ready: Callable[[dict[str, Any]], None] | None = None) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, node, nursery.cancel_scope, grace_s)
        ports = await nursery.start(_run_node, node, nursery.cancel_scope)
        if on_ready is not None:
            on_ready(ports)


async def _run_node(
    node: Any, scope: trio.CancelScope, *, task_status: trio.TaskStatus[dict[str, Any]] = trio.TASK_STATUS_IGNORED
) -> None:
    await node.run(task_status=task_status)
    scope.cancel()


async def _watch_signals(node: Any, scope: trio.CancelScope, grace_s: float) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if node._stop.is_set():
                logger.warning("second signal: stopping now")
                scope.cancel()
                return
            logger.info("received %s: stopping (grace %.1f s)", signal.Signals(signum).name, grace_s)
            node.request_stop()
            scope.deadline = trio.current_time() + grace_s


@app.command("bench")
def bench(
    target: Annotated[
        list[str], typer.Option("--target", metavar="URL", help="Node client endpoint, e.g. http://127.0.0.1:4220.")
    ],
    cid: Annotated[list[str] | None, typer.Option("--cid", metavar="CID", help="IPFS CID to request.")] = None,
    root: Annotated[list[str] | None, typer.Option("--root", metavar="ROOT", help="Blake3 root (hex) to request.")] = (
        None
    ),
    requests: Annotated[
        int | None, typer.Option("--requests", min=1, help="Total requests [default: 100 without --duration].")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Concurrent requests.")] = 8,
    duration: Annotated[
        float | None, typer.Option("--duration", min=0.1, metavar="SECONDS", help="Stop after this long.")
    ] = None,
    service: Annotated[int, typer.Option("--service", min=0, help="Service id: 0 content, 1 video.")] = 0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, metavar="SECONDS", help="Per-request timeout.")
    ] = 30.0,
    json_path: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Also write the report as JSON here.")
    ] = None,
) -> None:
    """Load-test nodes: TTFB and TTFL p50/p90/p99 (ms), requests/s, MB/s and errors, in total and per node."""
    from lightning.cli.progress import count_progress
    from lightning.loadgen import BenchError, Target, run_load

    for url in target:
        try:
            Target.parse(url)
        except BenchError as exc:
            raise typer.BadParameter(str(exc).removeprefix("--target "), param_hint="--target") from None
    if not cid and not root:
        raise typer.BadParameter("name what to request: --cid CID or --root ROOT (repeatable)", param_hint="--root")
    paths = [f"/services/{service}/ipfs/{c}" for c in cid or []]
    for r in root or []:
        if len(r) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in r):
            raise typer.BadParameter(f"{r!r}: expected 64 hex digits", param_hint="--root")
        paths.append(f"/services/{service}/blake3/{r.lower()}")
    if json_path is not None and not json_path.absolute().parent.is_dir():
        raise typer.BadParameter(f"{json_path}: its directory does not exist", param_hint="--json")
    if requests is None and duration is None:
        requests = 100
    with count_progress("requests") as progress:
        report = trio.run(
            functools.partial(
                run_load,
                target,
                paths,
                requests=requests,
                concurrency=concurrency,
                duration_s=duration,
                timeout_s=timeout,
                progress=progress,
            )
        )
    summary = report.as_dict()
    for line in bench_table(summary):
        typer.echo(line)
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
    if summary["total"]["ok"] == 0:
        kinds = ", ".join(f"{k} {v}" for k, v in summary["total"]["errors_by_kind"].items()) or "none"
        raise LightningError(f"no request succeeded (errors: {kinds}); is a node serving at {', '.join(target)}?")


def bench_table(report: dict[str, Any]) -> list[str]:
    """The ``lightning bench`` table: one row per node and a total, every column with its unit."""

    def ms(v: float | None) -> str:
        return f"{'-':>8}" if v is None else f"{v:>8.2f}"

    def row(name: str, s: dict[str, Any]) -> str:
        b, f = s["ttfb_ms"], s["ttfl_ms"]
        return (
            f"{name:<28} {s['ok']:>7} {s['errors']:>6} {s['requests_per_s']:>9.1f}  "
            f"{ms(b['p50'])} {ms(b['p90'])} {ms(b['p99'])}  {ms(f['p50'])} {ms(f['p90'])} {ms(f['p99'])}  "
            f"{s['throughput_mb_s']:>7.1f}"
        )

    out = [
        f"{'node':<28} {'ok':>7} {'errors':>6} {'req/s':>9}  {'TTFB ms':>8} {'':>8} {'':>8}  "
        f"{'TTFL ms':>8} {'':>8} {'':>8}  {'MB/s':>7}",
        f"{'':<28} {'':>7} {'':>6} {'':>9}  {'p50':>8} {'p90':>8} {'p99':>8}  {'p50':>8} {'p90':>8} {'p99':>8}",
    ]
    out += [row(name, s) for name, s in report["nodes"].items()]
    out.append(row("total", report["total"]))
    out.append(f"{report['elapsed_s']:.1f} s; TTFB: time to first byte, TTFL: time to last byte; MB = 10^6 bytes")
    kinds = report["total"]["errors_by_kind"]
    if kinds:
        out.append("errors: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    return out


@app.command()
def status(
    home: HomeOpt = None,
    dev: DevOpt = False,
    rpc: RpcOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (every field below, raw) for scripts.")
    ] = False,
    wait_sync: Annotated[
        bool,
        typer.Option(
            "--wait-sync", help="First wait until the node has caught up with the chain (a progress bar on a terminal)."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="With --wait-sync: give up after this many seconds (exit 1).")
    ] = 3600.0,
) -> None:
    """Show the running node's height and sync state, peers, epoch and the time to the next one, committee
    membership, stake and reputation, and the bytes served."""
    from lightning.cli.common import node_rpc_url
    from lightning.cli.progress import sync_progress
    from lightning.cli.status import fetch_status, render_status, wait_synced

    h = _home(home, dev=dev)
    url = node_rpc_url(h, rpc, dev=dev, explicit_home=home is not None)
    if wait_sync:
        with sync_progress("catching up") as update:
            wait_synced(url, update, timeout_s=timeout)
    report = fetch_status(url)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for line in render_status(report):
        typer.echo(line)


def rpc_call(url: str, method: str, params: Any = None, *, timeout_s: float = 10.0) -> Any:
    """One synchronous JSON-RPC call (CLI only). Raises :class:`LightningError` with a readable message."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            answer = json.loads(resp.read())
    except urllib.error.URLError as exc:
        raise LightningError(f"no node answers at {url} ({exc.reason}); is `lightning run` running?") from None
    except (OSError, ValueError) as exc:
        raise LightningError(f"bad answer from {url}: {exc}") from None
    if "error" in answer:
        message = str(answer["error"].get("message"))
        raise LightningError(f"{method}: {flk_in_text(message) if method == 'flk_send_txn' else message}")
    return answer["result"]


def _fail(message: str, code: int = 1) -> NoReturn:
    print(f"lightning: error: {message}", file=sys.stderr)
    sys.exit(code)


_GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}


def _hoist_global_options(argv: list[str]) -> list[str]:
    """Let ``-v``/``-q``/``--log-format`` appear anywhere (``lightning run -v``), not only before the command."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg in _GLOBAL_FLAGS or (len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) <= {"v", "q"}):
            front.append(arg)
        elif arg.startswith("--log-format="):
            front.append(arg)
        elif arg == "--log-format" and i + 1 < len(argv):
            front += argv[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def command() -> Any:
    """The click command tree of ``app``, with readable help (lightning.cli.help)."""
    return tidy(typer.main.get_command(app))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors, exit 1 for failures, 2 for usage errors."""
    args = _hoist_global_options(sys.argv[1:] if argv is None else argv)
    try:
        command().main(args=args, prog_name="lightning", standalone_mode=False)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument, bad value
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and exc.exit_code == 2 else ""
        _fail(f"{exc.format_message()}{hint}", exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        leaves = leaf_exceptions(exc)
        known = [e for e in leaves if isinstance(e, LightningError)]
        if G.verbose:
            traceback.print_exception(exc)
        if known:
            _fail(str(known[0]))
        if isinstance(exc, OSError):
            _fail(str(exc))
        if not G.verbose:
            traceback.print_exception(exc)
        _fail(f"unexpected {type(leaves[0]).__name__}: {leaves[0]}")
