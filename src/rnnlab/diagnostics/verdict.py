"""The verdict — vanishing, exploding, stuck or healthy — with its evidence and the remedies.

Rules (every number a field of Thresholds):
- exploding if a gradient is non-finite, if the lag profile's ratio at any lag is above
  `exploding` (the gradient grows as it travels back: clipping bounds the step, not this
  gradient, so this holds in a clipped run too), if a run's history has non-finite steps,
  or, in a run that does not clip, spikes (a pre-clip global norm above `spike` ×
  the running median of the `spike_window` norms before it) or geometric growth (the
  pre-clip norm grew more than `growth`× along the least-squares line of its last
  `growth_window` finite steps):
  clipping is the remedy for both, so in a clipped run they are evidence, not the verdict;
- else vanishing if the ratio at the dependency length is below `vanishing`;
- else stuck if the run has trained and its validation loss is still at its task's
  memoryless baseline (within `baseline_margin`, or above it): the gradient reaches back,
  yet nothing has been learned;
- else healthy.
Exploding wins over vanishing: a run with both needs its spikes handled first; the evidence
still shows the vanishing ratio.

Remedies are the article's, made specific, ranked for the verdict; those the run already uses
(RunInfo) are marked and moved to the end.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_int, check_one_of, check_positive
from rnnlab.diagnostics.flow import GradientFlow
from rnnlab.engine.cells import cell_type
from rnnlab.engine.model import SequenceModel
from rnnlab.vocab import CLIP_MODES, ClipMode

LABELS = ("vanishing", "exploding", "stuck", "healthy")
REMEDIES = (
    "clip_norm",
    "train_longer",
    "relu_identity",
    "forget_bias",
    "gated_cell",
    "orthogonal_w",
    "orthogonal_cell",
    "lru_cell",
    "min_cells",
    "ring_radius",
    "chrono_init",
)
# for an exploding run, unless the cell ranks its own (cells without a W to rescale)
EXPLODING = ("clip_norm", "orthogonal_w", "orthogonal_cell", "gated_cell")
# evidence and remedies write formulas in rnnlab.maths' source form: a page typesets them
RATIO = r"$\|\partial L_t/\partial h_{t-\tau}\| / \|\partial L_t/\partial h_t\|$"


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of the diagnosis, with their defaults.

    horizon      1e-3  the gradient horizon ends where the normalised lag profile drops below
    vanishing    1e-3  ratio at the dependency length below this: vanishing (the signal from
                       that far back is a thousandth of the local one)
    exploding    1e3   ratio above this: exploding (the symmetric case)
    saturation   0.05  φ' below this fraction of its maximum counts as saturated
    spike        10    a pre-clip norm above spike × its running median is a spike
    spike_window 50    the running median is over this many earlier steps
    spike_min_history 5  earlier finite norms needed before a step can be called a spike
    clip_multiple 2    suggested clipping threshold = clip_multiple × the median norm
                       (Pascanu et al. 2013 found 0.5–10× the average norm to work)
    growth       1e3   a pre-clip norm that grew more than this over growth_window steps,
                       along a straight line in log scale, grows geometrically
    growth_window 100  the last this many finite steps of a history are fitted
    baseline_margin 0.1  a validation loss above (1 − this) × the memoryless baseline has
                       learned nothing yet (stuck, once the run has trained)
    """

    horizon: float = 1e-3
    vanishing: float = 1e-3
    exploding: float = 1e3
    saturation: float = 0.05
    spike: float = 10.0
    spike_window: int = 50
    spike_min_history: int = 5
    clip_multiple: float = 2.0
    growth: float = 1e3
    growth_window: int = 100
    baseline_margin: float = 0.1

    def __post_init__(self) -> None:
        positive = ("horizon", "vanishing", "exploding", "saturation", "spike", "clip_multiple")
        for name in (*positive, "growth", "baseline_margin"):
            check_positive(name, getattr(self, name), finite=False)
        if not self.vanishing < self.exploding:
            raise ValueError(
                f"vanishing: got {self.vanishing!r}; expected below exploding ({self.exploding!r})"
            )
        if not self.horizon < 1:
            raise ValueError(f"horizon: got {self.horizon!r}; expected 0 < horizon < 1")
        if not self.baseline_margin < 1:
            raise ValueError(
                f"baseline_margin: got {self.baseline_margin!r}; expected 0 < baseline_margin < 1"
            )
        for name in ("spike_window", "spike_min_history", "growth_window"):
            check_int(name, getattr(self, name), 1)


