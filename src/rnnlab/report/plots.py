"""Figures from stored data: pure functions from records to a matplotlib Figure.

    lag_profile(records)        ‖∂L_T/∂h_{T−τ}‖ / ‖∂L_T/∂h_T‖ against τ, at initialisation and
                                after training, with the bound (γ·σ_max)^τ dashed
    lag_heatmap(records)        training step × lag, log10 of that ratio, and the horizon
    loss_curves(runs)           validation loss, the memoryless baseline, divergence marked
    grad_norm(steps, ...)       the global gradient norm before clipping (faint) and its
                                moving average, and the threshold
    spectra(records)            σ_max and the spectral radius of each recurrent block
    activations(records)        saturation, dead ReLUs, forget/update gates
    phase_diagram(runs)         solved fraction over T × model, seeds aggregated
    decay_vs_radius(runs)       decay per step at initialisation against ρ(W), and γ·σ_max

`records` are diagnostics records ({"step", **Diagnosis.to_dict()}), `steps` a history's
per-step dicts, `runs` RunData. Figures are built with matplotlib.figure.Figure, never
pyplot: no global state is touched (a notebook's backend stays as it is), and saving uses
the Agg canvas. matplotlib is imported inside the functions (rnnlab needs numpy only).
Legends sit below the axes, never on the data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnlab.report.data import (
    Record,
    RunData,
    array,
    gamma_sigma,
    group_labels,
    no_diagnoses,
    num,
    top_profile,
    w_block,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INIT, TRAINED, BOUND, BASE, BAD = "#1f77b4", "#d62728", "#555555", "#2ca02c", "#d62728"
DIVERGED = "black"  # the × where a run diverged: no curve's colour
RATIO = r"$\|\partial L_T/\partial h_{T-\tau}\|\ /\ \|\partial L_T/\partial h_T\|$"


def _figure(width: float = 6.4, height: float = 3.6, nrows: int = 1) -> tuple[Figure, list[Axes]]:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # an optional dependency: say how to get it, in one line
        raise ValueError(
            "report: matplotlib is not installed; expected `pip install 'rnnlab[report]'`"
        ) from None
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False)[:, 0]  # stacked: each keeps the page's width
    return fig, list(axes)


NO_DIAGNOSES = no_diagnoses({})


def _empty(message: str) -> Figure:
    fig, (ax,) = _figure(6.4, 1.2)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _legend(fig: Figure, handles: Sequence[Any] | None = None, ncols: int | None = None) -> None:
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


def lag_profile(
    records: Sequence[Record], title: str | None = None, labels: Sequence[str] | None = None
) -> Figure:
    """The first record (initialisation) and the last (after training), top layer; `labels`
    names them otherwise (e.g. for a single diagnosis of a trained model)."""
    if not records:
        return _empty(NO_DIAGNOSES)
    fig, (ax,) = _figure()
    shown = [records[0]] if len(records) == 1 else [records[0], records[-1]]
    low, high = 1.0, 1.0
    bounds = []
    for i, (record, color) in enumerate(zip(shown, (INIT, TRAINED), strict=False)):
        p = top_profile(record)
        tau = np.arange(p.size)
        ok = np.isfinite(p) & (p > 0)
        blew = ((record.get("verdict") or {}).get("history") or {}).get("first_nonfinite")
        when = (
            "initialisation"
            if record["step"] == 0
            else "where it diverged"
            if blew is not None
            else "after training"
        )
        label = labels[i] if labels is not None else f"{when} (step {record['step']})"
        ax.semilogy(tau[ok], p[ok], color=color, label=label)
        if ok.any():
            low, high = min(low, float(p[ok].min())), max(high, float(p[ok].max()))
        g = gamma_sigma(record)
        if g is not None and g > 0:
            bounds.append((tau * math.log(g), color, g))
    top = high * 10
    for log_bound, color, g in bounds:  # cut at the axes: the data set the scale, not the bound
        inside = log_bound <= math.log(top)
        cut = np.where(inside, np.exp(np.minimum(log_bound, math.log(top))), np.nan)
        leaves = np.flatnonzero(~inside)
        if leaves.size:
            cut[leaves[0]] = top  # the line runs to the top edge where it leaves
        ax.semilogy(np.arange(cut.size), cut, "--", color=color, lw=1, label=f"bound ({g:.3g})^τ")
    dep = records[-1]["flow"].get("dependency_length")
    if dep is not None:
        ax.axvline(dep, color=BOUND, ls=":", lw=1, label=f"dependency length {dep}")
    ax.set_ylim(low / 10, top)
    ax.set_xlabel("lag τ (steps back from T)")
    ax.set_ylabel(RATIO)
    ax.set_title(title or "gradient against lag (top layer)")
    _legend(fig)
    return fig


def lag_heatmap(records: Sequence[Record]) -> Figure:
    """log10 of the normalised lag profile for every record: rows are training steps."""
    if not records:
        return _empty(NO_DIAGNOSES)
    fig, (ax,) = _figure()
    profiles = [top_profile(r) for r in records]
    width = max(p.size for p in profiles)
    Z = np.full((len(records), width), np.nan)
    for i, p in enumerate(profiles):
        with np.errstate(divide="ignore", invalid="ignore"):
            Z[i, : p.size] = np.where(p > 0, np.log10(p), np.nan)
    steps = np.array([r["step"] for r in records], dtype=np.float64)
    edges = _edges(steps)
    finite = Z[np.isfinite(Z)]
    vmin = max(float(finite.min()), -20.0) if finite.size else -1.0
    vmax = max(float(finite.max()), 0.0) if finite.size else 0.0
    mesh = ax.pcolormesh(
        np.arange(width + 1) - 0.5, edges, Z, cmap="viridis", vmin=vmin, vmax=vmax, shading="flat"
    )
    horizon = [num(r["flow"].get("horizon")) for r in records]
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]  # read on white too
    ax.plot(horizon, steps, "w.-", lw=1, ms=3, path_effects=outline,
            label="gradient horizon (last lag with ratio ≥ 1e−3)")  # fmt: skip
    extend = "min" if finite.size and finite.min() < vmin else "neither"
    fig.colorbar(mesh, ax=ax, label="log10 ratio", extend=extend)
    ax.set_xlabel("lag τ")
    ax.set_ylabel("training step")
    ax.set_title("log10 " + RATIO)
    _legend(fig)
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

    fig, (ax,) = _figure()
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
    _legend(fig, keys)
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
    fig, (ax,) = _figure()
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
    _legend(fig)
    return fig


def spectra(records: Sequence[Record]) -> Figure:
    """σ_max (solid) and spectral radius ρ (dashed) of every recurrent block over training."""
    if not records:
        return _empty(NO_DIAGNOSES)
    fig, (ax,) = _figure()
    steps = [r["step"] for r in records]
    blocks = list(dict.fromkeys((s["layer"], s["block"]) for s in records[0].get("spectra", [])))
    colors = _colors([f"{layer} {block}" for layer, block in blocks])
    layers = len({layer for layer, _ in blocks})
    for layer, block in blocks:
        found = [_block(r, layer, block) for r in records]
        color = colors[f"{layer} {block}"]
        name = f"{block} (layer {layer})" if layers > 1 else block
        ax.plot(steps, [num(s.get("sigma_max")) for s in found], ".-", ms=4, color=color,
                label=f"σ_max {name}")  # fmt: skip
        radius = [num(s.get("spectral_radius")) for s in found]
        if np.isfinite(radius).any():
            ax.plot(steps, radius, ".--", ms=4, color=color, label=f"ρ {name}")
    g = gamma_sigma(records[0])
    if g is not None:
        sigma = w_block(records[0]).get("sigma_max") or 1.0
        gamma = g / sigma
        ax.axhline(1 / gamma, color=BOUND, ls=":", lw=1, label=f"1/γ = {1 / gamma:g}")
    values = np.concatenate([np.asarray(line.get_ydata(), dtype=np.float64) for line in ax.lines])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() > 100 * values.min():  # a W that blew up: log scale
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("σ_max, ρ")
    ax.set_title("recurrent weights")
    _legend(fig)
    return fig


def _block(record: Record, layer: int, block: str) -> dict[str, Any]:
    for s in record.get("spectra", []):
        if s["layer"] == layer and s["block"] == block:
            return dict(s)
    return {}


ACTIVATION_FIELDS = (
    ("saturation", "saturated units (φ' < 5 % of γ)"),
    ("dead_fraction", "dead ReLUs"),
    ("inactive_fraction", "inactive ReLU activations"),
    ("gate_mean", "mean {gate} gate"),
    ("mean_dphi", "mean φ'"),
)


def activations(records: Sequence[Record]) -> Figure:
    """Per layer over training: the fractions that make J = diag(φ') W small or zero, and the
    carry gate's mean; for gated cells, below, the gate's histogram at the first and last
    record."""
    if not records:
        return _empty(NO_DIAGNOSES)
    first = records[0].get("activations", [])
    gated = any(a.get("gate") for a in first)
    fig, axes = _figure(6.4, 6.4 if gated else 3.6, 2 if gated else 1)
    ax = axes[0]
    steps = [r["step"] for r in records]
    for a in first:
        layer = a["layer"]
        rows = [next(x for x in r["activations"] if x["layer"] == layer) for r in records]
        for key, text in ACTIVATION_FIELDS:
            values = [num(x.get(key)) for x in rows]
            if np.isfinite(values).any():
                text = text.format(gate=a.get("gate"))
                suffix = f" (layer {layer})" if len(first) > 1 else ""
                ax.plot(steps, values, marker=".", label=text + suffix)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training step")
    ax.set_ylabel("fraction / mean")
    ax.set_title(f"activations ({first[-1]['nonlinearity'] if first else '?'})")
    if gated:
        _gate_histograms(axes[1], records)
    _legend(fig)
    return fig


def _gate_histograms(ax: Axes, records: Sequence[Record]) -> None:
    top = records[0]["activations"][-1]
    gate = top.get("gate")
    shown = [records[0]] if len(records) == 1 else [records[0], records[-1]]
    for record, color in zip(shown, (INIT, TRAINED), strict=False):
        hist = array(record["activations"][-1].get("gate_histogram") or [])
        if hist.size:
            edges = np.linspace(0, 1, hist.size + 1)
            label = f"{gate} gate at step {record['step']}"
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
    fig, (ax,) = _figure(
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
    """For each Elman RNN with a diagnosis at initialisation: the measured decay per step of
    its lag profile (fitted) against ρ(W), and the Pascanu bound γ·σ_max(W) above it."""
    points = []
    for run in runs:
        init = next((r for r in run.diagnostics if r["step"] == 0), None)
        if init is None or gamma_sigma(init) is None:
            continue
        radius = num(w_block(init).get("spectral_radius"))
        points.append((radius, num(init["flow"].get("decay_factor")), gamma_sigma(init)))
    if not points:
        return _empty("no Elman RNN with a diagnosis at initialisation")
    fig, (ax,) = _figure()
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
    _legend(fig)
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
        fig.savefig(path, format=fmt, metadata=_metadata(fmt))
        paths.append(path)
    return paths


def _metadata(fmt: str) -> dict[str, Any]:
    return {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
