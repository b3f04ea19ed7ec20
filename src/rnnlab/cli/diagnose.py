"""`rnnlab diagnose RUN_DIR|RUN_ID|CHECKPOINT|CONFIG [--json]`: the verdict on a model's
gradient flow."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rnnlab.cli._target import load_trained, resolve_target, store_option
from rnnlab.diagnostics import text
from rnnlab.diagnostics.diagnose import Diagnosis, diagnose
from rnnlab.diagnostics.verdict import Learning
from rnnlab.experiments.prepared import load_run
from rnnlab.train.callbacks import history_context
from rnnlab.train.history import History


@click.command(name="diagnose")
@click.argument("target", metavar="RUN_DIR|RUN_ID|CHECKPOINT|CONFIG")
@click.option("--json", "as_json", is_flag=True, help="Print the Diagnosis as JSON.")
@click.option(
    "--probe-size",
    type=click.IntRange(min=1),
    help="Validation sequences to measure [the config's diagnostics.probe_size].",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a field of a CONFIG (repeatable).",
)
@store_option
def diagnose_command(
    target: str,
    as_json: bool,
    probe_size: int | None,
    overrides: tuple[str, ...],
    store: Path,
) -> None:
    """Diagnose a run's gradient flow.

    TARGET is a run folder or a run id (or a unique prefix) in the store at --store, both
    meaning the run's last checkpoint; a checkpoint file (.safetensors); or a CONFIG.toml,
    whose model is diagnosed at initialisation."""
    found = resolve_target(target, store, config=True)
    norms: list[float] = []
    learning: Learning | None = None
    if found.kind == "config":
        run = load_run(found.path, overrides)
        source = f"config {found.path}: the model at initialisation"
    else:
        if overrides:
            raise ValueError(
                f"--set: got {overrides[0]!r} for a checkpoint; expected it only with a "
                "CONFIG.toml (a checkpoint's config is the one it was trained with)"
            )
        ckpt, run = load_trained(found)
        source = found.describe(ckpt.step, run.config.train.steps)
        # a checkpoint in its run folder: the verdict also reads the run's history, as the
        # diagnoses recorded in training do
        history_path = found.path.parent / "history.json"
        if history_path.is_file():
            history = History.load(history_path)
            norms, learning = history_context(history, ckpt.step, float(run.task.baseline))
    config, model, task = run.config, run.model, run.task
    probe = probe_size or config.diagnostics.probe_size  # as the run's own diagnoses
    X, Y, mask = (a[:, :probe] for a in task.validation)
    d = diagnose(
        model,
        X,
        Y,
        mask,
        loss=task.loss,
        grad_norms=norms or None,
        learning=learning,
        options=config.diagnostics.options(task, run.info),  # as in training
    )
    if as_json:
        click.echo(source, err=True)  # stdout holds the JSON alone
        click.echo(json.dumps(d.to_dict()))
    else:
        _print(d, source)


def _print(d: Diagnosis, source: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=text.heading(d), show_header=False)
    table.add_column("measure")
    table.add_column("value")
    for measure, value in text.rows(d):
        table.add_row(measure, value)
    for name, action, in_use in text.remedies(d):
        # marked as the HTML report marks it, "[in use]" in italics; in the label's column,
        # where a wrapped action cannot split it
        label = Text(name)
        if in_use:
            label.append(" [in use]", style="italic")
        table.add_row(label, Text(action))
    click.echo(source)  # unwrapped: a path stays whole
    console = Console()
    console.print(table)
    for e in text.evidence(d):
        console.print(f"- {e}", markup=False, highlight=False)
