"""Elman RNN cell.

a_t = U x_t + W h_{t−1} + b          (U x_t + b arrives precomputed as ax)
h_t = φ(a_t)
J_t = ∂h_t/∂h_{t−1} = diag(φ'(a_t)) W,   and backward   J_tᵀ δ_t = Wᵀ (φ'(a_t) ⊙ δ_t)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.engine.activations import DPHI, PHI, check_nonlinearity

Array = np.ndarray
Params = dict[str, Array]


@dataclass(frozen=True)
class RNNCell:
    nonlinearity: str = "tanh"
    gates = 1
    state_names = ("h",)

    def __post_init__(self) -> None:
        check_nonlinearity(self.nonlinearity)

    def step(self, ax: Array, state: tuple[Array, ...], p: Params) -> tuple[tuple[Array], tuple]:
        (h_prev,) = state
        a = h_prev @ p.get("W_T", p["W"].T)  # (B, H)
        a += ax
        h = PHI[self.nonlinearity](a, out=a)
        return (h,), (h,)

    def coefficients(self, cache: tuple) -> tuple[Array]:
        """J_t = diag(φ'(a_t)) W: the diagonal, from h_t."""
        (h,) = cache
        return (DPHI[self.nonlinearity](h),)

    def vjp(
        self, dstate: tuple[Array, ...], coef: tuple, p: Params
    ) -> tuple[Array, Array, tuple[Array]]:
        (dh,), (dphi,) = dstate, coef
        da = dh * dphi  # backprop into a through φ
        return da, da, (da @ p["W"],)  # and into h_{t−1} through W

    def jacobian(self, cache: tuple, p: Params) -> Array:
        (h,) = cache
        return DPHI[self.nonlinearity](h)[:, :, None] * p["W"][None]  # (B, H, H)
