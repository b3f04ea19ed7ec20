"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates read x_t only.

[k_f, k_i, k_h] = U x_t + b          (arrives precomputed as ax; no recurrent matrix)
f_t = σ(k_f)   i_t = σ(k_i)          forget and input gates
f'_t = f_t / (f_t + i_t)   i'_t = i_t / (f_t + i_t)      normalised: f' + i' = 1
h̃_t = g(k_h),  g(x) = x + ½ (x ≥ 0), σ(x) (x < 0)      the paper's positive map
h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t
J_t = ∂h_t/∂h_{t−1} = diag(f'_t)

With d = ∂f'/∂k: ∂f'/∂k_f = f'i'(1 − f), ∂f'/∂k_i = −f'i'(1 − i), and ∂i'/∂k = −∂f'/∂k,
so ∂h_t/∂k_{f,i} = ∂f'/∂k_{f,i} (h_{t−1} − h̃_t) and ∂h_t/∂k_h = i' g'(k_h).
The state is h alone (the paper's minLSTM has no separate cell state). g, the signed
initial state and `scan` as for minGRU (cells/mingru.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.engine import init as initialisers
from rnnlab.engine.activations import DPHI, positive_map, sigmoid
from rnnlab.engine.cells.base import Activations, GatedLinearCell
from rnnlab.engine.cells.mingru import refuse_spectral_radius


class MinLSTMCache(NamedTuple):
    f: Array  # σ(k_f)
    i: Array  # σ(k_i)
    keep: Array  # f' = f / (f + i)
    h_tilde: Array  # g(k_h)
    h_prev: Array


@dataclass(frozen=True)
class MinLSTMCell(GatedLinearCell):
    """scan: run over time as a parallel scan instead of the step loop (same function)."""

    Cache = MinLSTMCache
    name = "minlstm"
    title = "minLSTM"
    gate_names = ("f", "i", "h")
    carry = "f"

    def init_layer(
        self, rng: np.random.Generator, D: int, H: int, scheme: initialisers.Scheme
    ) -> Params:
        """U (3H, D) and b (3H,), blocks f, i, h̃, as the scheme draws input weights."""
        refuse_spectral_radius(scheme, self.title)
        return initialisers.layer(rng, {"U": (3 * H, D), "b": (3 * H,)}, 3, scheme)

    def terms(self, ax: Array, p: Params) -> tuple[Array, Array, tuple[Array, ...]]:
        H = ax.shape[-1] // 3
        f, i = sigmoid(ax[..., :H]), sigmoid(ax[..., H : 2 * H])
        h_tilde = positive_map(ax[..., 2 * H :])
        keep = f / (f + i)
        return keep, (i / (f + i)) * h_tilde, (f, i, keep, h_tilde)

    def coefficients(self, cache: MinLSTMCache) -> tuple[Array, Array]:
        """(f', ∂h_t/∂[k_f, k_i, k_h]), see the module docstring."""
        f, i, keep, h_tilde, h_prev = cache
        H = f.shape[-1]
        take = 1 - keep  # i'
        carry = keep * take * (h_prev - h_tilde)  # f'i' (h_{t−1} − h̃)
        dh_dax = np.empty(f.shape[:-1] + (3 * H,), dtype=f.dtype)
        np.multiply(carry, 1 - f, out=dh_dax[..., :H])
        np.multiply(carry, i - 1, out=dh_dax[..., H : 2 * H])
        np.multiply(take, DPHI["g"](h_tilde), out=dh_dax[..., 2 * H :])
        return keep, dh_dax

    def activations(self, h: Array, cache: MinLSTMCache) -> Activations:
        """The candidate h̃ = g(k_h) and the normalised forget gate f', which keeps h_{t−1}."""
        return Activations("g", cache.h_tilde, "f", cache.keep)
