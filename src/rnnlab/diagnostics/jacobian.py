"""Products of step Jacobians, Π_{j=k+1..t} J_j, the factor in ∂L_t/∂h_k that vanishes or explodes.

J_j = ∂state_j/∂state_{j−1} comes from the cells (H × H; 2H × 2H for the LSTM's (h, c)).
Its product over τ = t − k steps is held as exp(ℓ)·M: after every multiplication M is
divided by its own spectral norm and ln of that norm is added to ℓ. M therefore keeps norm 1
and ‖Π J‖₂ = exp(ℓ) exactly; ℓ stays finite where the product itself would be 1e−300 or
1e+300 (or underflow to 0 or overflow to inf).

Cost: one S × S product and one SVD (for σ_max) per step and sequence, O(t·n·S³) for n
sequences; this is why only a few sequences are measured by default.

Beside it, Pascanu et al.'s (2013) bound for the Elman RNN, where J_j = diag(φ'(a_j)) W and
|φ'| ≤ γ:  ‖Π J‖₂ ≤ (γ·σ_max(W))^τ. No bound of that form applies to LSTM or GRU: their
additive carry (diag(f) on c, diag(z) on h) and the gates make J depend on the data in a way
σ_max(W) does not limit, so bound_log is None for them.

Where the equations give the product itself, the cell says so (`Cell.exact_rate`): a
diagonal linear recurrence (the LRU, J_j = diag(λ); a linear IndRNN, diag(u)) has
‖Π J‖₂ = max_j |λ_j|^τ exactly, and a linear expRNN's W^τ is orthogonal, of norm 1. That ρ is
kept beside the measurement (exact_rate), which it must equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from rnnlab.arrays import Array
from rnnlab.diagnostics._common import check_step, indices, select
from rnnlab.diagnostics.spectra import singular_values
from rnnlab.engine.cells.base import index as index_cache
from rnnlab.engine.model import SequenceModel, Trace


@dataclass(frozen=True)
class JacobianProducts:
    """One layer's Jacobian products back from step t.

    log_norm (t+1, n): ln ‖J_t J_{t−1} ⋯ J_{t−τ+1}‖₂ for τ = 0..t (row 0 is ln‖I‖ = 0), per
        measured sequence; −inf where the product is exactly zero (as when every unit on
        the path is a switched-off ReLU), nan from a non-finite J on.
    lyapunov (n,): the finite-time Lyapunov exponent log_norm[t] / t, the mean ln growth per
        step (exp(lyapunov) is the mean factor per step).
    bound_log (t+1,): τ·ln(γ·σ_max(W)), the Pascanu bound, for the Elman RNN; None otherwise.
    exact_rate: ρ where the cell's equations give ‖Π J‖₂ = ρ^τ exactly (a diagonal linear
        recurrence: max |λ_j| of an LRU, max |u_j| of a linear IndRNN; 1 for a linear expRNN,
        whose W^τ is orthogonal); None otherwise. The theory beside the measurement.
    """

    layer: int
    step: int
    sequences: list[int]
    log_norm: Array
    lyapunov: Array
    gamma: float | None
    sigma_max: float | None
    bound_log: Array | None
    exact_rate: float | None = None


def product_log_norms(jacobians: Iterable[Array]) -> Array:
    """ln ‖J_t J_{t−1} ⋯ J_{t−τ+1}‖₂ for τ = 0..t, given J_t, J_{t−1}, …, J_1 in that order,
    each (n, S, S) for n sequences. Returns (t+1, n), row 0 all zero. Renormalised at every
    step (see the module docstring), so it neither underflows nor overflows."""
    logs: list[Array] = []
    M: Array | None = None
    ell: Array | None = None
    for J in jacobians:
        M = np.array(J, dtype=np.float64) if M is None else M @ J
        bad = ~np.all(np.isfinite(M), axis=(1, 2))
        M[bad] = 0.0  # the SVD fails on nan; such a sequence's ℓ stays nan from here on
        s = np.linalg.norm(M, ord=2, axis=(1, 2))  # σ_max, by SVD
        s[bad] = np.nan
        with np.errstate(divide="ignore"):
            step_log = np.log(s)
        ell = step_log if ell is None else ell + step_log
        M /= np.where(s > 0, s, 1.0)[:, None, None]  # a zero product stays zero
        logs.append(ell)
    if ell is None:
        raise ValueError("jacobians: got none; expected at least one (n, S, S) array")
    return np.concatenate([np.zeros((1, ell.size)), np.stack(logs)])


def jacobian_products(
    model: SequenceModel,
    trace: Trace,
    *,
    step: int | None = None,
    sequences: int | Array | None = 4,
) -> list[JacobianProducts]:
    """Per layer, the Jacobian products back from step t (default T) for a few sequences
    (an int n: the first n; or indices, e.g. rng.choice(B, n, replace=False); None: all).
    Each layer's own recurrence: J^l_j = ∂state^l_j/∂state^l_{j−1}. O(L·t·n·S³)."""
    T, B = trace.outputs.shape[:2]
    t = check_step(step, T)
    index = select(sequences, B)
    out = []
    for layer, lt in enumerate(trace.layers):
        p = model.cell.prepare(model.layer_params(layer))  # as the steps read them
        jacobians = (
            model.cell.jacobian(index_cache(lt.caches[j - 1], index), p)  # J_j, (n, S, S)
            for j in range(t, 0, -1)
        )
        gamma, sigma, _ = pascanu_bound(model, layer, t)
        rate = model.cell.exact_rate(model.layer_params(layer))
        out.append(layer_products(layer, t, indices(index), jacobians, gamma, sigma, rate))
    return out


