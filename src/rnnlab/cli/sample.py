"""`rnnlab sample RUN_DIR|RUN_ID|CHECKPOINT --prime "ROMEO:" --temperature 0.8 --length 500`."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from rnnlab.cli._target import load_trained, resolve_target, store_option


@click.command()
@click.argument("target", metavar="RUN_DIR|RUN_ID|CHECKPOINT")
@click.option("--prime", default="\n", show_default="a newline", help="Text to start from.")
@click.option(
    "--temperature",
    default=1.0,
    show_default=True,
    type=float,
    help="Divide the logits by this before the softmax: below 1 favours the likely "
    "characters, above 1 evens them out; 0 takes the most likely one every step (greedy).",
)
@click.option("--length", default=500, show_default=True, type=int, help="Characters to generate.")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the draws: the same seed gives the same text.",
)
@store_option
def sample(
    target: str, prime: str, temperature: float, length: int, seed: int, store: Path
) -> None:
    """Generate text from a character language model.

    TARGET is a run folder or a run id (or a unique prefix) in the store at --store, both
    meaning the run's last checkpoint, or a checkpoint file (.safetensors). The text goes
    to stdout, the checkpoint used to stderr."""
    found = resolve_target(target, store)
    ckpt, run = load_trained(found)
    if not hasattr(run.task, "sample"):
        raise ValueError(
            f"target: got {target!r}, a run of task {run.config.task.name!r}; expected a charlm run"
        )
    text = run.task.sample(run.model, np.random.default_rng(seed), prime, temperature, length)
    click.echo(found.describe(ckpt.step, run.config.train.steps), err=True)
    click.echo(prime + text)
