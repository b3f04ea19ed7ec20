"""`rnnlab run CONFIG.toml [--out DIR] [--set key=value ...]`: one run, recorded in a store.

`rnnlab train` is this command under the name a learner looks for (see cli/train.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from rnnlab.cli._metrics import summary
from rnnlab.experiments.executors import InlineExecutor
from rnnlab.experiments.prepared import load_run
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import run_sweep

DEFAULT_STORE = Path("results")


@click.command()
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULT_STORE,
    show_default=True,
    help="The store folder: runs.db and runs/<id>/.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field, e.g. --set train.lr=3e-4 (repeatable).",
)
@click.option("--retry-failed", is_flag=True, help="Run it again if it failed before.")
@click.option("--quiet", is_flag=True, help="No progress output (bar or lines).")
def run(
    config_path: Path, out: Path, overrides: tuple[str, ...], retry_failed: bool, quiet: bool
) -> None:
    """Train one run and record it in the store.

    The run is the one CONFIG.toml describes; its id is the config's hash. A finished run
    (same config, same id) is not run again; an interrupted one resumes from its last
    checkpoint. Exits 1 if the run failed (its error is in the store)."""
    prepared = load_run(config_path, overrides)  # validated: the worker builds its own
    with Store(out, write=True) as store:
        counts = run_sweep([prepared.config], store, InlineExecutor(quiet), retry_failed)
        result = store.get(prepared.config.run_id)
    where = f" at step {result.diverged_at}" if result.status == "diverged" else ""
    again = " (already in the store)" if not counts.total else ""
    detail = result.error if result.status == "failed" else summary(result.final, prepared.task)
    click.echo(f"run {result.id}: {result.status}{where}{again}; {detail}")
    click.echo(f"store {store.path}; checkpoints in {store.run_dir(result.id)}")
    in_store = "" if out == DEFAULT_STORE else f" --store {shlex.quote(str(out))}"
    click.echo(f"report: rnnlab report {result.id}{in_store}")
    if result.status == "failed":
        sys.exit(1)
