"""The loop over time, written once for every cell: unroll forward, then BPTT backward.

Only the recurrence is sequential. Input projections U x_t + b and the weight gradients
∂U, ∂W, ∂b are single matrix products over all T·B rows, done by the caller (model.py).

Index convention: state arrays are (T+1, B, H) with row 0 the initial state, so h[t] is h_t
and delta[t] is δ_t = ∂L/∂h_t for t = 0..T; delta[0] is ∂L/∂h_0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.engine.cells import Cell


@dataclass
class LayerTrace:
    """Everything one layer saw: states, the per-step cell caches and, after BPTT, the δ's.

    states[k] is state component k (h, then c for LSTM), each (T+1, B, H).
    deltas[k] is ∂L/∂states[k], each (T+1, B, H): the total gradient, through every path.
    dax (T, B, G) is ∂L/∂(U x_t + b); dah (T, B, G) is ∂L/∂(W h_{t−1}) (the same array
    except where a gate scales W h_{t−1}, as GRU's r). caches[t−1] is step t's cache, the
    cell's NamedTuple.
    """

    states: list[Array]
    caches: list[Any] = field(repr=False)
    deltas: list[Array] | None = None
    dax: Array | None = None
    dah: Array | None = None

    @property
    def h(self) -> Array:
        return self.states[0]

    @property
    def delta(self) -> Array:
        if self.deltas is None:
            raise ValueError("trace: no δ recorded; it comes from loss_and_grads, not forward")
        return self.deltas[0]


def unroll(cell: Cell, p: Params, ax: Array, state0: tuple[Array, ...]) -> LayerTrace:
    """Run one layer over time. ax (T, B, G) = U x_t + b for every t; state0 each (B, H)."""
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
    deltas, dax, dah = _backward(cell, p, lambda t: cell.coefficients(caches[t]), dh_above)
    trace.deltas, trace.dax, trace.dah = deltas, dax, dah
    return dax, dah


def backprop(cell: Cell, p: Params, caches: Any, dh_above: Array) -> tuple[list[Array], Array]:
    """bptt for caches stacked over time, each (T, n, ·), without keeping a trace: returns
    the δ's (each (T+1, n, H)) and dax. The local derivatives are computed for all steps at
    once, so each step is a few operations: the diagnostics' second backward pass, over a
    few sequences, where the per-call cost of numpy dominates."""
    coef = list(zip(*cell.coefficients(caches), strict=True))  # step t's, as views
    deltas, dax, _ = _backward(cell, p, coef.__getitem__, dh_above)
    return deltas, dax


def _backward(
    cell: Cell, p: Params, coefficients: Callable[[int], tuple], dh_above: Array
) -> tuple[list[Array], Array, Array]:
    """The loop over time of BPTT: (deltas, dax, dah) from step t's coefficients(t)."""
    T, B, H = dh_above.shape
    G = cell.gates * H
    deltas = [np.empty((T + 1, B, H), dtype=dh_above.dtype) for _ in cell.state_names]
    dax = np.empty((T, B, G), dtype=dh_above.dtype)
    dah = np.empty_like(dax) if cell.separate_dah else dax
    dstate = tuple(np.zeros((B, H), dtype=dh_above.dtype) for _ in cell.state_names)
    delta, carried = deltas[0], deltas[1:]
    vjp, separate = cell.vjp, dah is not dax
    # the loop is bound by per-call costs (diagnostics run it over a few sequences), so each
    # step writes δ_t straight into its row instead of adding, then copying
    for t in reversed(range(T)):
        delta_t = np.add(dstate[0], dh_above[t], out=delta[t + 1])
        for buf, d in zip(carried, dstate[1:], strict=True):
            buf[t + 1] = d
        dax_t, dah_t, dstate = vjp((delta_t, *dstate[1:]), coefficients(t), p)
        dax[t] = dax_t
        if separate:
            dah[t] = dah_t
    for buf, d in zip(deltas, dstate, strict=True):
        buf[0] = d
    return deltas, dax, dah
