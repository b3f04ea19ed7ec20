"""A ModuleTrace (what the twin or a watched loop measured) -> the engine's Diagnosis.

The numbers go through the same diagnostics code as the engine's: lag profile, summary
numbers, Jacobian products (the engine cells' step Jacobians on the recorded caches),
spectra, activation statistics, then the verdict. Only the per-step weight contributions
(dW_norm, dU_norm) are not measured here; they are None.

For a PackedSequence (mt.lengths), steps past a sequence's end are masked out: the δ norms
over the batch count the sequences still running (the trace holds zeros past the end), the
activation statistics count the steps taken, and the lag profile and Jacobian products of
output step t use the sequences that reach t.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from rnnlab.arrays import Array
from rnnlab.diagnostics import (
    Diagnosis,
    DiagnosisOptions,
    JacobianProducts,
    RunInfo,
    assemble,
    block_spectra,
    layer_activation_stats,
    layer_products,
    profile_from_norms,
    summarise_flow,
)
from rnnlab.diagnostics.spectra import BlockSpectrum, singular_values
from rnnlab.engine.blas import num_threads
from rnnlab.engine.cells import Cell, as_cell
from rnnlab.engine.cells.base import index
from rnnlab.torch.measure import ModuleTrace


def diagnosis(
    mt: ModuleTrace,
    options: DiagnosisOptions,
    *,
    grad_norms: object = None,
    nonfinite_steps: int | None = None,
) -> Diagnosis:
    """The Diagnosis of one traced module; the arguments are diagnose()'s."""
    # Right after a torch pass, numpy's BLAS threads contend with torch's OpenMP threads and
    # the many small SVDs of the Jacobian products ran ~10× slower; one thread avoids it.
    with num_threads(1):
        return _diagnosis(mt, options, grad_norms=grad_norms, nonfinite_steps=nonfinite_steps)


def _diagnosis(
    mt: ModuleTrace,
    options: DiagnosisOptions,
    *,
    grad_norms: object,
    nonfinite_steps: int | None,
) -> Diagnosis:
    th, rng, run = options.thresholds, options.rng, options.run
    t = mt.step
    L, T1, B = mt.states["h"].shape[:3]
    delta_norm = {
        name: np.linalg.norm(d.reshape(L, T1, -1), axis=2) for name, d in mt.deltas.items()
    }
    # packed input: only the sequences that reach step t have an L_t to profile
    reach = np.arange(B) if mt.lengths is None else np.flatnonzero(mt.lengths >= t)
    norms = np.linalg.norm(mt.lag[:, t:0:-1][:, :, reach], axis=3)  # (L, t, n): τ = 0..t−1
    lag = profile_from_norms(t, norms, [int(i) for i in reach])
    flow = summarise_flow(
        delta_norm,
        lag,
        dependency_length=options.dependency_length,
        horizon_threshold=th.horizon,
    )
    n = min(int(options.jacobian_sequences), reach.size)
    chosen = [int(i) for i in reach[:n]]
    if n and rng is not None:
        chosen = sorted(int(i) for i in reach[rng.choice(reach.size, n, replace=False)])
    jacobians = _jacobians(mt, chosen) if n else []
    spectra: list[BlockSpectrum] = []
    activations = []
    cell = _cell(mt)
    if cell is not None and mt.weights is not None:
        for layer, w in enumerate(mt.weights):
            W = cell.recurrent_matrix(w)  # diag(u) for an IndRNN, exp(A) for an expRNN
            if W is not None:  # none: minGRU, minLSTM
                spectra.extend(block_spectra(layer, cell, W, mt.hidden_size))
            if "W_hr" in w:
                sv = singular_values(w["W_hr"])
                spectra.append(BlockSpectrum(layer, "W_hr", float(sv[0]), None, sv, None))
    if cell is not None and mt.caches is not None:
        activations = [
            layer_activation_stats(layer, cell, *_taken(mt, layer), saturation_level=th.saturation)
            for layer in range(len(mt.caches))
        ]
    return assemble(
        model=mt.info,
        steps=T1 - 1,
        batch=B,
        loss=mt.loss,
        grad_norm=mt.grad_norm,
        flow=flow,
        jacobians=jacobians,
        spectra=spectra,
        activations=activations,
        # an unknown cell (a hand-written loop) gets the remedies of a plain recurrence
        run=run
        or RunInfo(
            cell=mt.kind or "rnn",
            nonlinearity=mt.nonlinearity,
            cell_options=None if mt.cell is None else mt.cell.options(),
        ),
        thresholds=th,
        grad_norms=grad_norms,  # type: ignore[arg-type]
        nonfinite_steps=nonfinite_steps,
    )


