"""``lightning dev simulate consensus``: run the deterministic consensus simulator over many seeds (registered on
``dev_app``). Exits 0 when every invariant held; on a violation prints the seed, the command that replays it and the
end of its trace, and exits 1."""

from __future__ import annotations

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
