"""`rnnlab sweep SWEEP.toml [--workers N] [--executor local|ray] [--address ADDR] [--out DIR]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from rnnlab.experiments.executors import EXECUTORS, make_executor
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import MAX_POINTS, Counts, load_sweep, run_sweep


def _progress(enabled: bool, stream: Any) -> Any:
    from rnnlab.train.progress import sweeping

    return sweeping(enabled, stream)  # a bar on a terminal, else a plain line every few s


def describe(counts: Counts) -> str:
    return (
        f"done {counts.done} · running {counts.running} · failed {counts.failed} · "
        f"diverged {counts.diverged}"
    )


@click.command()
@click.argument("sweep_path", metavar="SWEEP.toml", type=click.Path(path_type=Path))
@click.option("--workers", type=int, help="Runs at once [the number of cores; Ray: its CPUs].")
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default="local",
    show_default=True,
    help="A local process pool, or Ray.",
)
@click.option("--address", help="Join the Ray cluster at ADDR (default: start a local Ray).")
@click.option("--retry-failed", is_flag=True, help="Run failed runs again.")
@click.option(
    "--max-points",
    type=click.IntRange(min=1),
    default=MAX_POINTS,
    show_default=True,
    help="The most points a grid may have (the product of its axes' lengths).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="The store folder: runs.db and runs/<id>/.",
)
@click.option("--quiet", is_flag=True, help="No progress output (bar or lines).")
def sweep(
    sweep_path: Path,
    workers: int | None,
    executor: str,
    address: str | None,
    retry_failed: bool,
    max_points: int,
    out: Path,
    quiet: bool,
) -> None:
    """Run every point of a sweep's grid that the store has not finished.

    Rerunning the same command after a crash skips finished runs, resumes interrupted ones
    from their last checkpoint and starts the rest. Exits 1 if a run failed now."""
    grid = load_sweep(sweep_path, max_points)  # every point validated before anything is written
    pool = make_executor(executor, workers, address)
    try:
        with Store(out, write=True) as store, _progress(not quiet, sys.stderr) as bar:
            task = bar.add_task("sweep", total=None, counts="")

            def show(counts: Counts) -> None:
                bar.update(
                    task, total=counts.total, completed=counts.completed, counts=describe(counts)
                )

            counts = run_sweep(grid.configs, store, pool, retry_failed, on_change=show)
    finally:
        pool.close()
    skipped = f"; {counts.finished_before} already finished" if counts.finished_before else ""
    if counts.failed_before:
        skipped += f", {counts.failed_before} failed before (--retry-failed reruns them)"
    click.echo(
        f"sweep: {len(grid.configs)} runs, {counts.total} run now: {describe(counts)}"
        f"{skipped}; store {store.path}"
    )
    if counts.failed:
        sys.exit(1)