@dataclass(frozen=True)
class RunInfo:
    """What the run already does, so the remedies can say which are in use.
    spectral_radius: the radius W was rescaled to at initialisation, if any; forget_bias:
    the LSTM forget-gate bias set at initialisation, if any; cell_options: the cell's own
    options, as configs spell them (an LRU's ring r_min, r_max)."""

    cell: str
    nonlinearity: str | None = None
    init: str = "pytorch"
    clip_mode: ClipMode = "none"
    clip_threshold: float | None = None
    spectral_radius: float | None = None
    forget_bias: float | None = None
    cell_options: dict[str, Any] | None = None  # None: not recorded (older records)

    def __post_init__(self) -> None:
        cell_type(self.cell)  # a registered kind
        check_one_of("clip_mode", self.clip_mode, CLIP_MODES)

    @classmethod
    def from_model(
        cls,
        model: SequenceModel,
        *,
        clip_mode: ClipMode = "none",
        clip_threshold: float | None = None,
        spectral_radius: float | None = None,
    ) -> RunInfo:
        """Cell, nonlinearity, init, spectral radius and forget bias read off the model;
        clipping is the caller's to say."""
        options = model.cell.options()
        return cls(
            cell=model.kind,
            nonlinearity=options.get("nonlinearity"),
            init=model.init,
            clip_mode=clip_mode,
            clip_threshold=clip_threshold,
            spectral_radius=spectral_radius or model.spectral_radius,
            forget_bias=options.get("forget_bias"),
            cell_options=options,
        )


@dataclass(frozen=True)
class HistoryStats:
    """A run's pre-clip global gradient norms: how many steps, their median over the finite
    ones, the steps (0-based) that spiked, how many steps were non-finite and the first of
    them; calm_median: the median before the first spike or non-finite step (the scale a
    clipping threshold should be set from, not the explosion's; None with fewer than
    spike_min_history such steps); growth: the factor per step of the least-squares line
    through ln‖g‖ over the last `growth_steps` finite steps (spanning growth_span steps),
    from norm growth_from to growth_to (None with fewer than spike_min_history of them)."""

    steps: int
    median_norm: float | None
    spikes: list[int]
    nonfinite_steps: int
    first_nonfinite: int | None = None
    calm_median: float | None = None
    growth: float | None = None
    growth_steps: int = 0
    growth_span: int = 0
    growth_from: float | None = None
    growth_to: float | None = None

    @property
    def growth_total(self) -> float:
        """How much the fitted line grows over the steps it spans (1.0 when not measured)."""
        if self.growth is None:
            return 1.0
        return float(self.growth**self.growth_span)


@dataclass(frozen=True)
class Learning:
    """Where the run's loss stands at the snapshot: the last validation loss, at `step`,
    against the task's memoryless baseline (the loss of the best input-blind guess)."""

    step: int
    loss: float
    baseline: float


@dataclass(frozen=True)
class Remedy:
    """name: one of REMEDIES."""

    name: str
    action: str
    reason: str
    in_use: bool


@dataclass(frozen=True)
class Verdict:
    label: str
    evidence: list[str]
    remedies: list[Remedy]
    suggested_clip: float | None = None
    history: HistoryStats | None = None


