"""`rnnlab demo [--quick] [--out DIR] [--workers N]`: the article's story, measured and drawn."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.table import Table

    from rnnlab.experiments.demo import DemoRow
    from rnnlab.experiments.sweep import Counts


@click.command()
@click.option("--quick", is_flag=True, help="A scaled-down run (300 steps instead of 3000).")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Store folder [runs/demo or runs/demo-quick]."
)
@click.option("--workers", type=click.IntRange(min=1), help="Runs at once [the number of cores].")
@click.option("--quiet", is_flag=True, help="No progress output (bar or lines).")
def demo(quick: bool, out: Path | None, workers: int | None, quiet: bool) -> None:
    """Watch gradients vanish and explode, clipping tame them and gated cells carry them.

    The demo measures the argument of the article rnnlab started from,
    "RNN梯度消失与梯度爆炸的原因" (the causes of vanishing and exploding gradients in
    RNNs): the gradient that reaches step k from step T is a product of T − k Jacobians
    diag(φ′(a_j))·W, so with tanh (φ′ ≤ 1) and σ_max(W) = 0.8 it shrinks like
    0.8^50 ≈ 1.43e−5, and with a large W it grows; ReLU, clipping at a threshold and the
    LSTM are the remedies. First a table at initialisation, then seven models trained on
    the adding problem (T = 60), then an HTML report of them (OUT/report.html). Runs are
    stored in OUT and reused by the next demo."""
    from rich.console import Console

    from rnnlab.cli.sweep import _progress, describe
    from rnnlab.experiments.demo import report_intro, run_demo
    from rnnlab.experiments.gallery import EVERY_CELL_CAPTION, every_cell_at_init
    from rnnlab.report import plots
    from rnnlab.report.objects import Sweep

    console = Console()
    if not console.is_terminal:  # piped: whole tables, not cut at 80 columns
        console = Console(width=max(console.width, 120))
    console.print(_story_table())
    out = out or Path("runs") / ("demo-quick" if quick else "demo")
    with _progress(not quiet, sys.stderr) as bar:
        task = bar.add_task("demo", total=None, counts="")

        def on_change(counts: Counts) -> None:
            bar.update(
                task, total=counts.total, completed=counts.completed, counts=describe(counts)
            )

        rows = run_demo(out, quick=quick, workers=workers, on_change=on_change)
    console.print(_summary_table(rows, quick))
    sweep = Sweep(out)
    sweep.title, sweep.intro = (
        "rnnlab demo — vanishing, exploding, and the remedies",
        report_intro(rows, quick),
    )
    curves = every_cell_at_init()
    sweep.lead = [(lambda: plots.every_cell(curves), EVERY_CELL_CAPTION)]
    console.print(f"rendering the report of {len(rows)} runs…")
    report = sweep.save(out / "report.html")
    console.print(f"report: {report}")


def _story_table() -> Table:
    from rich.table import Table

    from rnnlab.experiments.demo import LAGS, story_at_init

    table = Table(title="At initialisation: ‖∂L_T/∂h_{T−lag}‖ / ‖∂L_T/∂h_T‖ (adding, T = 101)")
    table.add_column("model")
    table.add_column("σ_max(W)", justify="right")
    for lag in LAGS:
        table.add_column(f"lag {lag}", justify="right")
    for row in story_at_init():
        table.add_row(row.name, f"{row.sigma_max:.2f}", *(f"{row.profile[k]:.2e}" for k in LAGS))
        if row.bound is not None:
            table.add_row(
                "  bound (γσ_max)^lag", "", *(f"{row.bound[k]:.2e}" for k in LAGS), style="dim"
            )
    table.caption = "tanh' ≤ 1, so ‖Π J_j‖ ≤ σ_max(W)^lag: with σ_max = 0.8, 0.8^50 ≈ 1.43e−05."
    return table


def _summary_table(rows: list[DemoRow], quick: bool) -> Table:
    from rich.table import Table

    from rnnlab.experiments.demo import FULL, QUICK

    T = (QUICK if quick else FULL)[0]
    table = Table(
        title=f"After training on adding, T = {T}",
        caption="MSE on the validation set; the memoryless baseline is 1/6 ≈ 0.167. "
        "σ_max is the first layer's recurrent W (all gate blocks for LSTM and GRU).",
    )
    table.add_column("model", ratio=1)  # on a narrow terminal the label wraps, numbers stay whole
    for name in ("MSE", "solved", "verdict", "decay", "horizon", "σ_max"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        mse = f"diverged@{r.diverged_at}" if r.status == "diverged" else f"{r.mse:.4f}"
        table.add_row(
            r.label,
            mse,
            "yes" if r.solved else "no",
            r.verdict,
            "—" if r.decay is None else f"×{r.decay:.2f}",
            "—" if r.horizon is None else str(r.horizon),
            "—" if r.sigma_max is None else f"{r.sigma_max:.3g}",
        )
    return table
