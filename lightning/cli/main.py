"""``lightning`` CLI entry point (typer). Commands only parse, load and call; the work lives in the library."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import logging
import signal
import sys
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any, NoReturn

import trio
import typer

import lightning
from lightning.bootstrap import init_home
from lightning.cli.account import account_app, opt_app, stake_app
from lightning.cli.dev import dev_app
from lightning.cli.net import fetch as _dev_fetch  # noqa: F401  (registers `lightning dev fetch`)
from lightning.cli.registration import keys_registration
from lightning.cli.simulate import simulate_app as _simulate_app  # noqa: F401  (registers `lightning dev simulate`)
from lightning.config import Config, ConfigError, dump_toml, load_config
from lightning.errors import LightningError, leaf_exceptions
from lightning.genesis import load_genesis
from lightning.home import Home, HomeError, Keys, default_home
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

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="LIGHTNING_HOME",
        help="Node home directory [default: ~/.lightning; ~/.lightning-dev with --dev]",
        show_default=False,
    ),
]


def _home(path: Path | None, *, dev: bool = False) -> Home:
    return Home((path.expanduser() if path else default_home(dev)).absolute())


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
    force: Annotated[bool, typer.Option("--force", help="Replace existing keys.")] = False,
) -> None:
    """Generate the node, consensus and account keys."""
    h = _home(home)
    if h.has_keys() and not force:
        raise HomeError(f"{h.keystore}: keys exist; pass --force to replace them (the node id will change)")
    h.ensure_dirs()
    with h.lock():
        keys = Keys.generate()
        h.write_keys(keys)
    _print_keys(keys)


@keys_app.command("show")
def keys_show(home: HomeOpt = None) -> None:
    """Show the public keys and the node id."""
    _print_keys(_home(home).load_keys())


keys_app.command("registration")(keys_registration)


@app.command("print-config")
def print_config(
    home: HomeOpt = None,
    default: Annotated[bool, typer.Option("--default", help="Print the built-in defaults.")] = False,
) -> None:
    """Print the effective config as TOML."""
    config = Config() if default else load_config(_home(home).config_path)
    typer.echo(dump_toml(config), nl=False)


@app.command()
def run(
    home: HomeOpt = None,
    dev: Annotated[bool, typer.Option("--dev", help="Run a single-node dev network (creates its home).")] = False,
    listen_host: Annotated[str | None, typer.Option(help="Override node.listen_host.", show_default=False)] = None,
    rpc_host: Annotated[str | None, typer.Option(help="Override node.rpc_host.", show_default=False)] = None,
    http_port: Annotated[int | None, typer.Option(help="Override http.port (0 = any).", show_default=False)] = None,
    rpc_port: Annotated[int | None, typer.Option(help="Override rpc.port (0 = any).", show_default=False)] = None,
    quic_port: Annotated[
        int | None, typer.Option(help="Override net.port (0 = any).", show_default=False, min=0, max=65535)
    ] = None,
) -> None:
    """Run the node in the foreground until SIGINT/SIGTERM."""
    from lightning.config import parse_section
    from lightning.node import Node

    _configure_logging()
    h = _home(home, dev=dev)
    if dev and not h.exists():
        init_home(h, dev=True, force=False)
        logger.info("created dev home %s", h.root)
    if not h.exists():
        raise HomeError(
            f"{h.config_path}: no config; run `lightning init --home {h.root}` first (or `lightning run --dev`)"
        )
    with h.lock():
        config = load_config(h.config_path)
        overrides: dict[str, dict[str, Any]] = {"node": {}, "http": {}, "rpc": {}}
        if listen_host is not None:
            overrides["node"]["listen_host"] = listen_host
        if rpc_host is not None:
            overrides["node"]["rpc_host"] = rpc_host
        if http_port is not None:
            overrides["http"]["port"] = http_port
        if rpc_port is not None:
            overrides["rpc"]["port"] = rpc_port
        for section, values in overrides.items():
            if values:
                merged = {**dataclasses.asdict(getattr(config, section)), **values}
                try:
                    new = parse_section(type(getattr(config, section)), merged, section)
                except ConfigError as exc:
                    raise ConfigError(f"command line: {exc}") from None
                config = dataclasses.replace(config, **{section: new})
        if quic_port is not None:  # range-checked by the option itself
            config = dataclasses.replace(config, net=dataclasses.replace(config.net, port=quic_port))
        _configure_logging(config)
        genesis = load_genesis(h.genesis_path(config.node.genesis))
        keys = h.load_keys()
        node = Node(home=h, config=config, genesis=genesis, keys=keys)
        logger.info("lightning-py %s starting: home %s, node %s", lightning.__version__, h.root, keys.node_id)
        trio.run(_serve, node, config.node.shutdown_grace_s)
    logger.info("stopped")


async def _serve(node: Any, grace_s: float) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_signals, node, nursery.cancel_scope, grace_s)
        await node.run()
        nursery.cancel_scope.cancel()


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
    target: Annotated[list[str], typer.Option("--target", help="Node client endpoint, e.g. http://127.0.0.1:4220.")],
    cid: Annotated[list[str] | None, typer.Option("--cid", help="IPFS CID to request (repeatable).")] = None,
    root: Annotated[list[str] | None, typer.Option("--root", help="Blake3 root (hex) to request (repeatable).")] = None,
    requests: Annotated[int | None, typer.Option("--requests", help="Total requests.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Concurrent requests.")] = 8,
    duration: Annotated[float | None, typer.Option("--duration", help="Stop after this many seconds.")] = None,
    service: Annotated[int, typer.Option("--service", help="Service id: 0 content, 1 video.")] = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="Per-request timeout in seconds.")] = 30.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
) -> None:
    """Load-test nodes: TTFB and TTFL p50/p90/p99, throughput and errors, in total and per node."""
    from lightning.loadgen import BenchError, run_load, terminal_progress

    paths = [f"/services/{service}/ipfs/{c}" for c in cid or []]
    for r in root or []:
        if len(r) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in r):
            raise BenchError(f"--root {r!r}: expected 64 hex digits")
        paths.append(f"/services/{service}/blake3/{r.lower()}")
    if requests is None and duration is None:
        requests = 100
    report = trio.run(
        functools.partial(
            run_load,
            target,
            paths,
            requests=requests,
            concurrency=concurrency,
            duration_s=duration,
            timeout_s=timeout,
            progress=terminal_progress,
        )
    )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    for line in report.lines():
        typer.echo(line)
    if json_path is not None:
        json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n")


@app.command()
def status(
    home: HomeOpt = None,
    rpc: Annotated[str | None, typer.Option(help="RPC URL (default: from the home's run/ports.json)")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (every field below, raw) for scripts.")
    ] = False,
) -> None:
    """Show the running node's height and sync state, peers, epoch and the time to the next one, committee
    membership, stake and reputation, and the bytes served."""
    from lightning.cli.status import fetch_status, render_status

    h = _home(home)
    url = rpc
    if url is None:
        ports = h.read_ports()
        if ports is None:
            raise HomeError(f"no node is running on {h.root} (no {h.ports_path}); start one with `lightning run`")
        url = f"http://{ports['rpc']}/rpc/v0"
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
        raise LightningError(f"{method}: {answer['error'].get('message')}")
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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors, exit 1 for failures, 2 for usage errors."""
    args = _hoist_global_options(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="lightning", standalone_mode=False)
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
