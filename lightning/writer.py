"""One long-lived writer thread per LMDB environment.

LMDB write transactions belong to the thread that opened them, and a write blocks the caller for disk I/O, so the
trio thread never writes: it hands a function to the environment's writer thread and awaits the result. Jobs run
one at a time in submission order. In simulation (``inline=True``) jobs run on the trio thread instead, because an
autojump clock would leap ahead while a thread works.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import trio

__all__ = ["Job", "WriterThread"]

T = TypeVar("T")


class WriterThread:
    def __init__(self, name: str, *, inline: bool = False) -> None:
        self.name = name
        self.inline = inline
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.inline or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish queued jobs, then end the thread (blocking)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def submit(self, fn: Callable[..., T], *args: Any) -> Job[T]:
        """Queue ``fn(*args)`` without waiting; ``await job.wait()`` for its result. Lets the caller overlap work
        with the thread (e.g. send one batch while the next is hashed; blake3 releases the GIL)."""
        job: Job[T] = Job()
        if self.inline:
            job._run(fn, args)
            job._done.set()
            return job
        assert self._thread is not None, f"{self.name} is not running"
        token = trio.lowlevel.current_trio_token()

        def run() -> None:
            job._run(fn, args)
            try:
                token.run_sync_soon(job._done.set)
            except trio.RunFinishedError:
                pass

        self._jobs.put(run)
        return job

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the writer thread and return its result (or raise its exception).

        If the caller is cancelled the job still runs to completion (a transaction is never torn); its result is
        dropped. Callers that must clean up after a cancelled write do so with another (shielded) call, which
        runs after it."""
        if self.inline:
            await trio.lowlevel.checkpoint()
            return fn(*args)
        assert self._thread is not None, f"{self.name} is not running"
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: dict[str, Any] = {}

        def job() -> None:
            try:
                box["result"] = fn(*args)
            except BaseException as exc:  # handed back to the awaiting task
                box["error"] = exc
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        self._jobs.put(job)
        await done.wait()
        if "error" in box:
            raise box["error"]
        return box["result"]  # type: ignore[no-any-return]


class Job(Generic[T]):
    """A function queued on a :class:`WriterThread`."""

    def __init__(self) -> None:
        self._done = trio.Event()
        self._result: T | None = None
        self._error: BaseException | None = None

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            self._result = fn(*args)
        except BaseException as exc:  # handed to whoever waits
            self._error = exc

    async def wait(self) -> T:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]
