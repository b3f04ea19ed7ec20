"""`rnnlab sample CHECKPOINT --prime "ROMEO:" --temperature 0.8 --length 500`."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from rnnlab.experiments.config import build, validate
from rnnlab.train.checkpoint import load_checkpoint


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--prime", default="\n", show_default=True, help="Text to start from.")
@click.option("--temperature", default=1.0, show_default=True, type=float)
@click.option("--length", default=500, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
def sample(checkpoint: Path, prime: str, temperature: float, length: int, seed: int) -> None:
    """Generate text from a character language model's checkpoint."""
    ckpt = load_checkpoint(checkpoint)
    config = validate(ckpt.config)
    model, task = build(config)
    if not hasattr(task, "sample"):
        raise ValueError(f"checkpoint: got a {config.task.name!r} run; expected a charlm run")
    model.set_params(ckpt.params)
    text = task.sample(model, np.random.default_rng(seed), prime, temperature, length)
    click.echo(prime + text)
