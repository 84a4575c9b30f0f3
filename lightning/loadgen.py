"""``lightning bench``: an HTTP load generator on trio + h11 reporting the seed's key metrics.

For every request: TTFB (request sent → first response byte) and TTFL (→ last body byte), in total and per target
node (the "node request distribution"). Requests go round-robin over targets × objects; ``concurrency`` workers each
keep one keep-alive connection per target. Errors (connection failures, timeouts, non-2xx statuses) are counted by
kind and never stop the run.
"""

from __future__ import annotations

import itertools
import math
import sys
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h11
import trio

from lightning.errors import LightningError

__all__ = ["BenchError", "LoadReport", "Target", "run_load"]

RECV_BYTES = 256 * 1024


class BenchError(LightningError):
    """Bad load-generator arguments."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port
        except ValueError:
            port = None
        # without a scheme, a port is required: a typo such as `notaurl` must not become http://notaurl:80
        if parts.scheme != "http" or not parts.hostname or (port is None and "://" not in url):
            raise BenchError(f"--target {url!r}: need an http://host:port URL")
        return cls(url, parts.hostname, port or 80, parts.path.rstrip("/"))


@dataclass
class _Samples:
    ttfb: list[float] = field(default_factory=list)
    ttfl: list[float] = field(default_factory=list)
    bytes: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return len(self.ttfl)

    def summary(self, elapsed: float) -> dict[str, Any]:
        return {
            "requests": self.ok + sum(self.errors.values()),
            "ok": self.ok,
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(sorted(self.errors.items())),
            "bytes": self.bytes,
            "throughput_mb_s": round(self.bytes / elapsed / 1e6, 3) if elapsed > 0 else 0.0,
            "requests_per_s": round(self.ok / elapsed, 1) if elapsed > 0 else 0.0,
            "ttfb_ms": _percentiles(self.ttfb),
            "ttfl_ms": _percentiles(self.ttfl),
        }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000, 3)

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99)}


@dataclass
class LoadReport:
    elapsed_s: float
    total: dict[str, Any]
    nodes: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"elapsed_s": round(self.elapsed_s, 3), "total": self.total, "nodes": self.nodes}

    def lines(self) -> list[str]:
        def row(name: str, s: dict[str, Any]) -> str:
            b, l_ = s["ttfb_ms"], s["ttfl_ms"]
            return (
                f"{name:<28} {s['ok']:>7} {s['errors']:>6}  "
                f"{_ms(b['p50'])} {_ms(b['p90'])} {_ms(b['p99'])}  "
                f"{_ms(l_['p50'])} {_ms(l_['p90'])} {_ms(l_['p99'])}  {s['throughput_mb_s']:>9.1f}"
            )

        out = [
            f"{'node':<28} {'ok':>7} {'errors':>6}  {'ttfb p50':>8} {'p90':>8} {'p99':>8}  "
            f"{'ttfl p50':>8} {'p90':>8} {'p99':>8}  {'MB/s':>9}"
        ]
        out += [row(name, s) for name, s in self.nodes.items()]
        out.append(row("total", self.total))
        kinds = self.total["errors_by_kind"]
        if kinds:
            out.append("errors: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
        return out


def _ms(v: float | None) -> str:
    return f"{'-':>8}" if v is None else f"{v:>8.2f}"


class _Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)


async def _one_request(
    conns: dict[Target, _Conn], target: Target, path: str, timeout_s: float
) -> tuple[float, float, int]:
    """One GET on a kept-alive connection; returns (ttfb, ttfl, body bytes). Raises _RequestFailed."""
    started = trio.current_time()
    with trio.move_on_after(timeout_s) as scope:
        conn = conns.get(target)
        if conn is None:
            try:
                stream = await trio.open_tcp_stream(target.host, target.port)
            except OSError as exc:
                raise _RequestFailed("connect") from exc
            conn = conns[target] = _Conn(stream)
        req = h11.Request(method="GET", target=target.prefix + path, headers=[("host", f"{target.host}:{target.port}")])
        try:
            await conn.stream.send_all(conn.h11.send(req) + conn.h11.send(h11.EndOfMessage()))
            ttfb: float | None = None
            status = 0
            size = 0
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    data = await conn.stream.receive_some(RECV_BYTES)
                    if ttfb is None and data:
                        ttfb = trio.current_time() - started
                    conn.h11.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise _RequestFailed("closed")
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            await _drop(conns, target)
            raise _RequestFailed("reset") from exc
        except h11.RemoteProtocolError as exc:
            await _drop(conns, target)
            raise _RequestFailed("protocol") from exc
        ttfl = trio.current_time() - started
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
        else:
            await _drop(conns, target)
        if not 200 <= status < 300:
            raise _RequestFailed(f"http_{status}")
        return ttfb if ttfb is not None else ttfl, ttfl, size
    assert scope.cancelled_caught
    await _drop(conns, target)
    raise _RequestFailed("timeout")


async def _drop(conns: dict[Target, _Conn], target: Target) -> None:
    conn = conns.pop(target, None)
    if conn is not None:
        with trio.CancelScope(shield=True):
            await conn.stream.aclose()


class _RequestFailed(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


async def run_load(
    targets: list[str],
    paths: list[str],
    *,
    requests: int | None,
    concurrency: int,
    duration_s: float | None = None,
    timeout_s: float = 30.0,
    progress: Callable[[int, int | None, float], None] | None = None,
) -> LoadReport:
    """Run the load; stop after ``requests`` requests or ``duration_s`` seconds, whichever comes first."""
    if not targets or not paths:
        raise BenchError("need at least one --target and one --cid/--root")
    if requests is None and duration_s is None:
        raise BenchError("give --requests, --duration, or both")
    if concurrency < 1 or (requests is not None and requests < 1):
        raise BenchError("--requests and --concurrency must be at least 1")
    parsed = [Target.parse(t) for t in targets]
    plan = itertools.product(parsed, paths)
    order = list(plan)
    counter = itertools.count()
    per_node = {t.url: _Samples() for t in parsed}
    total = _Samples()
    done = 0
    started = trio.current_time()

    async def worker() -> None:
        nonlocal done
        conns: dict[Target, _Conn] = {}
        try:
            while True:
                i = next(counter)
                if requests is not None and i >= requests:
                    return
                target, path = order[i % len(order)]
                samples = per_node[target.url]
                try:
                    ttfb, ttfl, size = await _one_request(conns, target, path, timeout_s)
                except _RequestFailed as exc:
                    samples.errors[exc.kind] += 1
                    total.errors[exc.kind] += 1
                else:
                    for s in (samples, total):
                        s.ttfb.append(ttfb)
                        s.ttfl.append(ttfl)
                        s.bytes += size
                done += 1
        finally:
            for target in list(conns):
                await _drop(conns, target)

    async def report_progress() -> None:
        assert progress is not None
        while True:
            progress(done, requests, trio.current_time() - started)
            await trio.sleep(0.2)

    async with trio.open_nursery() as nursery:
        if duration_s is not None:
            nursery.cancel_scope.deadline = started + duration_s
        if progress is not None:
            nursery.start_soon(report_progress)
        async with trio.open_nursery() as workers:
            for _ in range(concurrency):
                workers.start_soon(worker)
        nursery.cancel_scope.cancel()
    elapsed = trio.current_time() - started
    if progress is not None:
        progress(done, requests, elapsed)
    return LoadReport(elapsed, total.summary(elapsed), {url: s.summary(elapsed) for url, s in per_node.items()})


def terminal_progress(done: int, total: int | None, elapsed: float) -> None:
    if not sys.stderr.isatty():
        return
    if total:
        width = 30
        filled = int(width * min(done, total) / total)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r[{bar}] {done}/{total}  {elapsed:6.1f} s")
    else:
        sys.stderr.write(f"\r{done} requests  {elapsed:6.1f} s")
    sys.stderr.flush()
