"""`rnnlab train CONFIG.toml [--out DIR] [--resume] [--set key=value ...]`."""

from __future__ import annotations

from pathlib import Path

import click

from rnnlab.experiments.config import load_config
from rnnlab.experiments.config import train as train_run


@click.command()
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Run folder [runs/<run id>].")
@click.option("--resume", is_flag=True, help="Continue from the run folder's last checkpoint.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field, e.g. --set train.lr=3e-4 (repeatable).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    config_path: Path, out: Path | None, resume: bool, overrides: tuple[str, ...], quiet: bool
) -> None:
    """Train one model on one task, as CONFIG.toml describes."""
    config = load_config(config_path, list(overrides))
    out = out or Path("runs") / config.run_id
    history, task = train_run(config, out, resume=resume, quiet=quiet)
    final = history.final_metrics
    summary = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if k != "step")
    where = f" at step {history.diverged_at}" if history.status == "diverged" else ""
    click.echo(f"run {config.run_id}: {history.status}{where}; {summary}")
    click.echo(f"baseline {task.baseline:.4g}; checkpoints and history in {out}")
