"""`rnnlab diagnose CHECKPOINT|CONFIG [--json]`: the verdict on a model's gradient flow."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rnnlab.diagnostics.diagnose import Diagnosis, diagnose
from rnnlab.experiments.config import build, load_config, run_info, validate
from rnnlab.train.checkpoint import load_checkpoint


@click.command(name="diagnose")
@click.argument("source", metavar="CHECKPOINT|CONFIG", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the Diagnosis as JSON.")
@click.option(
    "--probe-size",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="Validation sequences to measure.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a field of a CONFIG (repeatable).",
)
def diagnose_command(source: Path, as_json: bool, probe_size: int, overrides: tuple[str, ...]):
    """Diagnose a trained checkpoint, or a CONFIG's model at initialisation."""
    if source.suffix == ".toml":
        config = load_config(source, list(overrides))
        model, task = build(config)
    else:
        ckpt = load_checkpoint(source)
        config = validate(ckpt.config)
        model, task = build(config)
        model.set_params(ckpt.params)
    X, Y, mask = (a[:, :probe_size] for a in task.validation)
    d = diagnose(
        model,
        X,
        Y,
        mask,
        loss=task.loss,
        dependency_length=task.dependency_length,
        run=run_info(config, model),
    )
    if as_json:
        click.echo(json.dumps(d.to_dict()))
    else:
        _print(d)


def _print(d: Diagnosis) -> None:
    from rich.console import Console
    from rich.table import Table

    f = d.flow
    table = Table(title=f"Diagnosis: {d.label.upper()}", show_header=False)
    table.add_column("measure")
    table.add_column("value")
    table.add_row("verdict", d.label)
    table.add_row("decay rate", f"×{f.decay_factor:.3g} per step")
    table.add_row("gradient horizon", f"{f.horizon} steps (profile > {f.horizon_threshold:g})")
    table.add_row(f"ratio at lag {f.ratio_lag}", f"{f.ratio:.3g}")
    for s in d.spectra:
        radius = "" if s.spectral_radius is None else f", spectral radius {s.spectral_radius:.3g}"
        table.add_row(f"W layer {s.layer} {s.block}", f"σ_max {s.sigma_max:.3g}{radius}")
    for a in d.activations:
        parts = [f"mean φ' {a.mean_dphi:.3g}"]
        if a.saturation is not None:
            parts.append(f"saturated {a.saturation:.1%}")
        if a.dead_fraction is not None:
            parts.append(f"dead {a.dead_fraction:.1%}")
        if a.gate is not None and a.gate_mean is not None:
            parts.append(f"mean {a.gate} gate {a.gate_mean:.3g}")
        table.add_row(f"activations layer {a.layer}", ", ".join(parts))
    for i, r in enumerate(d.verdict.remedies, 1):
        table.add_row(f"remedy {i}", f"{r.action}{' [in use]' if r.in_use else ''}")
    console = Console()
    console.print(table)
    for e in d.verdict.evidence:
        console.print(f"- {e}")
