"""`rnnlab report RUN_DIR|RUN_ID|SWEEP_DIR [--out FILE] [--figures DIR] [--store DIR]`."""

from __future__ import annotations

from pathlib import Path

import click

from rnnlab._atomic import output_path
from rnnlab.cli._target import store_option


@click.command()
@click.argument("target", metavar="RUN_DIR|RUN_ID|SWEEP_DIR")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="The HTML file [report.html in the run folder or the store folder].",
)
@click.option(
    "--figures",
    type=click.Path(path_type=Path),
    help="Also save every figure as DIR/<name>.png and .svg (a sweep's runs in DIR/<id>/).",
)
@store_option
def report(target: str, out: Path | None, figures: Path | None, store: Path) -> None:
    """Write an HTML report of a run or a sweep.

    The page is self-contained: it reads offline and prints. TARGET is a run id (or a
    unique prefix) in the store at --store, a run folder (with history.json, e.g.
    results/runs/<id>), or a store folder (with runs.db) for a report on all its runs."""
    from rnnlab.report.data import resolve
    from rnnlab.report.objects import Run, Sweep

    if out is not None:
        output_path("--out", out)  # before anything is read or drawn
    kind, path = resolve(target, store)
    obj: Run | Sweep
    if kind == "sweep":
        obj = Sweep(path)
        default = path / "report.html"
    elif kind == "run":
        obj = Run(path)
        default = path / "report.html"
    else:
        obj = Run(target, store=path)
        default = path / "runs" / obj.data.id / "report.html"
    written = obj.save(out or default)
    if figures is not None:
        saved = obj.save_figures(figures)
        click.echo(f"figures: {len(saved)} files in {figures}")
    click.echo(f"report: {written}")