def _taken(mt: ModuleTrace, layer: int) -> tuple[Array, list[tuple[Array, ...]]]:
    """One layer's states (T+1, B, S) and caches, or with lengths the steps taken only, as
    one step of N rows: h (2, N, S), row 0 unused, and one cache; the statistics are means
    over every step and sequence, so only which entries count matters."""
    h, caches = mt.states["h"][layer], mt.caches[layer]  # type: ignore[index]
    if mt.lengths is None:
        return h, caches
    taken = np.arange(1, h.shape[0])[:, None] <= mt.lengths  # (T, B)
    rows = caches[0]._make(np.stack(parts)[taken] for parts in zip(*caches, strict=True))
    h_taken = h[1:][taken]  # (N, S)
    return np.stack([np.zeros_like(h_taken), h_taken]), [rows]


def _cell(mt: ModuleTrace) -> Cell | None:
    if mt.cell is not None or mt.kind is None:
        return mt.cell
    return as_cell(mt.kind, mt.nonlinearity)


def step_jacobians(mt: ModuleTrace, layer: int, rows: Any = slice(None)) -> Iterator[Array]:
    """Layer `layer`'s step Jacobians J_t, J_{t−1}, …, J_1 (t = mt.step), each (n, S, S) for
    the sequences `rows`: the engine cell's `jacobian` on the recorded caches and weights."""
    cell, caches, w = _cell(mt), mt.caches, mt.weights
    if cell is None or caches is None or w is None:
        raise ValueError(f"trace: {mt.name!r} has no cell kind, caches or weights recorded")
    p = cell.prepare(w[layer])  # as the steps read them
    for j in range(mt.step, 0, -1):
        c = index(caches[layer][j - 1], rows)
        if "W_hr" in p:
            yield lstm_projection_jacobian(c, p["W"], p["W_hr"])
        else:
            yield cell.jacobian(c, p)


def _jacobians(mt: ModuleTrace, chosen: list[int]) -> list[JacobianProducts]:
    """Per layer, the products of the step Jacobians J_t … J_1 for the chosen sequences."""
    cell = _cell(mt)
    if cell is None or mt.caches is None or mt.weights is None:
        return []
    out = []
    for layer, w in enumerate(mt.weights):
        gamma, sigma = cell.gamma, None
        W = cell.recurrent_matrix(w)
        if gamma is not None and W is not None:
            sigma = float(singular_values(W)[0])
        else:
            gamma = None  # no Pascanu bound for a cell without a recurrent matrix
        jacobians = step_jacobians(mt, layer, chosen)
        rate = cell.exact_rate(w)  # the theory, where the cell's equations give it
        out.append(layer_products(layer, mt.step, chosen, jacobians, gamma, sigma, rate))
    return out


def lstm_projection_jacobian(cache: tuple[Array, ...], W: Array, W_hr: Array) -> Array:
    """∂(h_t, c_t)/∂(h_{t−1}, c_{t−1}), (B, P+H, P+H), for an LSTM with h_t = W_hr (o ⊙ tanh c_t):
    the engine LSTM's Jacobian with W_hr applied to the rows of h.
        ∂c_t/∂h_{t−1} = diag(c_{t−1} f') W_f + diag(g i') W_i + diag(i g') W_g     (H × P)
        ∂h_t/∂h_{t−1} = W_hr [diag(tanh(c_t) o') W_o + diag(o tanh'(c_t)) ∂c_t/∂h_{t−1}]
        ∂h_t/∂c_{t−1} = W_hr diag(o tanh'(c_t) f)          ∂c_t/∂c_{t−1} = diag(f)
    """
    gates, c_prev, tc = cache
    B, H = c_prev.shape
    P = W.shape[1]
    i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
    Wi, Wf, Wg, Wo = (W[k * H : (k + 1) * H] for k in range(4))
    dc_dh = (
        (c_prev * f * (1 - f))[:, :, None] * Wf
        + (g * i * (1 - i))[:, :, None] * Wi
        + (i * (1 - g * g))[:, :, None] * Wg
    )  # (B, H, P)
    o_dtanh = o * (1 - tc * tc)
    dm_dh = (tc * o * (1 - o))[:, :, None] * Wo + o_dtanh[:, :, None] * dc_dh  # (B, H, P)
    J = np.zeros((B, P + H, P + H), dtype=gates.dtype)
    J[:, :P, :P] = W_hr @ dm_dh
    J[:, :P, P:] = W_hr[None] * (o_dtanh * f)[:, None, :]
    J[:, P:, :P] = dc_dh
    idx = np.arange(H)
    J[:, P + idx, P + idx] = f
    return J
