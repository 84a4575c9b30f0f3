"""``lightning dev simulate consensus``: run the deterministic consensus simulator over many seeds (registered on
``dev_app``). Exits 0 when every invariant held; on a violation prints the seed, the command that replays it and the
end of its trace, and exits 1."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from lightning.cli.dev import dev_app

__all__ = ["simulate_app"]

simulate_app = typer.Typer(help="Deterministic simulations.", no_args_is_help=True)
dev_app.add_typer(simulate_app, name="simulate")


@simulate_app.command("consensus")
def consensus(
    committee: Annotated[int, typer.Option("--committee", min=1, max=64, help="Committee size n.")] = 4,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="How many seeds to run.")] = 100,
    seed: Annotated[int, typer.Option("--seed", min=0, help="First seed.")] = 0,
    faults: Annotated[
        str, typer.Option("--faults", help="Comma-separated: crash,partition,delay,equivocate,byzvote (or none).")
    ] = "crash,partition,delay,equivocate,byzvote",
    end_s: Annotated[float, typer.Option("--time", min=1.0, help="Simulated seconds per seed.")] = 16.0,
    trace_lines: Annotated[int, typer.Option("--trace-lines", min=0, help="Trace lines printed on failure.")] = 60,
) -> None:
    """Run the consensus simulator for seeds SEED .. SEED+SEEDS-1 and check its invariants."""
    from lightning.consensus.sim import ALL_FAULTS, SimConfig, run_simulation

    chosen = tuple(f for f in faults.split(",") if f and f != "none")
    unknown = sorted(set(chosen) - set(ALL_FAULTS))
    if unknown:
        raise typer.BadParameter(f"unknown faults {unknown}; known: {','.join(ALL_FAULTS)}", param_hint="--faults")
    heights = []
    for s in range(seed, seed + seeds):
        cfg = SimConfig(committee=committee, seed=s, faults=chosen, end_s=end_s, fault_s=min(6.0, end_s * 0.4))
        result = run_simulation(cfg)
        if not result.ok:
            typer.echo(f"seed {s}: INVARIANT VIOLATED: {'; '.join(result.violations)}")
            typer.echo(f"byzantine members: {result.byzantine or 'none'}; heights {result.heights}")
            typer.echo(
                f"replay: lightning dev simulate consensus --committee {committee} --seeds 1 --seed {s} "
                f"--faults {','.join(chosen) or 'none'} --time {end_s}"
            )
            for line in result.trace[-trace_lines:] if trace_lines else []:
                typer.echo("  " + line)
            raise typer.Exit(1)
        heights.append(min(result.heights.values()))
    typer.echo(
        f"ok: {seeds} seeds, committee {committee}, faults {','.join(chosen) or 'none'}; "
        f"honest height min {min(heights)} / max {max(heights)}"
    )


@simulate_app.command("network")
def network(
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=256, help="Nodes in the network.")] = 8,
    committee: Annotated[int, typer.Option("--committee", min=1, max=64, help="Committee size.")] = 4,
    seconds: Annotated[float, typer.Option("--seconds", min=5.0, help="Simulated seconds per seed.")] = 60.0,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="How many seeds to run.")] = 10,
    seed: Annotated[int, typer.Option("--seed", min=0, help="First seed.")] = 0,
    faults: Annotated[
        str, typer.Option("--faults", help="Comma-separated: crash,partition,slow,lossy,skew (or none).")
    ] = "crash,partition,slow,lossy,skew",
    resume_bound_s: Annotated[
        float, typer.Option("--resume-bound", min=1.0, help="Seconds within which commits must resume after a heal.")
    ] = 30.0,
    node_logs: Annotated[bool, typer.Option("--node-logs", help="Show the nodes' warnings too.")] = False,
) -> None:
    """Run whole nodes over the simulated network for seeds SEED .. SEED+SEEDS-1, with a seeded schedule of faults
    and clients, checking the invariants of docs/simulation.md. Prints every failing seed with the command that
    replays it; exits 1 if any failed."""
    from lightning.sim.run import simulate
    from lightning.sim.scenario import FAULT_KINDS, plan

    if not node_logs:  # faults make nodes warn (dial failures, forwarding retries); the invariants are the verdict
        logging.getLogger("lightning").setLevel(logging.ERROR)

    if committee > nodes:
        raise typer.BadParameter(
            f"a committee of {committee} needs at least {committee} nodes", param_hint="--committee"
        )
    kinds = tuple(f for f in faults.split(",") if f and f != "none")
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise typer.BadParameter(f"unknown faults {unknown}; known: {','.join(FAULT_KINDS)}", param_hint="--faults")
    wall = sim = 0.0
    failed: list[int] = []
    for s in range(seed, seed + seeds):
        scenario = plan(s, nodes=nodes, committee=committee, seconds=seconds, kinds=kinds)
        result = simulate(scenario, resume_bound_s=resume_bound_s)
        wall += result.wall_seconds
        sim += result.sim_seconds
        line = (
            f"seed {s}: {'ok' if result.ok else 'FAILED'}  heights {min(result.heights.values(), default=0)}"
            f"..{max(result.heights.values(), default=0)}  commits {result.commits}  fetches {result.fetches_ok} ok"
            f" / {result.fetches_failed} failed  txs {result.txs_committed}/{result.txs_accepted} committed"
            f"  {result.sim_seconds:.0f} s simulated in {result.wall_seconds:.1f} s"
            + (f"  corrupted chunks sent {result.corrupted_chunks}" if scenario.byzantine else "")
            + (
                f"  client TTFB max {max(result.ttfb_ms):.1f} ms, TTLB max {max(result.ttlb_ms):.1f} ms (simulated)"
                if result.ttfb_ms
                else ""
            )
        )
        typer.echo(line)
        if not result.ok:
            typer.echo(f"  {result.violation}")
            typer.echo(f"  faults: {'; '.join(result.faults) or 'none'}")
            typer.echo(
                f"  replay: lightning dev simulate network --nodes {nodes} --committee {committee}"
                f" --seconds {seconds:g} --seeds 1 --seed {s} --faults {','.join(kinds) or 'none'}"
                f" --resume-bound {resume_bound_s:g}"
            )
            failed.append(s)
    if failed:
        typer.echo(f"FAILED: {len(failed)} of {seeds} seeds broke an invariant: {', '.join(map(str, failed))}")
        raise typer.Exit(1)
    typer.echo(
        f"ok: {seeds} seeds, {nodes} nodes, committee {committee}; {sim / max(wall, 1e-9):.1f} simulated s per s"
    )
