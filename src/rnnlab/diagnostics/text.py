"""A Diagnosis as text, the one place it is worded for a terminal: `print(d)` (lines) and the
table `rnnlab diagnose` lays out (heading, rows, evidence). Formulas are written as Unicode
(rnnlab.maths.plain); a number that is not finite reads "not finite", never "nan"."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rnnlab import maths

if TYPE_CHECKING:
    from rnnlab.diagnostics.diagnose import Diagnosis
    from rnnlab.diagnostics.spectra import BlockSpectrum

SHOWN_LAGS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def finite_g(x: float) -> str:
    """A number in 3 significant digits, or "not finite" (never "nan")."""
    return f"{x:.3g}" if math.isfinite(x) else "not finite"


def per_step(decay: float) -> str:
    """The decay rate as read: "×0.83 per step", or why there is none."""
    return f"×{decay:.3g} per step" if math.isfinite(decay) else "no decay rate (not finite)"


def spectrum(s: BlockSpectrum) -> str:
    """ "σ_max 0.8, spectral radius 0.7" (no radius for a stacked, non-square W)."""
    rho = s.spectral_radius
    radius = "" if rho is None else f", spectral radius {finite_g(rho)}"
    return f"σ_max {finite_g(s.sigma_max)}{radius}"


def heading(d: Diagnosis) -> str:
    return f"Diagnosis: {d.label.upper()}"


def evidence(d: Diagnosis) -> list[str]:
    return [maths.plain(e) for e in d.verdict.evidence]


def lines(d: Diagnosis) -> list[str]:
    """What print(d) shows: the model and summary, the top layer's lag profile at a few
    lags, the spectra, the evidence and the remedies."""
    f, m = d.flow, d.model
    nl = f" ({m['nonlinearity']})" if "nonlinearity" in m else ""
    t = f.lag.step
    out = [
        f"{heading(d)} — {m['cell']}{nl}, {m['num_layers']} layer(s), "
        f"H={m['hidden_size']}, T={d.steps}, B={d.batch}; loss {finite_g(d.loss)}, "
        f"‖∂L/∂θ‖ {finite_g(d.grad_norm)}",
        f"lag profile of L_{t} (top layer): {per_step(f.decay_factor)}, horizon "
        f"{f.horizon} steps, ratio {finite_g(f.ratio)} at τ = {f.ratio_lag}",
    ]
    lags = [lag for lag in SHOWN_LAGS if lag < t - 1] + [t - 1]
    top = f.lag.profile[-1]
    out.append("  τ      " + " ".join(f"{lag:>9d}" for lag in lags))
    ratios = (f"{top[lag]:9.3g}" if math.isfinite(top[lag]) else f"{'–':>9}" for lag in lags)
    out.append("  ratio  " + " ".join(ratios))
    out.extend(f"layer {s.layer} {s.block}: {spectrum(s)}" for s in d.spectra)
    out.append("evidence:")
    out.extend(f"  - {e}" for e in evidence(d))
    out.append("remedies, best first:")
    for i, r in enumerate(d.verdict.remedies, 1):
        used = " [in use]" if r.in_use else ""
        out.append(f"  {i}. {maths.plain(r.action)}{used} — {maths.plain(r.reason)}")
    return out


def rows(d: Diagnosis) -> list[tuple[str, str]]:
    """The measured rows of `rnnlab diagnose`'s table: (measure, value)."""
    f = d.flow
    out = [
        ("verdict", d.label),
        ("decay rate", per_step(f.decay_factor)),
        ("gradient horizon", f"{f.horizon} steps (profile > {f.horizon_threshold:g})"),
        (f"ratio at lag {f.ratio_lag}", finite_g(f.ratio)),
    ]
    out += [(f"W layer {s.layer} {s.block}", spectrum(s)) for s in d.spectra]
    for a in d.activations:
        if not math.isfinite(a.mean_dphi):
            out.append((f"activations layer {a.layer}", "not finite (the state overflowed)"))
            continue
        parts = [f"mean φ' {a.mean_dphi:.3g}"]
        if a.saturation is not None:
            parts.append(f"saturated {a.saturation:.1%}")
        if a.dead_fraction is not None:
            parts.append(f"dead {a.dead_fraction:.1%}")
        if a.gate is not None and a.gate_mean is not None:
            parts.append(f"mean {a.gate} gate {a.gate_mean:.3g}")
        out.append((f"activations layer {a.layer}", ", ".join(parts)))
    return out


def remedies(d: Diagnosis) -> list[tuple[str, str, bool]]:
    """The table's remedy rows, best first: ("remedy 1", action, whether it is in use)."""
    return [
        (f"remedy {i}", maths.plain(r.action), r.in_use)
        for i, r in enumerate(d.verdict.remedies, 1)
    ]
