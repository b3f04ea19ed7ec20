"""expRNN (Lezcano-Casado & Martínez-Rubio 2019): an RNN whose W is orthogonal at every step.

S = A − Aᵀ over A's strictly upper triangle (A's diagonal and lower triangle are ignored)
W = exp(S)                           orthogonal, since S is skew-symmetric: |λ(W)| = 1
z_t = U x_t + W h_{t−1} + b          (U x_t + b arrives precomputed as ax)
h_t = φ(z_t),  φ = modReLU(z) = sign(z) ⊙ relu(|z| + b_mod)  (the paper's), or tanh, relu,
               sigmoid, identity (the linear orthogonal RNN)
J_t = ∂h_t/∂h_{t−1} = diag(φ'(z_t)) W,  modReLU' = [|z| + b_mod > 0] = [h_t ≠ 0]

Backward: ∂L/∂W = Σ_t dz_t h_{t−1}ᵀ (one GEMM), then through the Fréchet derivative of exp:
∂L/∂S = L_exp(Sᵀ, ∂L/∂W) (the adjoint of E ↦ L_exp(S, E)), and onto the parameterisation,
∂L/∂A = triu(∂L/∂S − ∂L/∂Sᵀ, 1). ∂L/∂b_mod = Σ_t dz_t ⊙ sign(h_t).
W is computed once per sequence, in `prepare`.

Initialisation of A (Henaff et al. 2016, as the paper's): S block-diagonal with 2 × 2 blocks
[[0, s], [−s, 0]], s ~ U[−π, π], so W is a random rotation in each plane (for odd H the last
unit keeps W_HH = 1). Init "identity" is A = 0 (W = I); "normal" draws A's upper triangle
~ N(0, init_scale²) (a dense W). U and b as the scheme says for an Elman RNN; b_mod
~ U(±0.01) under "pytorch" (the paper's code), else 0. A spectral radius cannot be set: it
is 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.engine import init as initialisers
from rnnlab.engine.activations import DPHI, NONLINEARITIES, PHI
from rnnlab.engine.cells.base import PhiCell


class ExpRNNCache(NamedTuple):
    h: Array  # h_t = φ(z_t): φ'(z_t) is read from it


def skew(A: Array) -> Array:
    """S = A − Aᵀ over A's strictly upper triangle, in float64."""
    upper = np.triu(np.asarray(A, dtype=np.float64), 1)
    return upper - upper.T


def orthogonal_w(A: Array) -> Array:
    """W = exp(S), float64."""
    from scipy.linalg import expm  # scipy only where a cell's mathematics needs it

    return expm(skew(A))


@dataclass(frozen=True)
class ExpRNNCell(PhiCell):
    """nonlinearity: modrelu (the paper's φ, with its own bias b_mod), or an Elman RNN's φ."""

    nonlinearity: str = "modrelu"
    Cache = ExpRNNCache
    name = "exprnn"
    title = "expRNN"
    nonlinearities = ("modrelu", *NONLINEARITIES)
    remedies = {
        "vanishing": ("gated_cell", "lru_cell", "train_longer"),
        "exploding": ("clip_norm", "gated_cell"),  # W is orthogonal: no radius to set
        "stuck": ("train_longer", "gated_cell"),
    }

    def label(self, init: str = "pytorch") -> str:
        return "expRNN" if self.nonlinearity == "modrelu" else f"{self.nonlinearity} expRNN"

    def init_layer(
        self, rng: np.random.Generator, D: int, H: int, scheme: initialisers.Scheme
    ) -> Params:
        if scheme.spectral_radius is not None:
            raise ValueError(
                f"spectral_radius: got {scheme.spectral_radius:g}, but the expRNN's "
                "W = exp(A) is orthogonal: its spectral radius is 1"
            )
        p = initialisers.layer(rng, {"U": (H, D), "b": (H,)}, 1, scheme)
        A = np.zeros((H, H))
        if scheme.init == "normal":
            sigma = 0.01 if scheme.init_scale is None else scheme.init_scale
            A = np.triu(rng.normal(0, sigma, (H, H)), 1)
        elif scheme.init != "identity":  # Henaff et al. 2016: a rotation in each plane
            k = np.arange(0, H - 1, 2)
            A[k, k + 1] = rng.uniform(-np.pi, np.pi, k.size)
        p = {"U": p["U"], "A": A, "b": p["b"]}
        if self.nonlinearity == "modrelu":
            b_mod = rng.uniform(-0.01, 0.01, H) if scheme.init == "pytorch" else np.zeros(H)
            p["b_mod"] = b_mod
        return p

    def prepare(self, p: Params) -> Params:
        W = orthogonal_w(p["A"]).astype(p["A"].dtype)
        return p | {"W": W, "W_T": np.ascontiguousarray(W.T)}

    def recurrent_grads(self, p: Params, trace: Any) -> Params:
        from scipy.linalg import expm_frechet

        h, dah = trace.h, trace.dah
        dW = super().recurrent_grads(p, trace)["W"]  # backprop into W, as an Elman RNN's
        S = skew(p["A"])
        dS = expm_frechet(S.T, dW.astype(np.float64), compute_expm=False)  # into S = A − Aᵀ
        grads = {"A": np.triu(dS - dS.T, 1).astype(dah.dtype)}  # into A's upper triangle
        if self.nonlinearity == "modrelu":
            # ∂h/∂b_mod = sign(z) where the unit is on, and sign(z) = sign(h) there
            grads["b_mod"] = np.einsum("tbh,tbh->h", trace.dax, np.sign(h[1:]))
        return grads

    def recurrent_matrix(self, p: Params) -> Array:
        return orthogonal_w(p["A"])

    def exact_rate(self, p: Params) -> float | None:
        """1 for a linear expRNN: W^τ is orthogonal, ‖W^τ‖ = 1 at every τ."""
        return 1.0 if self.nonlinearity == "identity" else None

    def project(self, p: Params) -> Params:
        return p | {"A": np.triu(p["A"], 1)}  # only the upper triangle is a parameter

    def step(
        self, ax: Array, state: tuple[Array, ...], p: Params
    ) -> tuple[tuple[Array], ExpRNNCache]:
        (h_prev,) = state
        z = h_prev @ p["W_T"]  # (B, H)
        z += ax
        if self.nonlinearity == "modrelu":
            m = np.abs(z)
            m += p["b_mod"]
            np.maximum(m, 0, out=m)
            h = np.copysign(m, z, out=m)  # sign(z) ⊙ relu(|z| + b_mod)
        else:
            h = PHI[self.nonlinearity](z, out=z)
        return (h,), ExpRNNCache(h)

    def vjp(
        self, dstate: tuple[Array, ...], coef: tuple, p: Params
    ) -> tuple[Array, Array, tuple[Array]]:
        (dh,), (dphi,) = dstate, coef
        dz = dh * dphi  # backprop into z through φ
        return dz, dz, (dz @ p["W"],)  # and into h_{t−1} through W

    def jacobian(self, cache: ExpRNNCache, p: Params) -> Array:
        return DPHI[self.nonlinearity](cache.h)[:, :, None] * p["W"][None]  # (B, H, H)
