"""`rnnlab export --csv FILE [DIR] [--steps]`: the store's runs (or every metric) as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from rnnlab._atomic import atomic_write, output_path
from rnnlab.cli._select import status_option, where_option
from rnnlab.experiments.select import flatten, select
from rnnlab.experiments.store import Store

RUN_FIELDS = (
    "id",
    "status",
    "error",
    "steps_done",
    "diverged_at",
    "skipped",
    "attempts",
    "seconds",
)


@click.command()
@click.argument("folder", metavar="[DIR]", default=Path("results"), type=click.Path(path_type=Path))
@click.option(
    "--csv",
    "csv_file",
    required=True,
    metavar="FILE",
    help="The CSV file to write (a new or regular file, not one of the store's own).",
)
@click.option(
    "--steps",
    is_flag=True,
    help="One row per metric value (run_id, kind, step, name, value) instead.",
)
@status_option
@where_option
def export(
    folder: Path, csv_file: str, steps: bool, statuses: tuple[str, ...], where: tuple[str, ...]
) -> None:
    """Write a store's runs to a CSV file.

    The store is DIR [results]; one row per run, with its config fields (model.cell, ...)
    and final metrics (final.loss, ...). Floats are written as Python's repr, so they read
    back exactly; NaN as nan."""
    csv_path = output_path("--csv", csv_file)  # before the store is read
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    with Store(folder) as store:
        runs = select(store.runs(status=statuses), where)
        if steps:
            writer.writerow(("run_id", "kind", "step", "name", "value"))
            writer.writerows(store.metric_rows([run.id for run in runs]))
        else:
            configs = [flatten(run.config) for run in runs]
            fields = list(dict.fromkeys(k for c in configs for k in c))
            metrics = list(dict.fromkeys(k for run in runs for k in run.final))
            writer.writerow((*RUN_FIELDS, *fields, *(f"final.{m}" for m in metrics)))
            for run, config in zip(runs, configs, strict=True):
                row = [getattr(run, name) for name in RUN_FIELDS]
                row += [config.get(k) for k in fields] + [run.final.get(m) for m in metrics]
                writer.writerow(["" if v is None else v for v in row])
    atomic_write(csv_path, buffer.getvalue().encode())
    what = "metric values" if steps else "runs"
    rows = buffer.getvalue().count("\n") - 1
    click.echo(f"{rows} {what} written to {csv_path}")
