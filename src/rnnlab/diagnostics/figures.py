"""The figure of recorded diagnoses that a Diagnosis shows of itself (in a notebook) and the
report shows of a run, and the helpers every rnnlab figure is drawn with.

    lag_profile(snapshots)      ‖∂L_T/∂h_{T−τ}‖ / ‖∂L_T/∂h_T‖ against τ, at initialisation and
                                after training, with the bound (γ·σ_max)^τ dashed
    figure(), legend(fig), empty(message): the rest of the report's figures (report.plots)

Figures are built with matplotlib.figure.Figure, never pyplot: no global state is touched
(a notebook's backend stays as it is), and saving uses the Agg canvas. matplotlib is
imported inside the functions (rnnlab needs numpy only). Legends sit below the axes, never
on the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnlab.diagnostics.record import (
    NO_DIAGNOSES,
    Snapshot,
    exact_rate,
    gamma_sigma,
    top_profile,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INIT, TRAINED, BOUND = "#1f77b4", "#d62728", "#555555"
RATIO = r"$\|\partial L_T/\partial h_{T-\tau}\|\ /\ \|\partial L_T/\partial h_T\|$"


def figure(width: float = 6.4, height: float = 3.6, nrows: int = 1) -> tuple[Figure, list[Axes]]:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # an optional dependency: say how to get it, in one line
        raise ValueError(
            "report: matplotlib is not installed; expected `pip install 'rnnlab[report]'`"
        ) from None
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False)[:, 0]  # stacked: each keeps the page's width
    return fig, list(axes)


def empty(message: str) -> Figure:
    fig, (ax,) = figure(6.4, 1.2)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def legend(fig: Figure, handles: Sequence[Any] | None = None, ncols: int | None = None) -> None:
    """One legend below the axes (constrained layout makes room for it), of `handles` or of
    every axes' labelled artists; the figure grows by its rows, so the axes keep their
    height."""
    if handles is None:
        handles = [h for ax in fig.axes for h in ax.get_legend_handles_labels()[0]]
    by_label: dict[str, Any] = {}
    for handle in handles:  # one entry per label: the first artist that has it
        by_label.setdefault(str(handle.get_label()), handle)
    if not by_label:
        return
    labels = list(by_label)
    if ncols is None:
        ncols = 1 if len(labels) == 1 or max(map(len, labels)) > 40 else 2
    rows = math.ceil(len(labels) / ncols)
    fig.set_figheight(fig.get_figheight() + 0.2 * rows + 0.15)
    fig.legend(list(by_label.values()), labels, loc="outside lower center", ncols=ncols,
               fontsize="small", frameon=False)  # fmt: skip


def lag_profile(
    snapshots: Sequence[Snapshot], title: str | None = None, labels: Sequence[str] | None = None
) -> Figure:
    """The first snapshot (initialisation) and the last (after training), top layer;
    `labels` names them otherwise (e.g. for a single diagnosis of a trained model)."""
    if not snapshots:
        return empty(NO_DIAGNOSES)
    fig, (ax,) = figure()
    shown = [snapshots[0]] if len(snapshots) == 1 else [snapshots[0], snapshots[-1]]
    low, high = 1.0, 1.0
    bounds = []
    for i, (s, color) in enumerate(zip(shown, (INIT, TRAINED), strict=False)):
        p = top_profile(s.diagnosis)
        tau = np.arange(p.size)
        ok = np.isfinite(p) & (p > 0)
        history = s.diagnosis.verdict.history
        blew = history.first_nonfinite if history is not None else None
        when = (
            "initialisation"
            if s.step == 0
            else "where it diverged"
            if blew is not None
            else "after training"
        )
        label = labels[i] if labels is not None else f"{when} (step {s.step})"
        ax.semilogy(tau[ok], p[ok], color=color, label=label)
        if ok.any():
            low, high = min(low, float(p[ok].min())), max(high, float(p[ok].max()))
        g, rate = gamma_sigma(s.diagnosis), exact_rate(s.diagnosis)
        if rate is not None and rate > 0:  # ‖Π J‖ = ρ^τ bounds the profile, and is exact
            bounds.append((tau * math.log(rate), color, f"‖ΠJ‖ = {rate:.4g}^τ (theory)"))
        elif g is not None and g > 0:
            bounds.append((tau * math.log(g), color, f"bound ({g:.3g})^τ"))
    top = high * 10
    for log_bound, color, name in bounds:  # cut at the axes: the data set the scale
        inside = log_bound <= math.log(top)
        cut = np.where(inside, np.exp(np.minimum(log_bound, math.log(top))), np.nan)
        leaves = np.flatnonzero(~inside)
        if leaves.size:
            cut[leaves[0]] = top  # the line runs to the top edge where it leaves
        ax.semilogy(np.arange(cut.size), cut, "--", color=color, lw=1, label=name)
    dep = snapshots[-1].diagnosis.flow.dependency_length
    if dep is not None:
        ax.axvline(dep, color=BOUND, ls=":", lw=1, label=f"dependency length {dep}")
    ax.set_ylim(low / 10, top)
    ax.set_xlabel("lag τ (steps back from T)")
    ax.set_ylabel(RATIO)
    ax.set_title(title or "gradient against lag (top layer)")
    legend(fig)
    return fig
