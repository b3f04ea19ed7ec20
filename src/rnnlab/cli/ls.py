"""`rnnlab ls [DIR] [--status S] [--where key=value] [--sort NAME]`: a table of runs."""

from __future__ import annotations

from pathlib import Path

import click

from rnnlab.cli import _metrics
from rnnlab.cli._metrics import cell
from rnnlab.cli._select import status_option, where_option
from rnnlab.experiments.select import flatten, select, sort
from rnnlab.experiments.store import Run, Store

STYLE = {"done": "green", "diverged": "yellow", "failed": "red", "running": "cyan"}


def varying(runs: list[Run]) -> list[str]:
    """The config fields whose values differ among `runs` (a sweep's axes, typically)."""
    tables = [flatten(run.config) for run in runs]
    keys = list(dict.fromkeys(k for t in tables for k in t))
    return [k for k in keys if len({repr(t.get(k)) for t in tables}) > 1]


@click.command(name="ls")
@click.argument("folder", metavar="[DIR]", default=Path("results"), type=click.Path(path_type=Path))
@status_option
@where_option
@click.option(
    "--sort",
    "sort_by",
    metavar="NAME",
    help="Sort by a column: id, status, steps, a config field or a final metric.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many runs.")
def ls(
    folder: Path,
    statuses: tuple[str, ...],
    where: tuple[str, ...],
    sort_by: str | None,
    limit: int | None,
) -> None:
    """List the runs in a store.

    The store is DIR [results]; a row per run: its id, status, the config fields that vary
    between runs, steps done and final metrics."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    with Store(folder) as store:
        runs = select(store.runs(status=statuses), where)
    if sort_by:
        runs = sort(runs, sort_by)
    shown = runs[:limit] if limit else runs
    fields = varying(runs)
    metrics = list(dict.fromkeys(k for run in runs for k in _metrics.shown(run.final)))
    table = Table(title=f"{len(shown)} of {len(runs)} runs in {store.path}", title_justify="left")
    table.add_column("id", no_wrap=True, min_width=12)  # never cut: `rnnlab show` needs it
    table.add_column("status", no_wrap=True)
    for name in fields:
        table.add_column(name)
    table.add_column("steps", justify="right")
    for name in metrics:
        table.add_column(_metrics.header(name, (run.config for run in runs)), justify="right")
    if any(run.error for run in shown):
        table.add_column("error", overflow="fold")
    for run in shown:
        config = flatten(run.config)
        row: list[str | Text] = [run.id, Text(run.status, style=STYLE.get(run.status, ""))]
        row += [cell(config.get(k)) for k in fields]
        row += [cell(run.steps_done)] + [_metrics.value(k, run.final.get(k)) for k in metrics]
        if table.columns[-1].header == "error":
            row.append(run.error or "")
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped: the whole table, however wide, for grep and friends
        console = Console(width=max(console.width, 1000))
    console.print(table)
