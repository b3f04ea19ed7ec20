"""Gradient clipping, the article's "threshold", as a pure function that measures first.

`clip(grads, mode, threshold)` returns the clipped gradients and the global L2 norm
measured before clipping, so a clipped run still shows how large its gradients were.
Norms accumulate in float64 whatever the gradients' dtype.

Non-finite gradients are never made finite: they come back unchanged, and the norm comes
back inf (some ±inf, no NaN) or nan (some NaN), so the caller detects the divergence at
the step where it appears.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from rnnlab.checks import check_one_of, check_positive
from rnnlab.vocab import CLIP_MODES, ClipMode

__all__ = ["CLIP_MODES", "clip", "global_norm", "param_norms"]


def _sum_squares(g: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sum(np.square(g, dtype=np.float64)))


def _norm_of(arrays: list[np.ndarray]) -> float:
    """L2 norm of all elements of `arrays` together: √Σg², in float64."""
    s = math.fsum(_sum_squares(g) for g in arrays)
    if math.isfinite(s) or math.isnan(s):
        return math.sqrt(s)
    # Σg² overflowed: an inf element, or finite elements beyond ~1e154 (float64 gradients
    # only). Tell them apart, and measure the second kind rescaled, so that a very large but
    # finite gradient can still be clipped instead of being taken for a divergence.
    peak = max((float(np.max(np.abs(g))) for g in arrays if g.size), default=0.0)
    if not math.isfinite(peak):
        return peak
    return peak * math.sqrt(math.fsum(_sum_squares(g / peak) for g in arrays))


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """‖g‖₂ over all gradients together, as in Pascanu et al. (2013)."""
    return _norm_of(list(grads.values()))


def param_norms(grads: Mapping[str, np.ndarray]) -> dict[str, float]:
    """‖g‖₂ of each gradient, keyed like `grads`."""
    return {name: _norm_of([g]) for name, g in grads.items()}


def clip(
    grads: Mapping[str, np.ndarray], mode: ClipMode, threshold: float | None = None
) -> tuple[dict[str, np.ndarray], float]:
    """Clip gradients; return (clipped grads, global norm before clipping).

    - "norm": if ‖g‖ > threshold, scale every gradient by threshold/‖g‖ (Pascanu et al.
      2013), so the clipped norm is the threshold; at or under it, nothing changes.
    - "value": clip each element to [−threshold, threshold] (min-char-rnn uses 5).
    - "none": nothing changes; threshold is ignored.

    Arrays that do not change are returned as they are, not copied: treat them as
    read-only, as every function here does.
    """
    check_one_of("mode", mode, CLIP_MODES)
    if mode != "none":
        check_positive("threshold", threshold, why=f" for mode {mode!r}")
    norm = global_norm(grads)
    # threshold is None only for mode "none" (checked above); the test narrows its type
    if mode == "none" or threshold is None or not math.isfinite(norm):
        return dict(grads), norm
    c = float(threshold)
    if mode == "norm":
        if norm <= c:
            return dict(grads), norm
        scale = c / norm
        return {name: g * scale for name, g in grads.items()}, norm
    return {name: np.clip(g, -c, c) for name, g in grads.items()}, norm
