"""Every CLI path a new user can hit with a wrong home, port, amount, option or file: one line on stderr naming the
thing and the fix, exit 1 (runtime) or 2 (usage: a bad option or argument value), and no traceback (without -v).

Each case runs in process (typer's CliRunner isolation around ``lightning.cli.main.main``) with ``HOME`` in a
temporary directory, so ``~/.lightning`` and ``~/.lightning-dev`` are the test's own. No node is started: the cases
that need a "running" node point at a port nothing listens on.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lightning.bootstrap import init_home
from lightning.cli.main import main
from lightning.devnet import make_cluster
from lightning.home import Home

ADDR = "ab" * 32  # a well-formed account address
ROOT = "cd" * 32  # a well-formed blockstore root nothing stores


@dataclass
class World:
    """A fake ``$HOME`` and the paths the cases name (``{op}``, ``{dev}``, ``{tmp}``, ``{dead}`` in arguments)."""

    tmp: Path
    dead_rpc: str = ""

    @property
    def op(self) -> Path:
        return self.tmp / ".lightning"

    @property
    def dev(self) -> Path:
        return self.tmp / ".lightning-dev"

    def operator_home(self) -> None:
        init_home(Home(self.op), dev=True, force=False)

    def dev_home(self) -> None:
        init_home(Home(self.dev), dev=True, force=False)

    def dev_node_running(self) -> None:
        self.dev_home()
        Home(self.dev).write_ports({"rpc": self.dead_rpc, "http": self.dead_rpc, "pid": 1})

    def operator_node_running(self) -> None:
        self.operator_home()
        Home(self.op).write_ports({"rpc": self.dead_rpc, "http": self.dead_rpc, "pid": 1})

    def cluster(self) -> None:
        make_cluster(self.tmp / "cluster", nodes=1, committee=1, host_base="127.0.0.1")

    def not_a_cluster(self) -> None:
        (self.tmp / "cluster").mkdir()
        (self.tmp / "cluster" / "notes.txt").write_text("mine\n")

    def files(self) -> None:
        (self.tmp / "file.bin").write_bytes(b"x" * 100)
        (self.tmp / "full").mkdir()
        (self.tmp / "full" / "f").write_text("x")
        (self.tmp / "bad.key").write_text("not hex\n")

    def missing_node_key(self) -> None:
        self.operator_home()
        (self.op / "keystore" / "node.key").unlink()

    def open_node_key(self) -> None:
        self.operator_home()
        (self.op / "keystore" / "node.key").chmod(0o644)

    def bad_config(self) -> None:
        self.operator_home()
        (self.op / "config.toml").write_text('[http]\nport = "eighty"\n')


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]  # substrings of the one error line: the thing, and the fix
    setup: tuple[Callable[[World], None], ...] = field(default=())


def case(id: str, args: str, code: int, *says: str, setup: tuple[Callable[[World], None], ...] = ()) -> Case:
    return Case(id, tuple(args.split()), code, says, setup)


CASES = [
    # -- wrong home ------------------------------------------------------------------------------------------------
    case("no home at all", "keys show", 1, "~/.lightning", "not a node home", "lightning init", "--dev"),
    case("only a dev home: keys", "keys show", 1, "~/.lightning does not exist", "~/.lightning-dev", "add --dev",
         setup=(World.dev_home,)),
    case("only a dev home: print-config", "print-config", 1, "add --dev", setup=(World.dev_home,)),
    case("only a dev home: dev store", "dev store {tmp}/file.bin", 1, "add --dev",
         setup=(World.dev_home, World.files)),
    case("only a dev home: dev get", f"dev get {ROOT}", 1, "add --dev", setup=(World.dev_home,)),
    case("only a dev home: account", "account balance", 1, "add --dev", setup=(World.dev_home,)),
    case("only a dev home: stake", "stake info", 1, "add --dev", setup=(World.dev_home,)),
    case("only a dev home: opt", "opt status", 1, "add --dev", setup=(World.dev_home,)),
    case("only a dev home: dev fetch", f"dev fetch {ROOT}", 1, "add --dev", setup=(World.dev_home,)),
    case("only a dev home: run", "run", 1, "add --dev", setup=(World.dev_home,)),
    case("only a dev home: registration", f"keys registration --owner {ADDR}", 1, "add --dev",
         setup=(World.dev_home,)),
    case("--dev before the dev node ran", "keys show --dev", 1, "no dev home yet", "lightning run --dev"),
    case("--home that is not a home", "print-config --home {tmp}/nowhere", 1, "nowhere", "not a node home",
         "lightning init"),
    case("no node running", "account balance", 1, "no node is running", "lightning run", "--rpc URL",
         setup=(World.operator_home,)),
    case("the dev node runs, not this one", "account balance", 1, "but the dev node is", "add --dev",
         setup=(World.operator_home, World.dev_node_running)),
    case("node gone (stale ports.json)", "account balance", 1, "no node answers at", "lightning run",
         setup=(World.operator_node_running,)),
    case("--rpc nobody answers", f"account balance {ADDR} --rpc http://{{dead}}/rpc/v0", 1, "no node answers at",
         "lightning run"),
    case("init twice", "init --home {op}", 1, "already initialised", "--force", setup=(World.operator_home,)),
    case("keys generate over keys", "keys generate", 1, "keys exist", "--force", setup=(World.operator_home,)),
    case("missing key file", "run", 1, "node.key", "key file missing", "lightning keys generate",
         setup=(World.missing_node_key,)),
    case("key file open to others", "run", 1, "node.key", "chmod 600", setup=(World.open_node_key,)),
    case("bad config value", "run", 1, "config.toml", "http.port", "expected an integer", setup=(World.bad_config,)),
    # -- wrong port ------------------------------------------------------------------------------------------------
    case("run: port out of range", "run --dev --quic-port 70000", 2, "--quic-port", "0 = any free port"),
    case("run: negative port", "run --dev --http-port -1", 2, "--http-port", "0 = any free port"),
    case("run: bad listen host", "run --listen-host bad_host! --home {op}", 2, "--listen-host", "IP address",
         setup=(World.operator_home,)),
    case("cluster: port 0", "dev cluster --http-port 0", 2, "--http-port", "greater than or equal to 1"),
    case("registration: port 0", f"keys registration --owner {ADDR} --quic-port 0", 2, "--quic-port"),
    # -- wrong amount ----------------------------------------------------------------------------------------------
    case("amount: two dots", f"account transfer {ADDR} 1.2.3", 2, "AMOUNT", "12.5"),
    case("amount: zero", f"account transfer {ADDR} 0", 2, "AMOUNT", "more than 0 FLK"),
    case("amount: exponent", f"account mint {ADDR} 1e5", 2, "AMOUNT", "12.5"),
    case("amount: too many decimals", f"stake deposit 0.{'1' * 19}", 2, "AMOUNT", "decimal places"),
    case("amount: words", "stake unstake lots", 2, "AMOUNT", "12.5"),
    case("amount: negative", f"account transfer {ADDR} -- -5", 2, "AMOUNT", "non-negative"),
    case("recipient not hex", "account transfer zz 1", 2, "TO", "64 hex digits"),
    case("withdraw --to short", "stake withdraw --to abcd", 2, "--to", "64 hex digits"),
    case("lock 0 epochs", "stake lock 0", 2, "EPOCHS", "greater than or equal to 1"),
    # -- wrong option ----------------------------------------------------------------------------------------------
    case("unknown option", "run --bogus", 2, "No such option: --bogus", "lightning run --help"),
    case("unknown command", "sail", 2, "No such command", "lightning --help"),
    case("bad --log-format", "--log-format xml version", 2, "xml", "text", "json"),
    case("committee larger than the cluster", "dev cluster --nodes 3 --committee 5", 2, "--committee",
         "needs at least 5 nodes"),
    case("genesis committee larger", "dev genesis --nodes 2 --committee 3 --out {tmp}/g", 2, "--committee"),
    case("bad --host-base", "dev cluster --host-base 1.2.3", 2, "--host-base", "IPv4"),
    case("--host-base past loopback", "dev genesis --nodes 4 --host-base 127.255.255.254 --out {tmp}/g", 2,
         "--host-base", "loopback"),
    case("--keep and --fresh", "dev cluster --keep --fresh", 2, "--fresh", "--keep"),
    case("--nodes 0", "dev cluster --nodes 0", 2, "--nodes", "greater than or equal to 1"),
    case("bench: nothing to request", "bench --target http://127.0.0.1:1", 2, "--cid", "--root"),
    case("bench: bad target", f"bench --target ftp://x --root {ROOT}", 2, "--target", "http://host:port"),
    case("bench: a target typo", f"bench --target notaurl --root {ROOT}", 2, "--target", "http://host:port"),
    case("bench: nothing answers", f"bench --target http://127.0.0.1:1 --root {ROOT} --requests 3", 1,
         "no request succeeded", "connect"),
    case("bench: bad root", "bench --target http://127.0.0.1:1 --root zz", 2, "--root", "64 hex digits"),
    case("bench: zero concurrency", f"bench --target http://127.0.0.1:1 --root {ROOT} --concurrency 0", 2,
         "--concurrency"),
    case("simulate: unknown fault", "dev simulate consensus --faults meteor", 2, "--faults", "crash"),
    case("registration: bad owner", "keys registration --owner zz", 2, "--owner", "hex"),
    # -- wrong file ------------------------------------------------------------------------------------------------
    case("store: no such file", "dev store {tmp}/nope.bin --dev", 2, "FILE", "nope.bin", "no such file",
         setup=(World.dev_home,)),
    case("store: a directory", "dev store {tmp}/full --dev", 2, "FILE", "a directory, not a file",
         setup=(World.dev_home, World.files)),
    case("get: not a root", "dev get xyz --dev", 2, "ROOT", "64 hex digits", setup=(World.dev_home,)),
    case("genesis: --out is a file", "dev genesis --out {tmp}/file.bin", 2, "--out", "a file, not a directory",
         setup=(World.files,)),
    case("status: --rpc not a URL", "status --rpc ftp://x/rpc", 2, "--rpc", "http://HOST:PORT/rpc/v0"),
    case("status: --rpc bad IPv6", "status --rpc http://[::1", 2, "--rpc", "not a URL"),
    case("account: --rpc bad port", "account balance --rpc http://127.0.0.1:zz/rpc/v0", 2, "--rpc", "not a URL"),
    case("get: unknown root", f"dev get {ROOT} --dev", 1, "no object", ROOT, setup=(World.dev_home,)),
    case("get: -o into a missing directory", f"dev get {ROOT} --dev -o {{tmp}}/no/dir/out", 2, "-o/--output",
         "directory does not exist", setup=(World.dev_home,)),
    case("init: no such genesis", "init --genesis {tmp}/genesis.toml --home {op}", 2, "--genesis", "no such file"),
    case("transfer: --key missing", f"account transfer {ADDR} 1 --rpc http://{{dead}}/rpc/v0 --key {{tmp}}/k", 2,
         "--key", "no such file"),
    case("transfer: --key not a key", f"account transfer {ADDR} 1 --rpc http://{{dead}}/rpc/v0 --key {{tmp}}/bad.key",
         2, "--key", "64 hex digits", setup=(World.files,)),
    case("bench: --json into a missing directory", f"bench --target http://127.0.0.1:1 --root {ROOT} --json "
         "{tmp}/no/dir/r.json", 2, "--json", "directory does not exist"),
    case("genesis: --out not empty", "dev genesis --out {tmp}/full", 1, "not empty", "--out",
         setup=(World.files,)),
    case("cluster: --home not a cluster", "dev cluster --home {tmp}/cluster", 1, "not a cluster directory",
         "--home", setup=(World.not_a_cluster,)),
    case("cluster: an old cluster, no --keep", "dev cluster --home {tmp}/cluster", 1, "--keep", "--fresh",
         setup=(World.cluster,)),
]  # fmt: skip


@pytest.fixture
def dead_port() -> int:
    """A loopback port nothing listens on (bound then closed; the kernel does not hand it out again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    runner = CliRunner()
    with runner.isolation(env=env) as (out, err, _mixed):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        sys.stdout.flush()  # the isolation's text wrappers buffer
        sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_naming_the_thing_and_the_fix(
    c: Case, tmp_path: Path, dead_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, dead_rpc=f"127.0.0.1:{dead_port}")
    for step in c.setup:
        step(world)
    monkeypatch.chdir(tmp_path)
    env = {"HOME": str(tmp_path), "LIGHTNING_HOME": None, "COLUMNS": "200"}
    subst = {"tmp": str(tmp_path), "op": str(world.op), "dev": str(world.dev), "dead": world.dead_rpc}
    args = [a.format(**subst) for a in c.args]
    code, _, err = run(args, env)  # type: ignore[arg-type]
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("lightning: error: ")]
    assert code == c.code, err
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    for text in c.says:
        assert text.format(**subst) in errors[0], errors[0]


def test_every_bad_input_case_is_named_once() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.code for c in CASES} == {1, 2}


def test_verbose_shows_the_traceback_of_a_runtime_error(tmp_path: Path) -> None:
    code, _, err = run(["-v", "keys", "show"], {"HOME": str(tmp_path), "LIGHTNING_HOME": None})  # type: ignore[dict-item]
    assert code == 1 and "Traceback" in err and "HomeError" in err
    assert err.rstrip().splitlines()[-1].startswith(f"lightning: error: {tmp_path / '.lightning'}: not a node home")
