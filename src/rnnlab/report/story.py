"""The seed article's argument in five short points, each with this run's own numbers.

    points(run) -> [Point(title, claim, measured), ...]

claim is the general statement, its formulas between dollar signs (rnnlab.maths renders
them as MathML for a page, as Unicode for a terminal); measured is what this run shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.diagnostics.diagnose import Diagnosis
from rnnlab.diagnostics.record import Snapshot, exact_rate, gamma_sigma, top_profile, w_block
from rnnlab.report.data import RunData, array, cell_of, no_diagnoses, num

RATIO = r"$\|\partial L_T/\partial h_{T-\tau}\| / \|\partial L_T/\partial h_T\|$"
GAMMA_SIGMA = r"$\gamma \cdot \sigma_{\max}(W)$"


@dataclass(frozen=True)
class Point:
    title: str
    claim: str
    measured: str


def _g(x: Any) -> str:
    """A number in 3 significant digits; n/a when it is missing or not finite."""
    value = num(x)
    return f"{value:.3g}" if math.isfinite(value) else "n/a"


def _top(d: Diagnosis, key: str) -> Any:
    """A statistic of the top layer's activations (None if there are none)."""
    return getattr(d.activations[-1], key) if d.activations else None


def points(run: RunData) -> list[Point]:
    """The five points, measured on `run`'s first and last diagnoses (and its training
    steps for clipping). Without diagnoses the measured part says so."""
    claims = [
        (
            r"$\tanh' \le 1$",
            r"$\phi'(a) = 1 - \tanh^2(a) \le 1$, so no step back can enlarge the gradient "
            r"through $\phi$ ($\gamma = 1$ for tanh, $1/4$ for sigmoid; ReLU′ is 0 or 1).",
        ),
        (
            "The product of Jacobians",
            r"$\partial L_T/\partial h_k = \partial L_T/\partial h_T \cdot \prod_{j=k+1}^{T} J_j$"
            r" with $J_j = \operatorname{diag}(\phi'(a_j))\,W$: one factor per step back, so a "
            "gradient from far back is a long product.",
        ),
        (
            r"$0.8^{50} \approx 1.43 \times 10^{-5}$",
            r"A factor below 1, repeated, vanishes: $0.8^{50} \approx 1.43 \times 10^{-5}$ — "
            "fifty steps back the signal is a hundred-thousandth of the local one. Above 1 it "
            "explodes.",
        ),
        (
            "Why W matters",
            r"$\|\prod J_j\| \le (\gamma\,\sigma_{\max}(W))^{\tau}$: if "
            r"$\gamma\,\sigma_{\max}(W) < 1$ vanishing is certain; $\sigma_{\max}(W) > 1/\gamma$"
            " is needed for explosion (Pascanu et al. 2013).",
        ),
        (
            "The three remedies",
            r"ReLU with $W = I$ (IRNN): $J = I$ on active units. Clipping at a threshold: a "
            r"step with $\|g\|$ above it is rescaled to it, keeping its direction. LSTM: "
            r"$c_t = f \odot c_{t-1} + i \odot g$, so "
            r"$\partial c_t/\partial c_{t-1} = \operatorname{diag}(f)$, with no $W$ in the carry.",
        ),
    ]
    if run.diagnostics:
        measured = _measured(run, run.diagnostics[0], run.diagnostics[-1])
    else:
        measured = [no_diagnoses(run.config)] * 4
        measured.append(_remedies(run, None, None))
    return [Point(t, c, m) for (t, c), m in zip(claims, measured, strict=True)]


