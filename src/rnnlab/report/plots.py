"""Figures from stored data: pure functions from runs' records to a matplotlib Figure.

    lag_profile(snapshots)      ‖∂L_T/∂h_{T−τ}‖ / ‖∂L_T/∂h_T‖ against τ, at initialisation and
                                after training, with the bound (γ·σ_max)^τ dashed (drawn by
                                rnnlab.diagnostics.figures: a Diagnosis shows it of itself)
    lag_heatmap(snapshots)      training step × lag, log10 of that ratio, and the horizon
    loss_curves(runs)           validation loss, the memoryless baseline, divergence marked
    grad_norm(steps, ...)       the global gradient norm before clipping (faint) and its
                                moving average, and the threshold
    spectra(snapshots)          σ_max and the spectral radius of each recurrent block
    activations(snapshots)      saturation, dead ReLUs, forget/update gates
    phase_diagram(runs)         solved fraction over T × model, seeds aggregated
    decay_vs_radius(runs)       decay per step at initialisation against ρ(W), and γ·σ_max

`snapshots` are a run's diagnoses (RunData.diagnostics: Snapshot, the step and its
Diagnosis), `steps` a history's per-step dicts, `runs` RunData. Figures are built with
matplotlib.figure.Figure, never pyplot: no global state is touched (a notebook's backend
stays as it is), and saving uses the Agg canvas. matplotlib is imported inside the functions
(rnnlab needs numpy only). Legends sit below the axes, never on the data.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnlab._atomic import atomic_write
from rnnlab.diagnostics.figures import BOUND, INIT, RATIO, TRAINED, empty, figure, legend
from rnnlab.diagnostics.figures import lag_profile as lag_profile  # one of the report's figures
from rnnlab.diagnostics.record import (
    NO_DIAGNOSES,
    Snapshot,
    gamma_sigma,
    top_profile,
    w_block,
)
from rnnlab.engine.cells import CELLS
from rnnlab.experiments import gallery
from rnnlab.report.data import RunData, array, group_labels, num

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from rnnlab.diagnostics.spectra import BlockSpectrum

BASE, BAD = "#2ca02c", "#d62728"
DIVERGED = "black"  # the × where a run diverged: no curve's colour


# the cells the Pascanu bound holds for, as the figures and captions name them
_BOUNDED = [cls.title for cls in CELLS.values() if cls.bounded]
BOUNDED = (
    " or ".join(_BOUNDED) if len(_BOUNDED) < 3 else ", ".join(_BOUNDED[:-1]) + " or " + _BOUNDED[-1]
)


def smoothing_span(n: int) -> float:
    """How many steps a moving average of n points spans: enough to show the trend through
    step-to-step noise, short enough to keep a blow-up's start."""
    return float(min(100, max(5, round(n / 50))))


def ema(values: np.ndarray, span: float) -> np.ndarray:
    """Exponential moving average over the finite values, debiased at the start (as
    TensorBoard smooths): weight 2/(span+1) on the newest; nan where a value is not."""
    alpha = 2 / (span + 1)
    out = np.full(values.shape, np.nan)
    mean, weight = 0.0, 0.0
    for i, v in enumerate(values):
        if np.isfinite(v):
            mean = (1 - alpha) * mean + alpha * v
            weight = (1 - alpha) * weight + alpha
            out[i] = mean / weight
    return out


def lag_heatmap(snapshots: Sequence[Snapshot]) -> Figure:
    """log10 of the normalised lag profile for every snapshot: rows are training steps."""
    if not snapshots:
        return empty(NO_DIAGNOSES)
    fig, (ax,) = figure()
    profiles = [top_profile(s.diagnosis) for s in snapshots]
    width = max(p.size for p in profiles)
    Z = np.full((len(snapshots), width), np.nan)
    for i, p in enumerate(profiles):
        with np.errstate(divide="ignore", invalid="ignore"):
            Z[i, : p.size] = np.where(p > 0, np.log10(p), np.nan)
    steps = np.array([s.step for s in snapshots], dtype=np.float64)
    edges = _edges(steps)
    finite = Z[np.isfinite(Z)]
    vmin = max(float(finite.min()), -20.0) if finite.size else -1.0
    vmax = max(float(finite.max()), 0.0) if finite.size else 0.0
    mesh = ax.pcolormesh(
        np.arange(width + 1) - 0.5, edges, Z, cmap="viridis", vmin=vmin, vmax=vmax, shading="flat"
    )
    horizon = [float(s.diagnosis.flow.horizon) for s in snapshots]
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]  # read on white too
    ax.plot(horizon, steps, "w.-", lw=1, ms=3, path_effects=outline,
            label="gradient horizon (last lag with ratio ≥ 1e−3)")  # fmt: skip
    extend = "min" if finite.size and finite.min() < vmin else "neither"
    fig.colorbar(mesh, ax=ax, label="log10 ratio", extend=extend)
    ax.set_xlabel("lag τ")
    ax.set_ylabel("training step")
    ax.set_title("log10 " + RATIO)
    legend(fig)
    return fig


