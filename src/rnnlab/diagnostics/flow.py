"""Gradient flow through time, read off backpropagation through time (BPTT).

    ‖∂L/∂h_k‖ per step k and layer            delta_norms           free: the trace holds δ_k
    ‖Σ_batch dah_k h_{k−1}ᵀ‖, ‖Σ dax_k x_kᵀ‖   weight_contributions  how much of ∂L/∂W, ∂L/∂U
                                                                    each step k contributes
    ‖∂L_t/∂h_{t−τ}‖ / ‖∂L_t/∂h_t‖, τ=0..t−1    lag_profile           one masked BPTT pass
    decay factor, horizon, ratio at a lag      decay_factor, horizon (numbers from a profile)

The lag profile is the article's ⑥, ∂L_t/∂h_k = ∂L_t/∂h_t · Π_{j=k+1..t} J_j, measured exactly:
BPTT of the loss with the mask kept at step t only gives δ_k = ∂L_t/∂h_k for every k ≤ t.

Steps follow the engine: t = 1..T; h_t is row t of a (T+1, B, H) state array (row 0 is h_0);
o_t, y_t and the mask entry of step t are row t − 1 of the (T, B, ·) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_positive
from rnnlab.diagnostics._common import Index, check_lag, check_step, indices, select
from rnnlab.engine import checks
from rnnlab.engine.cells.base import index as index_cache
from rnnlab.engine.losses import LOSS_FNS
from rnnlab.engine.model import SequenceModel, Trace
from rnnlab.engine.sequence import LayerTrace, backprop


@dataclass(frozen=True)
class LagProfile:
    """How ∂L_t/∂h_{t−τ} shrinks or grows with the lag τ, for one step t, every layer.

    norms (L, t, n): ‖∂L_t/∂h^l_{t−τ}‖ for τ = 0..t−1 (h_t back to h_1), per sequence.
    profile (L, t): the same normalised by τ = 0, per sequence, then averaged over the
        sequences whose ∂L_t/∂h^l_t is not zero (nan if there is none).
    sequences: the batch indices measured.
    """

    step: int
    norms: Array
    profile: Array
    sequences: list[int]


@dataclass(frozen=True)
class GradientFlow:
    """Everything measured from one BPTT pass and the lag profile of one step.

    delta_norm: state name ("h", and "c" for LSTM) -> (L, T+1), ‖∂L/∂h_k‖ over the batch
        (Frobenius norm of the (B, H) gradient) for k = 0..T.
    dW_norm, dU_norm (L, T): ‖Σ_batch dah_k h_{k−1}ᵀ‖ and ‖Σ_batch dax_k x_kᵀ‖ for k = 1..T;
        they sum (as matrices) to ∂L/∂W and ∂L/∂U. None when not measured.
    The summary numbers come from the top layer's profile (the one nearest the loss):
    decay_factor per step, horizon in steps, and ratio = profile[ratio_lag], where ratio_lag
    is the dependency length if given, else the longest lag t − 1.
    """

    delta_norm: dict[str, Array]
    dW_norm: Array | None
    dU_norm: Array | None
    lag: LagProfile
    decay_factor: float
    horizon: int
    horizon_threshold: float
    dependency_length: int | None
    ratio_lag: int
    ratio: float


def delta_norms(model: SequenceModel, trace: Trace) -> dict[str, Array]:
    """‖∂L/∂state_k‖ (Frobenius over the batch) per layer and step: name -> (L, T+1)."""
    out = {}
    for s, name in enumerate(model.cell.state_names):
        rows = []
        for lt in trace.layers:
            d = lt.delta if s == 0 else _deltas(lt)[s]  # (T+1, B, H)
            rows.append(np.linalg.norm(d.reshape(d.shape[0], -1), axis=1))
        out[name] = np.stack(rows).astype(np.float64)
    return out


def weight_contributions(model: SequenceModel, trace: Trace, X: Array) -> tuple[Array, Array]:
    """(dW_norm, dU_norm), each (L, T): step k's share of ∂L/∂W and ∂L/∂U, as a norm.

    ‖Aᵀ C‖_F² = Σ_{b,b'} (A Aᵀ)_{bb'} (C Cᵀ)_{bb'}, so the per-step norms come from two
    batched B × B Gram matrices: O(T·B²·(G+H)) instead of forming T matrices of G × H.
    """
    T, B = trace.outputs.shape[:2]
    if X.shape[:2] != (T, B):
        raise ValueError(f"X: got shape {X.shape}; expected ({T}, {B}, ...) as in the trace")
    dW, dU = [], []
    for layer, lt in enumerate(trace.layers):
        if lt.dax is None or lt.dah is None:
            raise ValueError("trace: no dax/dah recorded; it comes from loss_and_grads")
        g_ax = _gram(lt.dax)
        g_ah = g_ax if lt.dah is lt.dax else _gram(lt.dah)  # only GRU's differ
        dW.append(_norm_from_grams(g_ah, _gram(lt.h[:-1])))
        inputs = X if layer == 0 else trace.layers[layer - 1].out
        if inputs.ndim == 2:  # token ids: one-hot x_b · x_b' is 1 when the ids agree
            g_x = (inputs[:, :, None] == inputs[:, None, :]).astype(np.float64)
        else:
            g_x = _gram(inputs)
        dU.append(_norm_from_grams(g_ax, g_x))
    return np.stack(dW), np.stack(dU)


def lag_profile(
    model: SequenceModel,
    trace: Trace,
    Y: Array,
    *,
    loss: str = "cross_entropy",
    mask: Array | None = None,
    step: int | None = None,
    sequences: int | Array | None = None,
) -> LagProfile:
    """The lag profile of L_t, t = `step` (default T), from `trace` = loss_and_grads(X, Y,
    loss, mask).trace. One BPTT pass over steps 1..t with the mask kept at step t only,
    for the chosen `sequences` (None: all; n: the first n; or indices). When the mask
    already selects step t alone, the trace's own δ are that pass and nothing is recomputed.
    Cost: one backward recurrence without weight gradients, O(t·n·G·H).
    """
    T, B, K = trace.outputs.shape
    t = check_step(step, T)
    index = select(sequences, B)
    checks.check_loss(loss)
    Y, mask = checks.check_targets_and_mask(Y, mask, loss, T, B, K, model.dtype)
    if not np.any(mask[t - 1, index]):
        raise ValueError(
            f"step: got {t}; the mask gives L_{t} no weight in the sequences measured; "
            f"expected a step that carries loss"
        )
    if np.count_nonzero(mask) == np.count_nonzero(mask[t - 1]):
        deltas = [lt.delta[: t + 1, index] for lt in trace.layers]
    else:
        deltas = _masked_bptt(model, trace, Y, loss, mask, t, index)
    norms = np.stack([np.linalg.norm(d[t:0:-1], axis=2) for d in deltas])  # (L, t, n)
    return profile_from_norms(t, norms, indices(index))


def profile_from_norms(step: int, norms: Array, sequences: list[int]) -> LagProfile:
    """The LagProfile of step t from its per-sequence norms (L, t, n), ‖∂L_t/∂h^l_{t−τ}‖ for
    τ = 0..t−1, however they were measured (the engine's BPTT, or autograd elsewhere)."""
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 3 or norms.shape[1] != step or norms.shape[2] != len(sequences):
        raise ValueError(
            f"norms: got shape {norms.shape}; expected (layers, {step}, {len(sequences)})"
        )
    first = norms[:, :1, :]
    live = first[:, 0, :] > 0  # (L, n); a sequence with ∂L_t/∂h_t = 0 has no profile
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = norms / np.where(first > 0, first, 1.0)
        count = live.sum(axis=1)  # (L,)
        profile = np.where(live[:, None, :], ratios, 0.0).sum(axis=2) / count[:, None]
    return LagProfile(step=step, norms=norms, profile=profile, sequences=list(sequences))


def decay_factor(profile: Array) -> float:
    """exp of the least-squares slope of ln(profile) against the lag: the mean factor per
    step (×0.83 means the gradient shrinks by 17 % per step back). Fitted over the finite,
    positive entries; 0.0 if the profile drops to exactly zero from a value a float could
    still hold (the gradient is cut, as by dead ReLUs); a drop to zero from below 1e-30 is
    underflow (float32 ends near 1e-45), so the fit then stops there; nan if fewer than two
    entries are usable."""
    p = np.asarray(profile, dtype=np.float64)
    zeros = np.flatnonzero(p == 0)
    if zeros.size:
        before = p[: zeros[0]]
        last = before[np.isfinite(before) & (before > 0)]
        if last.size == 0 or last[-1] >= 1e-30:
            return 0.0
        p = before
    ok = np.isfinite(p) & (p > 0)
    if np.count_nonzero(ok) < 2:
        return float("nan")
    tau = np.arange(p.size, dtype=np.float64)[ok]
    y = np.log(p[ok])
    dtau = tau - tau.mean()
    slope = float(dtau @ (y - y.mean()) / (dtau @ dtau))
    return float(np.exp(slope))


def horizon(profile: Array, threshold: float = 1e-3) -> int:
    """The largest lag up to which the normalised profile stays at or above `threshold`
    (the lag before it first drops below; nan counts as below). len(profile) − 1, the
    longest lag measured, if it never drops: the horizon then reaches past the window."""
    threshold = check_positive("threshold", threshold)
    p = np.asarray(profile, dtype=np.float64)
    below = np.flatnonzero(~(p >= threshold))
    return max(0, int(below[0]) - 1) if below.size else p.size - 1


def gradient_flow(
    model: SequenceModel,
    trace: Trace,
    X: Array,
    Y: Array,
    *,
    loss: str = "cross_entropy",
    mask: Array | None = None,
    step: int | None = None,
    dependency_length: int | None = None,
    horizon_threshold: float = 1e-3,
    sequences: int | Array | None = None,
    contributions: bool = True,
) -> GradientFlow:
    """All of the above from one training step's trace (loss_and_grads(X, Y, loss, mask)).

    Made to be recorded every step: the δ norms are read off the trace; the lag profile
    costs one backward recurrence (none when the mask already selects step t alone), and
    `sequences` limits it to a few sequences. The weight contributions cost two batched
    Gram products per layer, O(T·B²·(G+H+D)); `contributions=False` skips them.
    """
    lag = lag_profile(model, trace, Y, loss=loss, mask=mask, step=step, sequences=sequences)
    dW, dU = weight_contributions(model, trace, X) if contributions else (None, None)
    return summarise_flow(
        delta_norms(model, trace),
        lag,
        dependency_length=dependency_length,
        horizon_threshold=horizon_threshold,
        dW_norm=dW,
        dU_norm=dU,
    )


def summarise_flow(
    delta_norm: dict[str, Array],
    lag: LagProfile,
    *,
    dependency_length: int | None = None,
    horizon_threshold: float = 1e-3,
    dW_norm: Array | None = None,
    dU_norm: Array | None = None,
) -> GradientFlow:
    """A GradientFlow from δ norms and a lag profile measured anywhere (the engine, or the
    PyTorch bridge): the summary numbers are read off the top layer's profile."""
    t = lag.step
    ratio_lag = (
        t - 1 if dependency_length is None else check_lag("dependency_length", dependency_length, t)
    )
    top = lag.profile[-1]
    return GradientFlow(
        delta_norm=delta_norm,
        dW_norm=dW_norm,
        dU_norm=dU_norm,
        lag=lag,
        decay_factor=decay_factor(top),
        horizon=horizon(top, horizon_threshold),
        horizon_threshold=float(horizon_threshold),
        dependency_length=None if dependency_length is None else ratio_lag,
        ratio_lag=ratio_lag,
        ratio=float(top[ratio_lag]),
    )


def _masked_bptt(
    model: SequenceModel, trace: Trace, Y: Array, loss: str, mask: Array, t: int, index: Index
) -> list[Array]:
    """δ^l_k = ∂L_t/∂h^l_k, k = 0..t, per layer, for the sequences in `index`: the engine's
    own backward pass over the trace's caches (stacked over steps 1..t), with loss at step t
    only."""
    B = trace.outputs.shape[1]
    last = slice(t - 1, t)
    _, do = LOSS_FNS[loss](trace.outputs[last, index], Y[last, index], mask[last, index])
    n = do.shape[1]
    do *= n / B  # the loss averages over the whole batch, not over the n measured
    dout = np.zeros((t, n, model.hidden_size), dtype=do.dtype)
    dout[t - 1] = do[0] @ model.params["V"]  # backprop into out_t through the readout
    deltas: list[Array] = [np.empty(0)] * model.num_layers
    rows = (slice(0, t), index)
    for layer in reversed(range(model.num_layers)):
        lt, p = trace.layers[layer], model.layer_params(layer)
        caches = index_cache(model.cell.stack(lt.caches[:t]), rows)  # (t, n, ·)
        out_cache = tuple(a[rows] for a in lt.out_cache)
        # through the output map into h_t (identity for most cells)
        dh_above, du, _ = model.cell.output_vjp(p, out_cache, lt.h[1:][rows], None, dout)
        layer_deltas, dax = backprop(model.cell, p, caches, dh_above)
        deltas[layer] = layer_deltas[0]
        if layer > 0:
            dout = dax @ p["U"]  # (t, n, H), backprop into the layer below
            if du is not None:
                dout += du
    return deltas


def _deltas(lt: LayerTrace) -> list[Array]:
    if lt.deltas is None:
        raise ValueError("trace: no δ recorded; it comes from loss_and_grads, not forward")
    return lt.deltas


def _gram(A: Array) -> Array:
    """(T, B, ·) -> (T, B, B), A_t A_tᵀ per step."""
    return np.matmul(A, A.transpose(0, 2, 1))


def _norm_from_grams(G1: Array, G2: Array) -> Array:
    sq = np.einsum("tij,tij->t", G1.astype(np.float64), G2.astype(np.float64))
    return np.sqrt(np.maximum(sq, 0.0))  # rounding can leave a tiny negative
