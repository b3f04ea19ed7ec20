"""Finite-difference gradients, the first oracle for every hand-written backward pass.

Sixth-order central differences in float64,
    f'(x) ≈ [−f(x−3ε) + 9f(x−2ε) − 45f(x−ε) + 45f(x+ε) − 9f(x+2ε) + f(x+3ε)] / 60ε,
so ε can be large enough (default 3e-3) for round-off, ~1e-16·|f|/ε, to stay near 1e-13,
while the truncation error O(ε⁶) stays below it even where tanh and σ saturate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnlab.arrays import Array
from rnnlab.engine.model import SequenceModel, State

_STEPS = (-3, -2, -1, 1, 2, 3)
_WEIGHTS = np.array([-1, 9, -45, 45, -9, 1]) / 60


def numerical_grad(f: Callable[[], float], A: Array, eps: float = 3e-3) -> Array:
    """∂f/∂A, perturbing A in place one entry at a time (A is restored exactly). A may be a
    view that is not contiguous (a batch slice): entries are written through its own
    indices, since A.reshape(-1) would then be a copy that f never sees."""
    grad = np.zeros(A.shape, dtype=np.float64)
    for i in np.ndindex(A.shape):
        x = A[i]
        values = []
        for step in _STEPS:
            A[i] = x + step * eps
            values.append(f())
        A[i] = x
        grad[i] = _WEIGHTS @ np.array(values) / eps
    return grad


def relative_error(analytic: Array, numeric: Array, floor: float = 1e-6) -> float:
    """max_i |a_i − n_i| / max(|a_i|, |n_i|, floor); the floor keeps exact zeros from dividing."""
    denom = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    return float(np.max(np.abs(analytic - numeric) / denom, initial=0.0))


def check_gradients(
    model: SequenceModel,
    X: Array,
    Y: Array,
    loss: str = "cross_entropy",
    mask: Array | None = None,
    h0: State | None = None,
    eps: float = 3e-3,
) -> dict[str, float]:
    """Relative error of every BPTT gradient (params, h0, and X when it is not ids) against
    finite differences. The model must be float64."""
    if model.dtype != np.float64:
        raise ValueError(f"model.dtype: got {model.dtype}; expected float64 for finite differences")
    if h0 is None:
        B, L, H = X.shape[1], model.num_layers, model.hidden_size
        zeros = np.zeros((L, B, H))
        h0 = (zeros, zeros.copy()) if len(model.cell.state_names) == 2 else zeros
    result = model.loss_and_grads(X, Y, loss=loss, mask=mask, h0=h0, input_grad=True)

    def f() -> float:
        return model.loss(X, Y, loss=loss, mask=mask, h0=h0)

    errors = {
        k: relative_error(result.grads[k], numerical_grad(f, v, eps))
        for k, v in model.params.items()
    }
    h0_parts = h0 if isinstance(h0, tuple) else (h0,)
    dh0_parts = result.dh0 if isinstance(result.dh0, tuple) else (result.dh0,)
    for name, part, dpart in zip(("h0", "c0"), h0_parts, dh0_parts, strict=False):
        errors[name] = relative_error(dpart, numerical_grad(f, part, eps))
    if result.trace.dX is not None:
        errors["X"] = relative_error(result.trace.dX, numerical_grad(f, X, eps))
    return errors
