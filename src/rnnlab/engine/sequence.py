"""The loop over time, written once for every cell: unroll forward, then BPTT backward.

Only the recurrence is sequential. Input projections U x_t + b and the weight gradients
∂U, ∂W, ∂b are single matrix products over all T·B rows, done by the caller (model.py).

Index convention: state arrays are (T+1, B, H) with row 0 the initial state, so h[t] is h_t
and delta[t] is δ_t = ∂L/∂h_t for t = 0..T; delta[0] is ∂L/∂h_0.

Beside the loop, for a cell whose recurrence is h_t = a_t ⊙ h_{t−1} + b_t with a_t, b_t
functions of x_t alone (a GatedLinearCell: minGRU, minLSTM) that asks for it (`scan`), the
parallel scan: forward h_t, and backward δ_t = dh_t + a_{t+1} ⊙ δ_{t+1}, are both such a
recurrence, solved for all t at once in log space (`scan`); the rest is elementwise over
all T·B rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.engine.cells import Cell, GatedLinearCell
from rnnlab.engine.cells.base import index


@dataclass
class LayerTrace:
    """Everything one layer saw: states, the per-step cell caches and, after BPTT, the δ's.

    states[k] is state component k (h, then c for LSTM), each (T+1, B, H).
    deltas[k] is ∂L/∂states[k], each (T+1, B, H): the total gradient, through every path.
    dax (T, B, G) is ∂L/∂(U x_t + b); dah (T, B, G) is ∂L/∂(W h_{t−1}) (the same array
    except where a gate scales W h_{t−1}, as GRU's r). caches[t−1] is step t's cache, the
    cell's NamedTuple. out (T, B, H) is what the layer hands the layer above and the
    readout (the cell's output map; h_1..h_T itself for most cells), out_cache what the
    map's backward pass reads.
    """

    states: list[Array]
    caches: list[Any] = field(repr=False)
    deltas: list[Array] | None = None
    dax: Array | None = None
    dah: Array | None = None
    stacked: Any = field(default=None, repr=False)  # the caches as one (T, ·) Cache (scan)
    output: Array | None = field(default=None, repr=False)
    out_cache: tuple = field(default=(), repr=False)

    @property
    def h(self) -> Array:
        return self.states[0]

    @property
    def out(self) -> Array:
        return self.states[0][1:] if self.output is None else self.output

    @property
    def delta(self) -> Array:
        if self.deltas is None:
            raise ValueError("trace: no δ recorded; it comes from loss_and_grads, not forward")
        return self.deltas[0]


def unroll(cell: Cell, p: Params, ax: Array, state0: tuple[Array, ...]) -> LayerTrace:
    """Run one layer over time. ax (T, B, G) = U x_t + b for every t; state0 each (B, H)."""
    if _scans(cell):
        return _scan_unroll(cell, p, ax, state0)
    T = ax.shape[0]
    states = [np.empty((T + 1,) + s.shape, dtype=ax.dtype) for s in state0]
    for buf, s in zip(states, state0, strict=True):
        buf[0] = s
    caches = []
    state = state0
    p = cell.prepare(p)
    for t in range(T):
        state, cache = cell.step(ax[t], state, p)
        for buf, s in zip(states, state, strict=True):
            buf[t + 1] = s
        caches.append(cache)
    return LayerTrace(states=states, caches=caches)


def bptt(cell: Cell, p: Params, trace: LayerTrace, dh_above: Array) -> tuple[Array, Array]:
    """Backpropagate through one layer's time steps; fills trace.deltas, dax, dah and returns
    (dax, dah).

    dh_above (T, B, H) is ∂L/∂h_t arriving from outside the recurrence (the readout, or the
    layer above); δ_t adds to it what flows back from step t+1: δ_t = dh_above_t + J_{t+1}ᵀ δ_{t+1}.
    """
    caches = trace.caches
    if _scans(cell):
        stacked = trace.stacked if trace.stacked is not None else cell.stack(caches)
        deltas, dax = _scan_backward(cell, p, stacked, dh_above)
        trace.deltas, trace.dax, trace.dah = deltas, dax, dax
        return dax, dax
    deltas, dax, dah = _backward(cell, p, lambda t: cell.coefficients(caches[t]), dh_above)
    trace.deltas, trace.dax, trace.dah = deltas, dax, dah
    return dax, dah


def backprop(cell: Cell, p: Params, caches: Any, dh_above: Array) -> tuple[list[Array], Array]:
    """bptt for caches stacked over time, each (T, n, ·), without keeping a trace: returns
    the δ's (each (T+1, n, H)) and dax. The local derivatives are computed for all steps at
    once, so each step is a few operations: the diagnostics' second backward pass, over a
    few sequences, where the per-call cost of numpy dominates."""
    if _scans(cell):
        return _scan_backward(cell, p, caches, dh_above)
    coef = list(zip(*cell.coefficients(caches), strict=True))  # step t's, as views
    deltas, dax, _ = _backward(cell, p, coef.__getitem__, dh_above)
    return deltas, dax


# A vanishing δ passes through the subnormal numbers on its way to 0, where every operation
# is many times slower (a float32 tanh RNN at T = 200 took 1.6× as long a step). Every few
# steps the backward pass sets what fell below the smallest normal number to 0, as a CPU's
# flush-to-zero mode would (a change below 1.2e−38 in float32, 2.2e−308 in float64).
FLUSH_EVERY = 4


def _backward(
    cell: Cell, p: Params, coefficients: Callable[[int], tuple], dh_above: Array
) -> tuple[list[Array], Array, Array]:
    """The loop over time of BPTT: (deltas, dax, dah) from step t's coefficients(t)."""
    T, B, H = dh_above.shape
    G = cell.gates * H
    p = cell.prepare(p)  # as the steps read them (an expRNN's W = exp(A))
    deltas = [np.empty((T + 1, B, H), dtype=dh_above.dtype) for _ in cell.state_names]
    dax = np.empty((T, B, G), dtype=dh_above.dtype)
    dah = np.empty_like(dax) if cell.separate_dah else dax
    dstate = tuple(np.zeros((B, H), dtype=dh_above.dtype) for _ in cell.state_names)
    delta, carried = deltas[0], deltas[1:]
    vjp, separate = cell.vjp, dah is not dax
    tiny = np.finfo(dh_above.dtype).tiny
    # the loop is bound by per-call costs (diagnostics run it over a few sequences), so each
    # step writes δ_t straight into its row instead of adding, then copying
    for t in reversed(range(T)):
        delta_t = np.add(dstate[0], dh_above[t], out=delta[t + 1])
        for buf, d in zip(carried, dstate[1:], strict=True):
            buf[t + 1] = d
        dax_t, dah_t, dstate = vjp((delta_t, *dstate[1:]), coefficients(t), p)
        if t % FLUSH_EVERY == 0:
            dstate = tuple(np.where(np.abs(d) < tiny, 0, d) for d in dstate)
        dax[t] = dax_t
        if separate:
            dah[t] = dah_t
    for buf, d in zip(deltas, dstate, strict=True):
        buf[0] = d
    return deltas, dax, dah


# --- the parallel scan, for h_t = a_t ⊙ h_{t−1} + b_t -----------------------------------------

SCAN_CHUNK = 64  # steps solved at once in log space; the chunks follow one another


def _scans(cell: Cell) -> TypeGuard[GatedLinearCell]:
    return isinstance(cell, GatedLinearCell) and cell.scan


def scan(a: Array, b: Array, h0: Array, chunk: int = SCAN_CHUNK) -> Array:
    """h_t = a_t ⊙ h_{t−1} + b_t for t = 1..T, a and b (T, B, H), h0 (B, H): returns h
    (T+1, B, H), row 0 h0. Any signs.

    Within a chunk of steps, from the state h_s before it, with ℓ_t = Σ_{s<j≤t} ln|a_j| and
    σ_t the sign of Π_{s<j≤t} a_j:
        h_t = σ_t e^{ℓ_t} (h_s + Σ_{s<k≤t} σ_k b_k e^{−ℓ_k}),
    a cumulative sum over the chunk. Where e^{−ℓ} could overflow (gates that shut: ℓ below
    −600 within one chunk) the sum is kept in log space instead, as a log-sum-exp over its
    positive and its negative terms apart (np.logaddexp.accumulate, slower). h_s never
    enters a logarithm, so a signed initial state needs nothing special. Only the chunks
    (T / chunk of them) are sequential; a chunk bounds |ℓ|, and with it the rounding of
    e^{±ℓ}. Computed in float64, returned in the dtype of a."""
    T, B, H = a.shape
    h = np.empty((T + 1, B, H), dtype=a.dtype)
    h[0] = h0
    start = np.asarray(h0, dtype=np.float64)
    tiny = np.log(np.finfo(np.float64).tiny)  # ln|a| of an a that is 0: a product that is 0
    with np.errstate(divide="ignore"):
        for t0 in range(0, T, chunk):
            ac = np.asarray(a[t0 : t0 + chunk], dtype=np.float64)
            c = np.asarray(b[t0 : t0 + chunk], dtype=np.float64)
            ell = np.log(np.abs(ac))
            np.maximum(ell, tiny, out=ell)
            ell = ell.cumsum(axis=0)  # (C, B, H)
            sign = None
            if np.signbit(ac).any():
                sign = np.where(np.signbit(ac), -1.0, 1.0).cumprod(axis=0)
                c = sign * c  # σ_k b_k
            e = np.exp(ell)
            if ell.min() > -600:  # e^{−ℓ} stays finite: the sum in linear space
                out = np.cumsum(c / e, axis=0)
                out += start
                out *= e
            else:
                out = e * start
                for side in (1.0, -1.0):  # the positive terms, then the negative ones
                    part = side * c
                    if np.any(part > 0):
                        logs = np.log(np.where(part > 0, part, 0.0))  # −inf: no term
                        lse = np.logaddexp.accumulate(logs - ell, axis=0)
                        out += side * np.exp(lse + ell)
            if sign is not None:
                out *= sign
            h[t0 + 1 : t0 + 1 + out.shape[0]] = out
            start = out[-1]
    return h


def _scan_unroll(cell: GatedLinearCell, p: Params, ax: Array, state0: tuple) -> LayerTrace:
    """unroll by the scan: a_t, b_t for all steps at once, then h."""
    (h0,) = state0
    a, b, parts = cell.terms(ax, cell.prepare(p))  # (T, B, H) each
    h = scan(a, b, h0)
    stacked = cell.Cache(*parts, h[:-1])
    return LayerTrace([h], [index(stacked, t) for t in range(ax.shape[0])], stacked=stacked)


def _scan_backward(
    cell: Cell, p: Params, stacked: Any, dh_above: Array
) -> tuple[list[Array], Array]:
    """BPTT by the scan: δ_t = dh_t + a_{t+1} ⊙ δ_{t+1} backwards in time (δ_T = dh_T,
    δ_0 = a_1 ⊙ δ_1), then dax for all steps at once. Returns ([δ] (T+1, B, H), dax)."""
    coef = cell.coefficients(stacked)
    a = coef[0]  # (T, B, H)
    r = scan(a[:0:-1], dh_above[-2::-1], dh_above[-1])  # r[s] = δ_{T−s}
    delta = np.empty((dh_above.shape[0] + 1,) + dh_above.shape[1:], dtype=dh_above.dtype)
    delta[1:] = r[::-1]
    dax, _, _ = cell.vjp((delta[1:],), coef, cell.prepare(p))
    delta[0] = a[0] * delta[1]
    return [delta], dax
