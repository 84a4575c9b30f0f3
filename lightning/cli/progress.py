"""Progress bars (rich, on stderr) for long CLI work: only on a terminal, only for work big enough to wait for."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["PROGRESS_MIN_BYTES", "byte_progress", "count_progress", "sync_progress"]

PROGRESS_MIN_BYTES = 64 * 1024 * 1024


def _console() -> Console | None:
    if not sys.stderr.isatty():
        return None
    from rich.console import Console

    return Console(stderr=True)


@contextlib.contextmanager
def byte_progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)``; draws a bar with bytes, speed and time left when stderr is a terminal and the
    work is at least :data:`PROGRESS_MIN_BYTES` (or of unknown size), else does nothing."""
    console = _console()
    if console is None or (total is not None and total < PROGRESS_MIN_BYTES):
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@contextlib.contextmanager
def count_progress(label: str) -> Iterator[Callable[[int, int | None, float], None]]:
    """Yield ``update(done, total, elapsed_s)`` (the load generator's progress callback): a bar of requests when
    stderr is a terminal, else nothing."""
    console = _console()
    if console is None:
        yield lambda done, total, elapsed: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None, elapsed: float) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def sync_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """Yield ``update(head_height, best_known_height)``: a bar of blocks executed out of those peers have shown, when
    stderr is a terminal, else nothing."""
    console = _console()
    if console is None:
        yield lambda head, best: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(head: int, best: int) -> None:
            progress.update(task, completed=head, total=max(head, best))

        yield update
