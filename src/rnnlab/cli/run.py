"""`rnnlab run CONFIG.toml [--out DIR] [--set key=value ...]`: one run, recorded in a store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rnnlab.experiments.config import load_config
from rnnlab.experiments.executors import InlineExecutor
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import run_sweep


def summary(final: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in final.items())


@click.command()
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results"),
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
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(
    config_path: Path, out: Path, overrides: tuple[str, ...], retry_failed: bool, quiet: bool
) -> None:
    """Train one run, as CONFIG.toml describes, and record it in the store at --out.

    A finished run (same config, same id) is not run again; an interrupted one resumes.
    Exits 1 if the run failed (its error is in the store)."""
    config = load_config(config_path, list(overrides))
    with Store(out, write=True) as store:
        counts = run_sweep([config], store, InlineExecutor(quiet), retry_failed)
        result = store.get(config.run_id)
    where = f" at step {result.diverged_at}" if result.status == "diverged" else ""
    again = " (already in the store)" if not counts.total else ""
    detail = result.error if result.status == "failed" else summary(result.final)
    click.echo(f"run {result.id}: {result.status}{where}{again}; {detail}")
    click.echo(f"store {store.path}; checkpoints in {store.run_dir(result.id)}")
    if result.status == "failed":
        sys.exit(1)
