"""What the README and the operator docs promise, checked against the code: files they name exist, the client
snippet runs as written, a missing genesis gets a hint, and the systemd unit matches what the node handles."""

from __future__ import annotations

import http.server
import inspect
import re
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from lightning.blockstore.tree import encode_proof_stream, hash_block, split_blocks, tree_from_block_hashes
from lightning.blockstore.verify import MEDIA_TYPE
from lightning.bootstrap import init_home
from lightning.cli import main as cli_main
from lightning.config import Config
from lightning.home import Home
from lightning.http.config import HttpLimits
from lightning.net.config import NetConfig
from tests.unit.core.test_docs_commands import parse_only

ROOT = Path(__file__).parents[3]
README = ROOT / "README.md"
OPERATOR = ROOT / "docs" / "operator.md"
UNIT = ROOT / "examples" / "systemd" / "lightning.service"
# The newcomer's path (other docs name files of work in progress).
PATH_CHECKED = [README, OPERATOR, ROOT / "docs" / "services.md", ROOT / "docs" / "genesis.md"]

# A file (with an extension) or directory (trailing slash) in the repository; not a domain tag like lightning/tx/v1.
_REPO_PATH = re.compile(r"(?<![\w/.~-])((?:docs|examples|lightning|bench|docker|tests)/(?:[\w./-]*\.\w+|[\w./-]*/))")


def _fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.M | re.S)


@pytest.mark.parametrize("doc", PATH_CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_paths_named_in_docs_exist(doc: Path) -> None:
    missing = sorted(
        {p for p in _REPO_PATH.findall(doc.read_text()) if "<" not in p and "*" not in p and not (ROOT / p).exists()}
    )
    assert not missing, f"{doc.relative_to(ROOT)} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", PATH_CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_in_docs_resolve(doc: Path) -> None:
    targets = re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", doc.read_text())
    missing = sorted({t for t in targets if not (doc.parent / t).exists()})
    assert not missing, f"{doc.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_readme_names_no_genesis_file_that_does_not_exist() -> None:
    text = README.read_text()
    assert "network-genesis.toml" not in text
    assert "lightning init --genesis FILE" in text
    assert (ROOT / "docs" / "genesis.example.toml").exists()


def test_run_without_a_genesis_says_where_to_put_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = Home(tmp_path / "h")
    init_home(home, dev=False, force=False)
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["run", "--home", str(home.root)])
    assert exc.value.code == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"lightning: error: {home.root / 'genesis.toml'}: no genesis;")
    assert "lightning init --genesis FILE" in line and "lightning run --dev" in line


class _ProofStreamHandler(http.server.BaseHTTPRequestHandler):
    objects: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        data = self.objects.get(self.path.rsplit("/", 1)[-1])
        if data is None or self.headers.get("Accept") != MEDIA_TYPE:
            self.send_error(404)
            return
        blocks = [bytes(b) for b in split_blocks(data)]
        tree = tree_from_block_hashes([hash_block(b) for b in blocks], len(data))
        body = b"".join(bytes(c) for c in encode_proof_stream(tree, lambda i: blocks[i]))
        self.send_response(200)
        self.send_header("Content-Type", MEDIA_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def node_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProofStreamHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def test_the_readme_client_snippet_runs_as_written(
    node_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 2500  # three blocks, the last one short
    tree = tree_from_block_hashes([hash_block(bytes(b)) for b in split_blocks(data)], len(data))
    root = tree.root.hex()
    _ProofStreamHandler.objects[root] = data
    [snippet] = [s for s in _fenced(README.read_text(), "python") if "fetch(" in s]
    monkeypatch.chdir(tmp_path)
    exec(snippet.replace("http://NODE:4220", node_url), {"root": root})
    assert (tmp_path / "content.bin").read_bytes() == data


def _unit() -> dict[str, list[str]]:
    """``Key`` → its values in the unit file (systemd allows a key more than once)."""
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_unit_restarts_on_failure_and_stops_the_way_the_node_handles() -> None:
    unit = _unit()
    assert unit["Restart"] == ["on-failure"]  # exit 0 (a clean stop) is not restarted
    [kill_signal] = unit["KillSignal"]
    assert kill_signal in inspect.getsource(cli_main._watch_signals)  # the signal the CLI turns into a clean stop
    grace_s = Config().node.shutdown_grace_s
    assert float(unit["TimeoutStopSec"][0]) >= 3 * grace_s


def test_systemd_unit_limits_fit_the_node() -> None:
    unit = _unit()
    # Every client, RPC and peer connection may be a descriptor, plus LMDB files and the UDP socket.
    needed = 2 * HttpLimits().max_connections + NetConfig().max_connections + 256
    assert int(unit["LimitNOFILE"][0]) >= needed
    assert "MemoryMax" in unit
    assert "LimitAS" not in unit  # LMDB's sparse maps need address space


def test_systemd_unit_runs_a_command_that_exists_on_its_writable_home() -> None:
    unit = _unit()
    [exec_start] = unit["ExecStart"]
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "lightning"
    assert parse_only(argv[1:]) == ["run"]
    home = argv[argv.index("--home") + 1]
    assert home in unit["ReadWritePaths"]
    # And the operator guide walks through installing it.
    assert "examples/systemd/lightning.service" in OPERATOR.read_text()


def test_operator_docs_warn_about_running_one_node_twice() -> None:
    text = OPERATOR.read_text()
    assert "## One node, one process" in text
    assert "slashed" in text and "lightning_net_duplicate_key_signs_total" in text
    assert "One node, one process" in README.read_text()
