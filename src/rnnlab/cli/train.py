"""`rnnlab train CONFIG.toml [--out DIR] [--set key=value ...]`: `rnnlab run` by another name.

One path for a run: train records it in the store (`results` unless --out) that ls, show,
report and sweep read, resumes it there after an interruption, and does not run a finished
config twice."""

from __future__ import annotations

import click

from rnnlab.cli.run import run

train = click.Command(
    name="train",
    callback=run.callback,
    params=run.params,
    help="""Train one model on one task and record it in the store.

    The same as `rnnlab run`. The run is the one CONFIG.toml describes; its id is the
    config's hash. A finished run (same config, same id) is not run again; an interrupted
    one resumes from its last checkpoint. Exits 1 if the run failed (its error is in the
    store).""",
)
