"""Every `lightning …` command line in the README and the docs parses with the real CLI.

Lines come from ```sh blocks (each line starting with ``lightning``, continuation lines joined, comments dropped)
and from inline code spans that start with ``lightning``. Placeholders are made concrete first (``<root>`` → a
word, ``[--json report.json]`` → ``--json report.json``), then each line goes through the command tree with click's
parser only: a subcommand, option or option value that does not exist fails here instead of on an operator's
terminal. Nothing is invoked.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer import _click  # typer vendors click: its parser and exceptions
from typer.core import TyperGroup
from typer.testing import CliRunner

from lightning.cli.main import app

ROOT = Path(__file__).parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Must always be covered: the operator's two entry points.
REQUIRED = [ROOT / "README.md", ROOT / "docs" / "operator.md"]

_FENCE = re.compile(r"^```(\w*)\s*$")
_INLINE = re.compile(r"`(lightning [^`]+)`")
_PLACEHOLDER = re.compile(r"<[^<>]*>")
_SUDO = re.compile(r"^sudo (-u \S+ )?")
_INSTALLED = re.compile(r"^\S*/lightning ")
_REPEAT = re.compile(r"\[[^\]]*(…|\.\.\.)[^\]]*\]")
_ALTERNATIVES = re.compile(r"^[a-z-]+(/[a-z-]+)+$")
_WORD_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class DocLine:
    path: Path
    lineno: int
    text: str
    block: bool  # from a shell block (a complete command line), not an inline span in prose

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.lineno}: {self.text}"


def _strip_comment(line: str) -> str:
    # Shell comments in the docs start with two spaces or more before '#'; '#' inside a word (a URL fragment) stays.
    return re.split(r"\s#\s|\s#$", " " + line, maxsplit=1)[0].strip()


def doc_command_lines(path: Path) -> list[DocLine]:
    out: list[DocLine] = []
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        m = _FENCE.match(raw.strip())
        if m:
            fence = None if fence is not None else (m.group(1) or "text")
            continue
        if fence in ("sh", "bash", "console", "shell"):
            line = _strip_comment(raw)
            if pending is not None:
                start, text = pending
                text += " " + line.rstrip("\\").strip()
                pending = (start, text) if line.endswith("\\") else None
                if pending is None:
                    out.append(DocLine(path, start, text, True))
                continue
            line = _SUDO.sub("", line.removeprefix("$ "))
            line = _INSTALLED.sub("lightning ", line)  # /opt/lightning/venv/bin/lightning run …
            if line.startswith("lightning "):
                if line.endswith("\\"):
                    pending = (lineno, line.rstrip("\\").strip())
                else:
                    out.append(DocLine(path, lineno, line, True))
        elif fence is None:
            out.extend(DocLine(path, lineno, m.group(1), False) for m in _INLINE.finditer(raw))
    return out


def concrete_argv(line: str) -> list[str]:
    """The line's arguments after ``lightning``, placeholders made concrete."""
    text = line.split("&&")[0].split(" | ")[0]
    text = _REPEAT.sub(" ", text)  # `[--peer …]`: "and more of the same"
    text = _PLACEHOLDER.sub("X", text).replace("[", " ").replace("]", " ")
    text = text.replace("…", " ").replace("...", " ")
    argv = shlex.split(text)
    assert argv[0] == "lightning"
    # `A|B` alternatives in a value: take the first.
    return [a.split("|")[0] if not a.startswith("-") or "=" in a else a for a in argv[1:]]


def parse_only(argv: list[str]) -> list[str]:
    """Walk the command tree and parse ``argv`` the way ``lightning`` would, without invoking anything. Returns the
    command path (e.g. ``["dev", "store"]``); raises click's UsageError for an unknown command, option or value."""
    cmd: _click.Command = typer.main.get_command(app)
    ctx: _click.Context | None = None
    name = "lightning"
    path: list[str] = []
    args = list(argv)
    while True:
        if isinstance(cmd, TyperGroup) and not args:
            return path  # a group named on its own (prose like `lightning dev`)
        ctx = cmd.make_context(name, args, parent=ctx)
        if not isinstance(cmd, TyperGroup):
            return path
        args = [*ctx._protected_args, *ctx.args]
        if not args:
            return path
        sub_name, sub, args = cmd.resolve_command(ctx, args)
        assert sub is not None and sub_name is not None
        name, cmd = sub_name, sub
        path.append(sub_name)


ALL_LINES = [line for path in DOCS for line in doc_command_lines(path)]


def test_the_operator_docs_have_command_lines() -> None:
    for path in REQUIRED:
        assert any(line.path == path for line in ALL_LINES), f"no `lightning …` lines found in {path}"


def variants(argv: list[str]) -> list[list[str]]:
    """``dev store/get/blockstore stats`` in prose names three commands: one argv each."""
    for i, arg in enumerate(argv):
        if arg.startswith("-"):
            break
        if _ALTERNATIVES.match(arg):
            return [v for alt in arg.split("/") for v in variants([*argv[:i], alt, *argv[i + 1 :]])]
    return [argv]


def check_parses(line: DocLine, argv: list[str]) -> None:
    try:
        try:
            parse_only(argv)
        except _click.exceptions.BadParameter:
            # A placeholder word (N, EPOCHS) where a number goes: the option exists; try a number.
            parse_only(["1" if _WORD_PLACEHOLDER.match(a) else a for a in argv])
    except _click.exceptions.MissingParameter as exc:
        if line.block:
            pytest.fail(f"{line}\n  parsed as {argv}: {exc.format_message()}")
        # Prose naming a command (`lightning stake deposit`) without its arguments: the command exists.
    except _click.exceptions.UsageError as exc:
        pytest.fail(f"{line}\n  parsed as {argv}: {exc.format_message()}")


@pytest.mark.parametrize("line", ALL_LINES, ids=str)
def test_doc_command_line_parses(line: DocLine) -> None:
    for argv in variants(concrete_argv(line.text)):
        check_parses(line, argv)


def test_parse_only_rejects_what_does_not_exist() -> None:
    for argv in (["nosuch"], ["run", "--no-such-flag"], ["dev", "nosuch"], ["run", "--quic-port", "notanumber"]):
        with pytest.raises(_click.exceptions.UsageError):
            parse_only(argv)
    assert parse_only(["-v", "dev", "store", "FILE", "--pin"]) == ["dev", "store"]


def _command_paths() -> list[list[str]]:
    out: list[list[str]] = []

    def walk(cmd: _click.Command, path: list[str]) -> None:
        out.append(path)
        if isinstance(cmd, TyperGroup):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "lightning")
def test_every_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