def history_stats(
    grad_norms: Sequence[float] | Array,
    nonfinite_steps: int | None = None,
    thresholds: Thresholds | None = None,
) -> HistoryStats:
    """Summarise a run's pre-clip global gradient norms, one per step. `nonfinite_steps`
    counts steps whose gradients were not finite; None counts the non-finite norms."""
    th = thresholds or Thresholds()
    norms = np.asarray(grad_norms, dtype=np.float64)
    if norms.ndim != 1:
        raise ValueError(f"grad_norms: got shape {norms.shape}; expected one norm per step")
    finite = np.isfinite(norms)
    if np.any(norms[finite] < 0):
        raise ValueError("grad_norms: got a negative value; expected norms >= 0")
    if nonfinite_steps is None:
        nonfinite_steps = int(np.count_nonzero(~finite))
    else:
        nonfinite_steps = check_int("nonfinite_steps", nonfinite_steps, 0)
    clean = np.where(finite, norms, np.nan)
    running = _running_median(clean, th.spike_window, th.spike_min_history)
    with np.errstate(invalid="ignore"):
        spikes = np.flatnonzero(clean > th.spike * running)  # nan compares False
    bad = np.flatnonzero(~finite)
    first = int(bad[0]) if bad.size else None
    calm_end = min([norms.size, *spikes[:1], *bad[:1]])
    calm = norms[:calm_end][finite[:calm_end]]
    # the last growth_window finite steps (ln 0 has no place on the line), at their own steps
    fitted = np.flatnonzero(finite & (norms > 0))[-th.growth_window :]
    growth = None
    if fitted.size >= th.spike_min_history:
        tau = fitted.astype(np.float64)
        y = np.log(norms[fitted])
        dtau = tau - tau.mean()
        growth = math.exp(float(dtau @ (y - y.mean()) / (dtau @ dtau)))
    measured = growth is not None
    return HistoryStats(
        steps=int(norms.size),
        median_norm=float(np.median(norms[finite])) if finite.any() else None,
        spikes=[int(i) for i in spikes],
        nonfinite_steps=nonfinite_steps,
        first_nonfinite=first,
        calm_median=float(np.median(calm)) if calm.size >= th.spike_min_history else None,
        growth=growth,
        growth_steps=int(fitted.size) if measured else 0,
        growth_span=int(fitted[-1] - fitted[0]) if measured else 0,
        growth_from=float(norms[fitted[0]]) if measured else None,
        growth_to=float(norms[fitted[-1]]) if measured else None,
    )


def judge(
    *,
    run: RunInfo,
    flow: GradientFlow | None = None,
    gradients_finite: bool = True,
    grad_norm: float | None = None,
    history: HistoryStats | None = None,
    learning: Learning | None = None,
    thresholds: Thresholds | None = None,
    notes: Sequence[str] = (),
) -> Verdict:
    """The verdict from a snapshot's gradient flow, a run's history, where its loss stands,
    or any of them (see the module docstring for the rules). `grad_norm`, the snapshot's
    global norm, sets the suggested clipping threshold when there is no history. `notes`
    are further evidence lines."""
    th = thresholds or Thresholds()
    evidence: list[str] = []
    exploding = vanishing = False
    if flow is not None:
        evidence.extend(_flow_lines(flow, th))
        exploding = _peak(flow)[1] > th.exploding  # the gradient grows back: inf counts
        vanishing = flow.ratio < th.vanishing
    if not gradients_finite:
        exploding = True
        evidence.append("the gradients of this snapshot are not finite: backpropagation overflowed")
    if history is not None:
        evidence.extend(_history_lines(history))
        unclipped = run.clip_mode == "none"
        grows = history.growth_total > th.growth
        exploding = exploding or history.nonfinite_steps > 0
        exploding = exploding or (unclipped and (bool(history.spikes) or grows))
        tamed = [w for w, seen in (("spikes", history.spikes), ("growth", grows)) if seen]
        if tamed and not unclipped:
            were = "were" if len(tamed) > 1 or history.spikes else "was"
            evidence.append(f"the {' and '.join(tamed)} {were} tamed by {run.clip_mode} clipping")
    stuck = learning is not None and learning.step > 0 and _at_baseline(learning, th)
    if learning is not None:
        evidence.append(_learning_line(learning, th))
    evidence.extend(notes)
    label = (
        "exploding" if exploding else "vanishing" if vanishing else "stuck" if stuck else "healthy"
    )
    median, scale = None, "median pre-clip norm {} before any spike"
    if history is not None:
        median = history.calm_median
        if median is None and history.median_norm is not None:
            median, scale = history.median_norm, "median pre-clip norm {}, spikes included"
    if median is None and grad_norm is not None and math.isfinite(grad_norm) and grad_norm > 0:
        median, scale = grad_norm, "this snapshot's gradient norm {}; a run's history is better"
    suggested = None if median is None else th.clip_multiple * median
    return Verdict(
        label=label,
        evidence=evidence,
        remedies=remedies(label, run, median, th.clip_multiple, scale),
        suggested_clip=suggested,
        history=history,
    )


