"""IndRNN cell (Li et al. 2018): each unit recurs on itself only, through a weight u_j.

a_t = U x_t + u ⊙ h_{t−1} + b        (U x_t + b arrives precomputed as ax)
h_t = φ(a_t)
J_t = ∂h_t/∂h_{t−1} = diag(φ'(a_t) ⊙ u)

The product of Jacobians is diagonal, Π_j J_j = diag(Π_j φ'(a_j) ⊙ u^τ): unit j's gradient
over τ steps is bounded by (γ |u_j|)^τ, so keeping |u_j| ≤ γ_max^{1/T} bounds it. The paper's
constraint is the option `recurrent_max`: |u_j| ≤ recurrent_max at initialisation and after
every update (e.g. 2^{1/T} for a ReLU IndRNN on sequences of length T).

Initialisation: u ~ U(0, u_max), u_max = recurrent_max or 1 (init "identity": u = init_scale,
default 1, the IRNN's choice on the diagonal); U and b as the scheme says for an Elman RNN.
A spectral_radius ρ rescales u to max |u_j| = ρ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.checks import check_positive
from rnnlab.engine import init as initialisers
from rnnlab.engine.activations import DPHI, PHI
from rnnlab.engine.cells.base import PhiCell


class IndRNNCache(NamedTuple):
    h: Array  # h_t = φ(a_t): φ'(a_t) is read from it


@dataclass(frozen=True)
class IndRNNCell(PhiCell):
    """nonlinearity: φ (the paper's is relu); recurrent_max: the bound on |u_j|, or None."""

    nonlinearity: str = "relu"
    recurrent_max: float | None = None
    Cache = IndRNNCache
    name = "indrnn"
    title = "IndRNN"
    remedies = {
        "vanishing": ("orthogonal_w", "gated_cell", "lru_cell"),  # ρ = 1: max |u_j| = 1
        "stuck": ("train_longer", "gated_cell"),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recurrent_max is not None:  # as a float: 1 and 1.0 are one config
            m = check_positive("recurrent_max", self.recurrent_max, why=", or unset")
            object.__setattr__(self, "recurrent_max", m)

    def label(self, init: str = "pytorch") -> str:
        return f"{self.nonlinearity} IndRNN"

    def init_layer(
        self, rng: np.random.Generator, D: int, H: int, scheme: initialisers.Scheme
    ) -> Params:
        flat = initialisers.Scheme(scheme.init, scheme.init_scale)  # ρ applies to u, below
        p = initialisers.layer(rng, {"U": (H, D), "b": (H,)}, 1, flat)
        if scheme.init == "identity":
            u = np.full(H, 1.0 if scheme.init_scale is None else scheme.init_scale)
        else:
            u = rng.uniform(0, self.recurrent_max or 1.0, H)
        if scheme.spectral_radius is not None:
            u *= scheme.spectral_radius / max(np.abs(u).max(), 1e-300)
        return self.project({"U": p["U"], "u": u, "b": p["b"]})

    def prepare(self, p: Params) -> Params:
        return p

    def recurrent_grads(self, p: Params, trace: Any) -> Params:
        # dah_t is ∂L/∂(u ⊙ h_{t−1}): into u, summed over every step and sequence
        return {"u": np.einsum("tbh,tbh->h", trace.dah, trace.h[:-1])}

    def recurrent_matrix(self, p: Params) -> Array:
        return np.diag(p["u"])

    def exact_rate(self, p: Params) -> float | None:
        """max |u_j| for a linear IndRNN: its Jacobian product of τ steps is diag(u)^τ."""
        return float(np.abs(p["u"]).max()) if self.nonlinearity == "identity" else None

    def project(self, p: Params) -> Params:
        if self.recurrent_max is None:
            return p
        return p | {"u": np.clip(p["u"], -self.recurrent_max, self.recurrent_max)}

    def step(
        self, ax: Array, state: tuple[Array, ...], p: Params
    ) -> tuple[tuple[Array], IndRNNCache]:
        (h_prev,) = state
        a = h_prev * p["u"]  # (B, H)
        a += ax
        h = PHI[self.nonlinearity](a, out=a)
        return (h,), IndRNNCache(h)

    def vjp(
        self, dstate: tuple[Array, ...], coef: tuple, p: Params
    ) -> tuple[Array, Array, tuple[Array]]:
        (dh,), (dphi,) = dstate, coef
        da = dh * dphi  # backprop into a through φ
        return da, da, (da * p["u"],)  # and into h_{t−1} through u

    def jacobian(self, cache: IndRNNCache, p: Params) -> Array:
        d = DPHI[self.nonlinearity](cache.h) * p["u"]  # (B, H), the diagonal
        J = np.zeros(d.shape + d.shape[-1:], dtype=d.dtype)
        idx = np.arange(d.shape[-1])
        J[:, idx, idx] = d
        return J
