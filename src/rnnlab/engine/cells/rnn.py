"""Elman RNN cell.

a_t = U x_t + W h_{t−1} + b          (U x_t + b arrives precomputed as ax)
h_t = φ(a_t)
J_t = ∂h_t/∂h_{t−1} = diag(φ'(a_t)) W,   and backward   J_tᵀ δ_t = Wᵀ (φ'(a_t) ⊙ δ_t)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from rnnlab.arrays import Array, Params
from rnnlab.engine.activations import DPHI, PHI
from rnnlab.engine.cells.base import PhiCell


class RNNCache(NamedTuple):
    h: Array  # h_t = φ(a_t): φ'(a_t) is read from it


@dataclass(frozen=True)
class RNNCell(PhiCell):
    nonlinearity: str = "tanh"
    Cache = RNNCache
    name = "rnn"
    title = "RNN"
    remedies = {
        "vanishing": (
            "relu_identity",
            "gated_cell",
            "orthogonal_w",
            "orthogonal_cell",
            "lru_cell",
        ),
        "stuck": ("train_longer", "gated_cell", "relu_identity"),
    }

    def label(self, init: str = "pytorch") -> str:
        if self.nonlinearity == "relu" and init == "identity":
            return "IRNN"
        return f"{self.nonlinearity} RNN"

    def step(self, ax: Array, state: tuple[Array, ...], p: Params) -> tuple[tuple[Array], RNNCache]:
        (h_prev,) = state
        a = h_prev @ p.get("W_T", p["W"].T)  # (B, H)
        a += ax
        h = PHI[self.nonlinearity](a, out=a)
        return (h,), RNNCache(h)

    def vjp(
        self, dstate: tuple[Array, ...], coef: tuple, p: Params
    ) -> tuple[Array, Array, tuple[Array]]:
        (dh,), (dphi,) = dstate, coef
        da = dh * dphi  # backprop into a through φ
        return da, da, (da @ p["W"],)  # and into h_{t−1} through W

    def jacobian(self, cache: RNNCache, p: Params) -> Array:
        return DPHI[self.nonlinearity](cache.h)[:, :, None] * p["W"][None]  # (B, H, H)