def _at_baseline(learning: Learning, th: Thresholds) -> bool:
    """The loss has not moved below the baseline by the margin (a non-finite loss counts)."""
    return not learning.loss < (1 - th.baseline_margin) * learning.baseline


def _flow_lines(flow: GradientFlow, th: Thresholds) -> list[str]:
    r, lag = flow.ratio, flow.ratio_lag
    where = (
        "the dependency length"
        if flow.dependency_length is not None
        else "the longest lag measured; pass dependency_length to judge at the task's"
    )
    if not math.isfinite(r):
        return [
            RATIO + f" is not finite at τ = {lag} ({where}): the "
            "gradient overflowed on its way back, so no decay rate or horizon can be read"
        ]
    lines = [
        RATIO + f" = {r:.3g} at τ = {lag} ({where}); vanishing below "
        f"{th.vanishing:g} (the signal from that far back is under a thousandth of the local "
        f"one: too weak to learn from), exploding above {th.exploding:g}"
    ]
    end = flow.lag.profile.shape[1] - 1
    reach = f"≥ {end} (the whole window)" if flow.horizon == end else f"{flow.horizon}"
    decay = (
        f"decay ×{flow.decay_factor:.3g} per step"
        if math.isfinite(flow.decay_factor)
        else "no decay rate (too few finite, positive lags)"
    )
    lines.append(f"{decay}; gradient horizon {reach} steps (profile ≥ {flow.horizon_threshold:g})")
    lag_at, peak = _peak(flow)
    if peak > 1:
        lines.append(
            f"the lag profile rises above 1: ×{peak:.3g} at τ = {lag_at}, so the gradient "
            "grows as it travels back"
        )
    return lines


def _peak(flow: GradientFlow) -> tuple[int, float]:
    """(τ, ratio) where the top layer's lag profile is largest (growth at any lag is an
    explosion; inf counts, nan does not)."""
    top = np.asarray(flow.lag.profile[-1], dtype=np.float64)
    if not np.any(np.isfinite(top) | np.isinf(top)):
        return 0, -math.inf
    safe = np.where(np.isnan(top), -np.inf, top)
    lag = int(np.argmax(safe))
    return lag, float(safe[lag])


def _learning_line(learning: Learning, th: Thresholds) -> str:
    where = f"validation loss {learning.loss:.4g} at step {learning.step}"
    base = f"the memoryless baseline {learning.baseline:.4g}"
    if _at_baseline(learning, th):
        at = (
            f"within {th.baseline_margin:.0%} of {base}"
            if learning.loss < learning.baseline
            else f"not below {base}"
        )
        return f"{where} is {at}: nothing has been learned from the inputs yet"
    return f"{where}, {1 - learning.loss / learning.baseline:.0%} below {base}"


def remedies(
    label: str,
    run: RunInfo,
    median_norm: float | None,
    clip_multiple: float = 2.0,
    scale: str = "median pre-clip norm {}",
) -> list[Remedy]:
    """The remedies for `label`, best first; those `run` already uses go last, marked.
    `scale` says where median_norm comes from ("{}" is the number)."""
    if label not in LABELS:
        raise ValueError(f"label: got {label!r}; expected one of {', '.join(LABELS)}")
    if label == "exploding":
        order = list(cell_type(run.cell).remedies.get(label, EXPLODING))
    elif label == "healthy":
        order = ["clip_norm"]
    else:  # vanishing or stuck: what the cell ranks first
        order = list(cell_type(run.cell).remedies.get(label, ()))
        if label == "stuck" and run.clip_mode == "none":
            order.append("clip_norm")
    for name in order:  # a cell's list names them: a typo there is caught here
        check_one_of("remedy", name, REMEDIES)
    made = [_remedy(name, label, run, median_norm, clip_multiple, scale) for name in order]
    return sorted(made, key=lambda r: r.in_use)  # stable: keeps the ranking within each