def _measured(run: RunData, first_snapshot: Snapshot, last_snapshot: Snapshot) -> list[str]:
    first, last = first_snapshot.diagnosis, last_snapshot.diagnosis
    flow, flow0 = last.flow, first.flow
    cell = cell_of(run.config.get("model", {}) | {"cell": last.run.cell})
    nl = _top(last, "nonlinearity")
    if cell.carry is not None:
        one = (
            f"Here: the {cell.title}'s candidate is tanh, mean φ′ "
            f"{_g(_top(first, 'mean_dphi'))} → {_g(_top(last, 'mean_dphi'))}; its gradient "
            "mostly travels through the carry (see the remedies)."
        )
    elif nl == "relu":
        one = (
            f"Here: ReLU′ is 0 or 1; dead units {_pct(_top(first, 'dead_fraction'))} → "
            f"{_pct(_top(last, 'dead_fraction'))}, zero activations "
            f"{_pct(_top(first, 'inactive_fraction'))} → {_pct(_top(last, 'inactive_fraction'))}."
        )
    else:
        one = (
            f"Here ({nl}): mean φ′ {_g(_top(first, 'mean_dphi'))} → "
            f"{_g(_top(last, 'mean_dphi'))}; saturated units (φ′ < 5 % of γ) "
            f"{_pct(_top(first, 'saturation'))} → {_pct(_top(last, 'saturation'))}."
        )
    step0, step1 = first_snapshot.step, last_snapshot.step
    lag = flow.ratio_lag
    two = (
        f"Here (step {step0} → step {step1}): the gradient changes ×{_g(flow0.decay_factor)} → "
        f"×{_g(flow.decay_factor)} per step back; {RATIO} = "
        f"{_g(flow0.ratio)} → {_g(flow.ratio)} at τ = {lag}; horizon "
        f"{flow0.horizon} → {flow.horizon} steps."
    )
    decay = flow.decay_factor
    g0, g1 = gamma_sigma(first), gamma_sigma(last)
    far = _far_lag(first)
    if g0 is not None and far is not None:
        three = (
            f"Here: at initialisation {GAMMA_SIGMA} = {_g(g0)}, so the bound at τ = {far} is "
            f"${_g(g0)}^{{{far}}}$ ≈ {_power(g0, far)}; measured "
            f"$\\|\\partial L_T/\\partial h_{{T-{far}}}\\| / \\|\\partial L_T/\\partial h_T\\|$ = "
            f"{_g(_ratio_at(first, far))} at step {step0}, "
            f"{_g(_ratio_at(last, far))} at step {step1}."
        )
    else:
        power = decay ** int(lag) if math.isfinite(decay) else math.nan
        three = (
            f"Here: ×{_g(decay)} per step over τ = {lag} steps gives {_g(decay)}^{lag} ≈ "
            f"{_g(power)}; measured {_g(flow.ratio)}."
        )
    s0, s1 = w_block(first), w_block(last)
    sigma0, sigma1 = (None if s is None else s.sigma_max for s in (s0, s1))
    rho0, rho1 = (None if s is None else s.spectral_radius for s in (s0, s1))
    rate0, rate1 = exact_rate(first), exact_rate(last)
    if rate1 is not None:
        four = (
            f"Here: no bound is needed for {cell.named()}: its equations give "
            f"$\\|\\prod J\\| = \\rho^{{\\tau}}$ exactly, ρ = {_g(rate0)} → {_g(rate1)} "
            "(dashed on the lag profile)."
        )
    elif g1 is None:
        four = (
            f"Here: σ_max of the stacked W {_g(sigma0)} → "
            f"{_g(sigma1)}; no such bound holds for {cell.named()}: its carry "
            "is multiplied by gates, not by W."
        )
    else:
        verdict = "< 1: vanishing is certain" if g1 < 1 else "≥ 1: " + _beyond_bound(last, nl)
        four = (
            f"Here: $\\sigma_{{\\max}}(W)$ {_g(sigma0)} → "
            f"{_g(sigma1)}, $\\rho(W)$ "
            f"{_g(rho0)} → {_g(rho1)}; "
            f"{GAMMA_SIGMA} = {_g(g0)} → {_g(g1)} ({verdict})."
        )
    return [one, two, three, four, _remedies(run, first, last)]


def _power(g: float, n: int) -> str:
    """g^n in 3 significant digits, as a power of ten where a float cannot hold it."""
    if g <= 0:
        return _g(0.0)
    exponent = n * math.log10(g)
    return _g(g**n) if abs(exponent) < 300 else f"10^{exponent:.0f}"


def _far_lag(d: Diagnosis) -> int | None:
    """The article's τ = 50 if the profile reaches it, else the longest lag measured."""
    n = top_profile(d).size
    return None if n < 2 else min(50, n - 1)


def _ratio_at(d: Diagnosis, lag: int) -> float:
    p = top_profile(d)
    return float(p[lag]) if lag < p.size else math.nan


def _beyond_bound(d: Diagnosis, nl: Any) -> str:
    """What the measurement shows where γ·σ_max ≥ 1 and the bound forces nothing."""
    decay = d.flow.decay_factor
    if not math.isfinite(decay):
        return "the bound forces nothing, and the measured gradient is not finite: it exploded"
    if decay > 1:
        return f"the bound allows growth, and the measured gradient grows ×{decay:.3g} per step"
    if nl == "relu":
        why = f"{_pct(_top(d, 'inactive_fraction'))} of the ReLU activations are 0"
    else:
        why = (
            f"{nl} saturates: {_pct(_top(d, 'saturation'))} of the units have φ′ below "
            f"5 % of γ, mean φ′ {_g(_top(d, 'mean_dphi'))}"
        )
    return (
        f"the bound no longer forces vanishing, yet the measured gradient shrinks ×{decay:.3g} "
        f"per step: {why}, so diag(φ′) shrinks what W alone would not"
    )


def _pct(value: Any) -> str:
    v = num(value)
    return f"{v:.0%}" if math.isfinite(v) else "n/a"


def _remedies(run: RunData, first: Diagnosis | None, last: Diagnosis | None) -> str:
    model = run.config.get("model", {})
    clip = run.config.get("train", {}).get("clip", {})
    cell = cell_of(model)
    irnn = cell.label(model.get("init", "pytorch")) == "IRNN"
    parts = ["IRNN: " + ("in use" if irnn else "not used")]
    norms = array(r.get("grad_norm") for r in run.steps)
    finite = norms[np.isfinite(norms)]
    median = f"median pre-clip norm {_g(np.median(finite))}" if finite.size else "no steps"
    mode, threshold = clip.get("mode", "none"), clip.get("threshold")
    if mode == "norm" and threshold is not None:
        n = int(np.count_nonzero(finite > threshold))
        parts.append(
            f"clipping: norm at {threshold:g}, {n} of {norms.size} steps clipped, {median}"
        )
    elif mode == "value":
        parts.append(f"clipping: per element at ±{threshold:g}, {median}")
    else:
        parts.append(f"clipping: none, {median}, max {_g(finite.max() if finite.size else None)}")
    if first is not None and last is not None and _top(last, "gate"):
        gate = _top(last, "gate")
        parts.append(
            f"{cell.title}: mean {gate} gate {_g(_top(first, 'gate_mean'))} → "
            f"{_g(_top(last, 'gate_mean'))}"
        )
    else:
        parts.append(f"gated cell: {'in use' if cell.carry is not None else 'no'}")
    return "Here: " + "; ".join(parts) + "."