def layer_products(
    layer: int,
    step: int,
    sequences: list[int],
    jacobians: Iterable[Array],
    gamma: float | None = None,
    sigma_max: float | None = None,
    exact_rate: float | None = None,
) -> JacobianProducts:
    """One layer's JacobianProducts from its step Jacobians J_t, J_{t−1}, …, J_1 (each
    (n, S, S)), computed anywhere. gamma and sigma_max, an Elman RNN's, give the Pascanu
    bound; leave them None for other cells; exact_rate is the cell's exact law, if any."""
    log_norm = product_log_norms(jacobians)
    bound = None if gamma is None or sigma_max is None else _bound_log(gamma, sigma_max, step)
    return JacobianProducts(
        layer=layer,
        step=step,
        sequences=list(sequences),
        log_norm=log_norm,
        lyapunov=log_norm[step] / step,
        gamma=gamma,
        sigma_max=sigma_max,
        bound_log=bound,
        exact_rate=exact_rate,
    )


def pascanu_bound(
    model: SequenceModel, layer: int, t: int
) -> tuple[float | None, float | None, Array | None]:
    """(γ, σ_max(W), τ·ln(γ·σ_max(W)) for τ = 0..t) for a cell whose Jacobian is
    diag(φ') times its recurrent matrix (the Elman RNN, the IndRNN); (None, None, None) for
    gated cells, where no such bound applies."""
    gamma = model.cell.gamma
    W = model.cell.recurrent_matrix(model.layer_params(layer))
    if gamma is None or W is None:
        return None, None, None
    sigma = float(singular_values(W)[0])  # nan if W is not finite
    return gamma, sigma, _bound_log(gamma, sigma, t)


def _bound_log(gamma: float, sigma: float, t: int) -> Array:
    """τ·ln(γ·σ_max) for τ = 0..t."""
    with np.errstate(divide="ignore"):
        per_step = np.log(gamma * sigma)
    bound = np.arange(t + 1) * per_step
    bound[0] = 0.0  # ln‖I‖, also when σ_max = 0 makes 0·(−inf) a nan
    return bound