def _remedy(
    name: str, label: str, run: RunInfo, median: float | None, clip_multiple: float, scale: str
) -> Remedy:
    if name == "clip_norm":
        if median is None:
            action = "clip the global gradient norm at 0.5–10× its median pre-clip value"
        else:
            action = (
                f"clip the global gradient norm at {clip_multiple * median:.3g} "
                f"({scale.format(f'{median:.3g}')}; 0.5–10× is "
                f"{0.5 * median:.3g}–{10 * median:.3g})"
            )
        reason = (
            "rescaling a step whose norm is too large keeps its direction and stops the jump"
            if label == "exploding"
            else "a cheap safeguard against later spikes; it does not cure vanishing"
        )
        return Remedy(name, action, reason, in_use=run.clip_mode != "none")
    if name == "train_longer":
        return Remedy(
            name,
            "train longer, or with a larger learning rate"
            + (" (clipping keeps a larger step safe)" if run.clip_mode != "none" else ""),
            (
                "the gradient reaches the dependency length (the evidence gives its ratio), "
                "yet the loss has not left the baseline; a long dependency is often learned "
                "only after a plateau there"
                if label != "vanishing"
                else "this cell learns how long it remembers (its gates or its λ): training "
                "can open what the initialisation left shut, and the verdict follows the "
                "diagnosis after it"
            ),
            in_use=False,
        )
    if name == "relu_identity":
        return Remedy(
            name,
            "use RNN(nonlinearity='relu', init='identity'): ReLU, W = I, biases 0 (IRNN, "
            "Le et al. 2015)",
            r"$J_t = \operatorname{diag}(\phi') W$ is then $I$ on the active units, so "
            "gradients pass unchanged",
            in_use=run.nonlinearity == "relu" and run.init == "identity",
        )
    if name == "forget_bias":
        return Remedy(
            name,
            "set the LSTM's forget-gate bias to 1 (forget_bias=1.0; Gers et al. 2000, "
            "Jozefowicz et al. 2015)",
            r"$f \approx \sigma(1) \approx 0.73$ from the start keeps the carry "
            r"$c_t = f \odot c_{t-1} + \ldots$ open, and "
            "the gradient flows back through diag(f)",
            in_use=run.init == "chrono" or (run.forget_bias is not None and run.forget_bias > 0),
        )
    if name == "chrono_init":
        return Remedy(
            name,
            "initialise with init='chrono' (t_max: the dependency length; Tallec & Ollivier 2018)",
            r"gate biases drawn so that a unit keeps its state for up to t_max steps: "
            r"$b_f \sim \log U[1, t_{\max} - 1]$, $b_i = -b_f$ (an LSTM), "
            r"$b_z$ alike (a GRU)",
            in_use=run.init == "chrono",
        )
    if name == "gated_cell":
        return Remedy(
            name,
            "use an LSTM (forget_bias=1) or a GRU",
            r"their additive carry ($c_t = f \odot c_{t-1} + \ldots$ in an LSTM, "
            r"$h_t = z \odot h_{t-1} + \ldots$ in a "
            "GRU) passes gradients back through diag(f) or diag(z), which W does not multiply",
            in_use=cell_type(run.cell).carry is not None,
        )
    if name == "orthogonal_cell":
        return Remedy(
            name,
            "use an expRNN (cell='exprnn'): W = exp(A − Aᵀ) stays orthogonal through "
            "training (Lezcano-Casado & Martínez-Rubio 2019)",
            r"$\|W^{\tau}\| = 1$ at every lag τ, so the recurrence neither shrinks nor grows "
            r"the gradient; only $\phi'$ can (modReLU keeps it 1 on the active units)",
            in_use=run.cell == "exprnn",
        )
    if name == "lru_cell":
        return Remedy(
            name,
            "use an LRU (cell='lru'; Orvieto et al. 2023)",
            r"no $\phi'$ in the recurrence: $J_t = \operatorname{diag}(\lambda)$ at every step, "
            r"so the gradient over τ steps is $\max_j |\lambda_j|^{\tau}$ exactly, set by the "
            "ring it is drawn from and learned",
            in_use=run.cell == "lru",
        )
    if name == "min_cells":
        return Remedy(
            name,
            "use a minGRU or a minLSTM (cell='mingru' or 'minlstm'; Feng et al. 2024)",
            r"gates from $x_t$ alone: $J_t = \operatorname{diag}(1 - z_t)$, no W and no "
            r"$\phi'$ in the recurrence, and the sequence trains as one parallel scan",
            in_use=run.cell in ("mingru", "minlstm"),
        )
    if name == "ring_radius":
        return Remedy(
            name,
            "draw λ closer to the unit circle: r_min = 0.9, r_max = 0.999 (the LRU paper's "
            "long-range setting; Orvieto et al. 2023)",
            r"a mode keeps $|\lambda|^{\tau}$ of its gradient over τ steps: to keep a "
            r"thousandth over τ steps it needs $|\lambda| \ge 10^{-3/\tau}$ (0.9986 at "
            r"τ = 5000, 0.986 at τ = 500)",
            in_use=run.cell == "lru" and (run.cell_options or {}).get("r_min", 0) >= 0.9,
        )
    in_use = run.init in ("orthogonal", "identity") or run.spectral_radius is not None
    if label == "exploding":
        return Remedy(
            name,
            "rescale W so that γ·σ_max(W) < 1 (spectral_radius below 1/γ at init), or "
            "initialise it orthogonal",
            "σ_max(W) > 1/γ is necessary for explosion (Pascanu et al. 2013)",
            in_use=in_use,
        )
    return Remedy(
        name,
        "initialise W orthogonal (init='orthogonal') or rescale it to spectral radius 1 "
        "(spectral_radius=1.0)",
        r"$W^{\tau}$ then neither shrinks nor grows with the lag τ (Saxe et al. 2014)",
        in_use=in_use,
    )