def _edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges around each step, halfway to its neighbours."""
    if steps.size == 1:
        return np.array([steps[0] - 0.5, steps[0] + 0.5])
    mid = (steps[1:] + steps[:-1]) / 2
    return np.concatenate([[2 * steps[0] - mid[0]], mid, [2 * steps[-1] - mid[-1]]])


STYLES = ("-", ":", "-.", (0, (6, 2, 1, 2, 1, 2)))  # not "--": that is the baseline
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def loss_curves(
    runs: Sequence[RunData], baseline: float | None = None, labels: Sequence[str] | None = None
) -> Figure:
    """Validation loss (the units of the task's baseline) of each run; a diverged run ends
    in an × at the step it diverged. baseline defaults to the first run's. Runs are told
    apart by every axis that varies: colour for the label (the model group), line style for
    T, marker for the seed."""
    from matplotlib.lines import Line2D

    fig, (ax,) = figure()
    labels = list(labels) if labels is not None else [r.label for r in runs]
    colors = _colors(labels)
    Ts = list(dict.fromkeys(r.T for r in runs))
    seeds = list(dict.fromkeys(r.config.get("train", {}).get("seed") for r in runs))
    style = {T: STYLES[i % len(STYLES)] for i, T in enumerate(Ts)} if len(Ts) > 1 else {}
    mark = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(seeds)} if len(seeds) > 1 else {}
    base = baseline if baseline is not None else next((r.baseline for r in runs), None)
    # a loss that blew up would squash every other curve: the axes stop at 100× the baseline
    # and a curve leaves through the top edge
    top = math.inf if base is None or base <= 0 else 100 * base
    for run, label in zip(runs, labels, strict=True):
        steps = [e["step"] for e in run.evals]
        loss = array(e.get("loss") for e in run.evals)
        seed = run.config.get("train", {}).get("seed")
        ax.plot(steps, loss, color=colors[label], lw=1.4, ls=style.get(run.T, "-"),
                marker=mark.get(seed, ""), ms=4, markevery=max(1, len(steps) // 8))  # fmt: skip
        if run.status == "diverged" and run.diverged_at is not None:
            last = loss[np.isfinite(loss)][-1] if np.isfinite(loss).any() else np.nan
            ax.plot([run.diverged_at], [min(last, top)], "x", color=DIVERGED, ms=9, mew=2)
    _log_if_positive(ax)
    if ax.get_ylim()[1] > top:  # the bottom too: the autoscaled one made room for the blow-up
        shown = np.concatenate([np.asarray(line.get_ydata(), float) for line in ax.lines])
        shown = shown[np.isfinite(shown) & (shown > 0) & (shown <= top)]
        low = min([*shown, base if base is not None and base > 0 else top]) / 1.5
        ax.set_ylim(low if ax.get_yscale() == "log" else ax.get_ylim()[0], top)
    # the legend: a key per colour, per line style and per marker (proxies, not drawn)
    keys = [Line2D([], [], color=c, lw=1.5, label=lab) for lab, c in colors.items()]
    keys += [Line2D([], [], color=BOUND, ls=ls, label=f"T = {T}") for T, ls in style.items()]
    keys += [Line2D([], [], color=BOUND, ls="", marker=m, label=f"seed {s}")
             for s, m in mark.items()]  # fmt: skip
    if any(r.status == "diverged" for r in runs):
        keys.append(Line2D([], [], color=DIVERGED, ls="", marker="x", ms=9, mew=2,
                           label="diverged here"))  # fmt: skip
    if base is not None:
        keys.append(ax.axhline(base, color=BOUND, ls="--", lw=1,
                               label=f"memoryless baseline {base:.3g}"))  # fmt: skip
    ax.set_xlabel("training step")
    ax.set_ylabel("validation loss")
    ax.set_title("loss")
    legend(fig, keys)
    return fig


def _colors(labels: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    distinct = list(dict.fromkeys(labels))
    cmap = colormaps["tab10" if len(distinct) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(distinct)}


def _log_if_positive(ax: Axes) -> None:
    lines = [line.get_ydata() for line in ax.get_lines()]
    values = np.concatenate([np.asarray(y, dtype=float) for y in lines]) if lines else np.ones(1)
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0:
        ax.set_yscale("log")


def grad_norm(
    steps: Sequence[dict[str, float]],
    clip_mode: str = "none",
    clip_threshold: float | None = None,
    diverged_at: int | None = None,
) -> Figure:
    """The global gradient norm before clipping at every step (faint), log scale, and its
    exponential moving average (solid, over log10 of the norm: the norm spans decades), with
    the clipping threshold (norm clipping) and the step where it became non-finite."""
    fig, (ax,) = figure()
    x = np.array([r["step"] for r in steps], dtype=np.float64)
    y = array(r.get("grad_norm") for r in steps)
    ok = np.isfinite(y) & (y > 0)
    ax.semilogy(x[ok], y[ok], color=INIT, lw=0.6, alpha=0.3, label="‖∂L/∂θ‖ at each step")
    span = smoothing_span(int(ok.sum()))
    smooth = 10 ** ema(np.log10(y[ok]), span)
    ax.semilogy(x[ok], smooth, color=INIT, lw=1.6, label=f"moving average (~{span:.0f} steps)")
    if clip_mode == "norm" and clip_threshold is not None:
        clipped = int(np.count_nonzero(y[ok] > clip_threshold))
        ax.axhline(
            clip_threshold,
            color=TRAINED,
            ls="--",
            lw=1,
            label=f"threshold {clip_threshold:g} ({clipped} of {x.size} steps clipped)",
        )
    elif clip_mode == "value" and clip_threshold is not None:
        ax.plot([], [], " ", label=f"clipped per element at ±{clip_threshold:g}")
    else:
        ax.plot([], [], " ", label="no clipping")
    if diverged_at is not None:
        ax.axvline(diverged_at, color=BAD, lw=1.5, label=f"non-finite at step {diverged_at}")
    ax.set_xlabel("training step")
    ax.set_ylabel("global gradient norm")
    ax.set_title("gradient norm before clipping")
    legend(fig)
    return fig


def spectra(snapshots: Sequence[Snapshot]) -> Figure:
    """σ_max (solid) and spectral radius ρ (dashed) of every recurrent block over training."""
    if not snapshots:
        return empty(NO_DIAGNOSES)
    fig, (ax,) = figure()
    steps = [s.step for s in snapshots]
    first = snapshots[0].diagnosis
    blocks = list(dict.fromkeys((b.layer, b.block) for b in first.spectra))
    if not blocks:  # minGRU, minLSTM: J_t = diag(a_t) from x_t, no matrix to measure
        return empty("no recurrent matrix: this cell's gates read x_t only")
    colors = _colors([f"{layer} {block}" for layer, block in blocks])
    layers = len({layer for layer, _ in blocks})
    for layer, block in blocks:
        found = [_block(s.diagnosis.spectra, layer, block) for s in snapshots]
        color = colors[f"{layer} {block}"]
        name = f"{block} (layer {layer})" if layers > 1 else block
        sigma = [b.sigma_max if b else math.nan for b in found]
        ax.plot(steps, sigma, ".-", ms=4, color=color, label=f"σ_max {name}")
        radius = [num(b.spectral_radius) if b else math.nan for b in found]
        if np.isfinite(radius).any():
            ax.plot(steps, radius, ".--", ms=4, color=color, label=f"ρ {name}")
    g = gamma_sigma(first)
    w = w_block(first)
    if g is not None and w is not None:
        gamma = g / w.sigma_max
        ax.axhline(1 / gamma, color=BOUND, ls=":", lw=1, label=f"1/γ = {1 / gamma:g}")
    values = np.concatenate([np.asarray(line.get_ydata(), dtype=np.float64) for line in ax.lines])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() > 100 * values.min():  # a W that blew up: log scale
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("σ_max, ρ")
    ax.set_title("recurrent weights")
    legend(fig)
    return fig


def _block(spectra: Sequence[BlockSpectrum], layer: int, block: str) -> BlockSpectrum | None:
    return next((b for b in spectra if b.layer == layer and b.block == block), None)


ACTIVATION_FIELDS = (
    ("saturation", "saturated units (φ' < 5 % of γ)"),
    ("dead_fraction", "dead ReLUs"),
    ("inactive_fraction", "inactive ReLU activations"),
    ("gate_mean", "mean {gate} gate"),
    ("mean_dphi", "mean φ'"),
)


def activations(snapshots: Sequence[Snapshot]) -> Figure:
    """Per layer over training: the fractions that make J = diag(φ') W small or zero, and the
    carry gate's mean; for gated cells, below, the gate's histogram at the first and last
    snapshot."""
    if not snapshots:
        return empty(NO_DIAGNOSES)
    first = snapshots[0].diagnosis.activations
    gated = any(a.gate for a in first)
    fig, axes = figure(6.4, 6.4 if gated else 3.6, 2 if gated else 1)
    ax = axes[0]
    steps = [s.step for s in snapshots]
    for a in first:
        layer = a.layer
        rows = [next(x for x in s.diagnosis.activations if x.layer == layer) for s in snapshots]
        for key, text in ACTIVATION_FIELDS:
            values = [num(getattr(x, key)) for x in rows]
            if np.isfinite(values).any():
                text = text.format(gate=a.gate)
                suffix = f" (layer {layer})" if len(first) > 1 else ""
                ax.plot(steps, values, marker=".", label=text + suffix)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training step")
    ax.set_ylabel("fraction / mean")
    ax.set_title(f"activations ({first[-1].nonlinearity if first else '?'})")
    if gated:
        _gate_histograms(axes[1], snapshots)
    legend(fig)
    return fig


def _gate_histograms(ax: Axes, snapshots: Sequence[Snapshot]) -> None:
    gate = snapshots[0].diagnosis.activations[-1].gate
    shown = [snapshots[0]] if len(snapshots) == 1 else [snapshots[0], snapshots[-1]]
    for s, color in zip(shown, (INIT, TRAINED), strict=False):
        top = s.diagnosis.activations[-1]
        hist = np.empty(0) if top.gate_histogram is None else top.gate_histogram
        if hist.size:
            edges = np.linspace(0, 1, hist.size + 1)
            label = f"{gate} gate at step {s.step}"
            ax.stairs(hist, edges, color=color, lw=1.5, label=label)
    ax.set_xlabel(f"{gate} gate value (top layer)")
    ax.set_ylabel("fraction")
    ax.set_title(f"{gate} gate histogram")


def phase_diagram(runs: Sequence[RunData]) -> Figure:
    """Solved fraction (solved seeds / seeds) per model group and T; diverged and failed runs
    count as not solved. Groups are the model label plus any other varying field."""
    cells: dict[tuple[str, Any], list[bool]] = {}
    for run, label in zip(runs, group_labels(runs), strict=True):
        cells.setdefault((label, run.T), []).append(run.solved)
    groups = list(dict.fromkeys(g for g, _ in cells))
    Ts = sorted({T for _, T in cells}, key=lambda t: (t is None, t))
    Z = np.full((len(groups), len(Ts)), np.nan)
    for (g, T), solved in cells.items():
        Z[groups.index(g), Ts.index(T)] = np.mean(solved)
    label_width = 0.075 * max(len(g) for g in groups)  # inches for the longest group label
    fig, (ax,) = figure(
        max(4.0, 1.1 * len(Ts) + 2.5 + label_width), max(2.2, 0.55 * len(groups) + 1.4)
    )
    image = ax.imshow(Z, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for (g, T), solved in cells.items():
        i, j = groups.index(g), Ts.index(T)
        ax.text(j, i, f"{sum(solved)}/{len(solved)}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(Ts)), [str(T) for T in Ts])
    ax.set_yticks(range(len(groups)), groups)
    ax.set_xlabel("sequence length T")
    ax.set_title("solved fraction (seeds aggregated)")
    fig.colorbar(image, ax=ax, label="solved fraction")
    return fig


def decay_vs_radius(runs: Sequence[RunData]) -> Figure:
    """For each run of a cell the Pascanu bound holds for (Elman RNN, IndRNN) with a
    diagnosis at initialisation: the measured decay per step of its lag profile (fitted)
    against ρ(W), and the Pascanu bound γ·σ_max(W) above it."""
    points = []
    for run in runs:
        init = next((s.diagnosis for s in run.diagnostics if s.step == 0), None)
        g = None if init is None else gamma_sigma(init)
        if init is None or g is None:
            continue
        w = w_block(init)
        radius = num(w.spectral_radius) if w is not None else math.nan
        points.append((radius, init.flow.decay_factor, g))
    if not points:
        return empty(f"no {BOUNDED} diagnosed at initialisation")
    fig, (ax,) = figure()
    rho, decay, bound = (np.array([p[i] for p in points], dtype=np.float64) for i in range(3))
    order = np.argsort(rho)
    # each run is its own model: markers, never a line from one model to the next; a thin
    # segment pairs a run's measurement with its own bound
    ax.vlines(rho, decay, bound, color=BOUND, lw=0.8, alpha=0.5)
    ax.plot(rho[order], bound[order], "v", color=BOUND, ms=6, label="bound γ·σ_max(W) of the run")
    ax.plot(rho, decay, "o", color=INIT, label="measured decay per step (initialisation)")
    top = max(float(np.nanmax(rho)), 1.0) * 1.05
    ax.plot([0, top], [0, top], ":", color=BOUND, lw=1, label="decay = ρ")
    ax.axhline(1, color=BAD, lw=0.8, alpha=0.4, label="1: below it the gradient vanishes")
    ax.set_xlabel("spectral radius ρ(W) at initialisation")
    ax.set_ylabel("gradient factor per step back")
    ax.set_title("decay against spectral radius")
    legend(fig)
    return fig


# gallery family -> (line style, colours in turn): the failures solid in blue and red, the
# classic remedies dashed in greens, the modern ones dash-dotted in distinct hues
FAMILY_STYLE = {
    gallery.VANISHING: ("-", ("#1f4e9c", "#6fa8dc")),
    gallery.EXPLODING: ("-", ("#c0392b",)),
    gallery.CLASSIC: ("--", ("#1b7837", "#5aae61", "#a6611a", "#01665e")),
    gallery.MODERN: ("-.", ("#762a83", "#e7298a", "#d95f02", "#666666", "#00a0b0")),
}


def every_cell(curves: Sequence[gallery.Curve]) -> Figure:
    """Every cell's lag profile at initialisation on one batch (experiments.gallery), with
    the article's 0.8^τ: vanishing, exploding and each remedy on one plot."""
    fig, (ax,) = figure(width=7.2, height=4.4)
    low = 1.0
    seen: dict[str, int] = {}
    for c in curves:
        ok = np.isfinite(c.profile) & (c.profile > 0)
        tau = np.arange(c.profile.size)
        style, palette = FAMILY_STYLE.get(c.family, ("-", ("#333333",)))
        k = seen[c.family] = seen.get(c.family, -1) + 1
        color = palette[k % len(palette)]
        ax.semilogy(tau[ok], c.profile[ok], style, color=color, lw=1.5, label=c.label)
        if ok.any():
            low = min(low, float(c.profile[ok].min()))
    T = max(c.profile.size for c in curves)
    tau = np.arange(T)
    ax.semilogy(tau, 0.8**tau, ":", color=BOUND, lw=1.2, label="0.8^τ (the article's bound)")
    ax.axvline(50, color=BOUND, ls=":", lw=0.8)
    ax.set_ylim(max(low / 10, 1e-30), None)
    ax.set_xlabel("lag τ (steps back from T)")
    ax.set_ylabel(RATIO)
    ax.set_title(f"every cell at initialisation, one adding batch, T = {T}")
    legend(fig, ncols=2)
    return fig


def save(
    fig: Figure, folder: str | os.PathLike[str], name: str, formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Write fig as folder/name.png and folder/name.svg (no timestamps: same data, same
    file); return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata=_metadata(fmt))
        atomic_write(path, buffer.getvalue())  # whole or not at all, as every file rnnlab writes
        paths.append(path)
    return paths


def _metadata(fmt: str) -> dict[str, Any]:
    return {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
