"""`rnnlab show RUN_ID [DIR]`: one run's config, status, evaluations and training summary."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click

from rnnlab.cli import _metrics
from rnnlab.cli._metrics import cell
from rnnlab.experiments.store import Store


def when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


@click.command()
@click.argument("run_id")
@click.argument("folder", metavar="[DIR]", default=Path("results"), type=click.Path(path_type=Path))
def show(run_id: str, folder: Path) -> None:
    """Show one run: its config, status, evaluations and training.

    RUN_ID is a run id, or a unique prefix of one, in the store at DIR [results]."""
    from rich.console import Console
    from rich.table import Table

    with Store(folder) as store:
        run = store.get(run_id)
        evals = store.metrics(run.id, "eval")
        train = store.metrics(run.id, "train")
        snapshot_steps = store.diagnostic_steps(run.id)  # listed, not read
        run_dir = store.run_dir(run.id)
    console = Console()
    console.print(f"[bold]run {run.id}[/]  {run.status}" + (f": {run.error}" if run.error else ""))
    seconds = f"{run.seconds:.2f} s" if run.seconds is not None else "-"
    console.print(
        f"created {when(run.created_at)}  started {when(run.started_at)}  "
        f"finished {when(run.finished_at)}  attempts {run.attempts}  last attempt {seconds}"
    )
    steps = f"steps {cell(run.steps_done)}"
    if run.diverged_at is not None:
        steps += f", diverged at step {run.diverged_at}"
    if run.skipped:
        steps += f", {run.skipped} non-finite steps skipped"
    console.print(f"{steps}; checkpoints in {run_dir}")
    for section, values in run.config.items():
        console.print(f"[bold]\\[{section}][/]")
        for key, value in values.items():
            if value is not None:
                console.print(f"  {key} = {json.dumps(value)}")
    if evals:
        table = Table(title="evaluations", title_justify="left")
        names = _metrics.shown(evals)
        table.add_column("step", justify="right")
        for name in names:
            table.add_column(_metrics.header(name, [run.config]), justify="right")
        by_step: dict[int, dict[str, float]] = {}
        for name, series in evals.items():
            for step, value in series:
                by_step.setdefault(step, {})[name] = value
        for step, values in sorted(by_step.items()):
            table.add_row(str(step), *(_metrics.value(n, values.get(n)) for n in names))
        console.print(table)
    if train:
        table = Table(title="training steps", title_justify="left")
        for name in ("metric", "first", "last", "min", "max"):
            table.add_column(name, justify="left" if name == "metric" else "right")
        for name, series in train.items():
            values = [v for _, v in series]
            finite = [v for v in values if math.isfinite(v)] or [math.nan]
            table.add_row(
                name, *(cell(v) for v in (values[0], values[-1], min(finite), max(finite)))
            )
        console.print(table)
    if snapshot_steps:
        console.print(
            f"diagnostics: {len(snapshot_steps)} snapshots at steps "
            f"{', '.join(str(s) for s in snapshot_steps)}"
        )