def _history_lines(h: HistoryStats) -> list[str]:
    median = "n/a" if h.median_norm is None else f"{h.median_norm:.3g}"
    shown = ", ".join(str(s) for s in h.spikes[:5]) + (", …" if len(h.spikes) > 5 else "")
    spikes = f"{len(h.spikes)} spikes (steps {shown})" if h.spikes else "no spikes"
    lines = [
        f"history of {h.steps} steps: median pre-clip norm {median}, {spikes}, "
        f"{h.nonfinite_steps} non-finite steps"
    ]
    notable = h.growth_total > 10 or h.growth_total < 0.1 or h.first_nonfinite is not None
    if h.growth is not None and notable:
        lines.append(
            f"the pre-clip norm changed ×{h.growth:.3g} per step over the last "
            f"{h.growth_steps} finite steps ({h.growth_from:.3g} → {h.growth_to:.3g})"
        )
    if h.first_nonfinite is not None:
        lines.append(
            f"the loss, gradient or update became non-finite at step {h.first_nonfinite}: the "
            "run blew up there"
        )
    return lines


def _running_median(x: Array, window: int, min_count: int, chunk: int = 4096) -> Array:
    """For each step i, the median of the finite values among x[i−window:i] (nan in x marks
    a non-finite step), or nan when fewer than min_count of them are finite."""
    padded = np.concatenate([np.full(window, np.nan), x])
    views = np.lib.stride_tricks.sliding_window_view(padded, window)[: x.size]
    out = np.full(x.size, np.nan)
    for start in range(0, x.size, chunk):  # chunks bound nanmedian's copy to chunk × window
        w = views[start : start + chunk]
        enough = np.count_nonzero(~np.isnan(w), axis=1) >= min_count
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-nan windows: masked below
            med = np.nanmedian(w, axis=1)
        out[start : start + chunk] = np.where(enough, med, np.nan)
    return out
