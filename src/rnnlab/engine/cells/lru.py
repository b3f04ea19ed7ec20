"""LRU, the Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural
Networks for Long Sequences"): a complex diagonal linear recurrence, read out through a
nonlinear map.

x_t = λ ⊙ x_{t−1} + γ ⊙ (B u_t)      x_t ∈ ℂ^N, N = H/2 modes; B u_t + b arrives as ax
λ_j = exp(−exp(ν_j) + i·exp(θ_j))   (parameterisation "exp": |λ_j| = e^{−e^{ν_j}} < 1)
      a_j + i·b_j                   (parameterisation "direct": lam_re, lam_im)
γ_j = √(1 − |λ_j|²)                  (normalise; else γ = 1)
y_t = Re(C x_t) + D u_t             the layer's output, before the mixing
out_t = y_t + GELU(M y_t + m)       (mixing "mlp", residual around a GELU layer, GELU in its
                                    tanh form; "none": y_t)
J_t = ∂x_t/∂x_{t−1} = diag(λ)       the same at every step: Π of τ steps is diag(λ)^τ,
                                    whose norm is max_j |λ_j|^τ exactly

Real form: the state h = [Re x; Im x] (H = 2N), ax = [Re B; Im B] u + b (U holds the two
blocks; b is an extension of ours, 0 at init), and C holds [Re C | −Im C] of the paper's
complex C, so Re(C x) = C h. J_t is then the 2 × 2 block matrix [[Re λ, −Im λ], [Im λ, Re λ]]
(diagonal blocks), its eigenvalues λ and λ̄.

Ring initialisation (the paper's): |λ|² ~ U[r_min², r_max²], arg λ ~ U[0, theta_max];
B = Re B + i Im B with both parts ~ N(0, 1/(2D)), C's parts ~ N(0, 1/N), D ~ N(0, 1/D),
M, m ~ U(±1/√H). The paper trains log γ as a parameter initialised to the formula; here γ
stays tied to λ, as its text defines it. Under an init scheme other than "pytorch" (the
default) B, D and M are drawn as that scheme draws input weights; λ always comes from the
ring, so "identity" is refused. A spectral radius cannot be set: it is max |λ_j|, set by
r_max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.checks import check_number, check_one_of
from rnnlab.engine import init as initialisers
from rnnlab.engine.blas import rows as _rows
from rnnlab.engine.blas import sum_outer
from rnnlab.engine.cells.base import Activations, Cell

PARAMETERISATIONS = ("exp", "direct")
MIXINGS = ("mlp", "none")


class LRUCache(NamedTuple):
    v: Array  # B u_t + b, what γ scales: ∂L/∂γ reads it


GELU_K = math.sqrt(2 / math.pi)


def gelu(z: Array) -> tuple[Array, Array]:
    """(GELU(z), GELU'(z)) in the tanh form, ½ z (1 + tanh(k (z + 0.044715 z³))), k = √(2/π)
    (torch's approximate="tanh"): one tanh, where the erf form costs ~50× as much here and
    its exp(−z²/2) turns float32 to denormals, slowing every product that reads them."""
    z2 = z * z
    t = np.tanh(GELU_K * z * (1 + 0.044715 * z2))
    half = 0.5 * (1 + t)
    return z * half, half + 0.5 * z * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * z2)


@dataclass(frozen=True)
class LRUCell(Cell):
    """parameterisation: "exp" (the paper's) or "direct" (λ's real and imaginary parts);
    normalise: scale the input by γ = √(1 − |λ|²); r_min, r_max, theta_max: the ring λ is
    drawn from; mixing: "mlp" (GELU layer with a residual) or "none"."""

    parameterisation: str = "exp"
    normalise: bool = True
    r_min: float = 0.0
    r_max: float = 1.0
    theta_max: float = 2 * math.pi
    mixing: str = "mlp"
    Cache = LRUCache
    name = "lru"
    title = "LRU"
    hidden_multiple = 2  # h = [Re x; Im x]: N = H/2 complex modes
    separate_dah = True  # dax = γ ⊙ δ, dah = δ
    # out, y, M y + m kept; dout, dz, dy and GELU's derivative going back (measured: a
    # training step at H = 512 peaked at 86 MB, counted 72 MB with 3)
    output_arrays = 7
    output_matrices = 2  # C (H × H) with M (H × H), and D (H × D)
    remedies = {
        "vanishing": ("ring_radius", "train_longer"),
        "stuck": ("train_longer", "ring_radius"),
        "exploding": ("clip_norm",),  # |λ| < 1: the recurrence cannot grow
    }

    def __post_init__(self) -> None:
        check_one_of("parameterisation", self.parameterisation, PARAMETERISATIONS)
        check_one_of("mixing", self.mixing, MIXINGS)
        if not isinstance(self.normalise, bool):
            raise ValueError(f"normalise: got {self.normalise!r}; expected true or false")
        if self.normalise and self.parameterisation != "exp":
            raise ValueError(
                f"normalise: got true (the default) with parameterisation "
                f"{self.parameterisation!r}; γ = √(1 − |λ|²) needs |λ| < 1, which only "
                "'exp' keeps: set normalise = false"
            )
        check_number("r_min", self.r_min, lambda v: 0 <= v < 1, "a number in [0, 1)")
        check_number(
            "r_max", self.r_max, lambda v: self.r_min < v <= 1, f"in (r_min = {self.r_min:g}, 1]"
        )
        check_number("theta_max", self.theta_max, lambda v: 0 < v <= 2 * math.pi, "in (0, 2π]")

    def label(self, init: str = "pytorch") -> str:
        """ "LRU", with what differs from the paper's defaults: "LRU (λ direct, no γ)"."""
        changes = [
            "λ direct" if self.parameterisation == "direct" else "",
            "" if self.normalise else "no γ",
            f"|λ| ∈ [{self.r_min:g}, {self.r_max:g}]" if (self.r_min, self.r_max) != (0, 1) else "",
            f"arg λ ≤ {self.theta_max:.3g}" if self.theta_max != 2 * math.pi else "",
            "no mixing" if self.mixing == "none" else "",
        ]
        said = ", ".join(c for c in changes if c)
        return f"LRU ({said})" if said else "LRU"

    # -- parameters ---------------------------------------------------------------------

    def init_layer(
        self, rng: np.random.Generator, D: int, H: int, scheme: initialisers.Scheme
    ) -> Params:
        if scheme.init == "identity":
            raise ValueError(
                "init: got 'identity', but the LRU draws λ from its ring (r_min, r_max); "
                "Λ = I would make γ = 0"
            )
        if scheme.spectral_radius is not None:
            raise ValueError(
                f"spectral_radius: got {scheme.spectral_radius:g}, but the LRU's radius is "
                "max |λ_j|, drawn from its ring: set r_min and r_max"
            )
        N = H // 2
        # the ring: |λ|² uniform between r_min² and r_max², the phase uniform in [0, θ_max]
        modulus = np.sqrt(rng.uniform(self.r_min**2, self.r_max**2, N))
        phase = rng.uniform(0, self.theta_max, N)
        p: Params = {}
        if scheme.init == "pytorch":  # the paper's
            p["U"] = rng.normal(0, 1 / math.sqrt(2 * D), (H, D))
            p["b"] = np.zeros(H)
            p["D"] = rng.normal(0, 1 / math.sqrt(D), (H, D))
            mixing = initialisers.layer(rng, {"U": (H, H), "b": (H,)}, 1, scheme)
        else:  # (M, m are drawn whatever the mixing, so λ and C are the same draws either way)
            p |= initialisers.layer(rng, {"U": (H, D), "b": (H,)}, 1, scheme)
            p["D"] = initialisers.layer(rng, {"U": (H, D)}, 1, scheme)["U"]
            mixing = initialisers.layer(rng, {"U": (H, H), "b": (H,)}, 1, scheme)
        if self.parameterisation == "exp":
            with np.errstate(divide="ignore"):  # |λ| = 1 on the ring's edge: ν = −inf
                p["nu"] = np.log(-np.log(np.maximum(modulus, 1e-300)))  # |λ| = 0: ν ≈ 6.5
            p["theta"] = np.log(np.maximum(phase, 1e-300))
            p["nu"] = np.maximum(p["nu"], -30.0)  # |λ| = 1 − e^{−30}: γ ≈ 4e−7, not 0
        else:
            p["lam_re"], p["lam_im"] = modulus * np.cos(phase), modulus * np.sin(phase)
        C = rng.normal(0, 1 / math.sqrt(N), (H, H))  # [Re C | −Im C]
        p["C"] = C
        if self.mixing == "mlp":
            p["M"], p["m"] = mixing["U"], mixing["b"]
        return p

    def eigenvalues(self, p: Params) -> tuple[Array, Array]:
        """(Re λ, Im λ), each (N,), in the dtype of the params."""
        if self.parameterisation == "direct":
            return p["lam_re"], p["lam_im"]
        modulus, phase = np.exp(-np.exp(p["nu"])), np.exp(p["theta"])
        return modulus * np.cos(phase), modulus * np.sin(phase)

    def _gamma(self, p: Params) -> Array:
        if not self.normalise:
            return np.ones(p["C"].shape[1] // 2, dtype=p["C"].dtype)
        return np.sqrt(-np.expm1(-2 * np.exp(p["nu"])))  # √(1 − |λ|²), exact near |λ| = 1

    def prepare(self, p: Params) -> Params:
        lam_re, lam_im = self.eigenvalues(p)
        gamma = self._gamma(p)
        return p | {
            "lam": np.concatenate([lam_re, lam_re]),  # [Re λ; Re λ] over [Re x; Im x]
            "lam_rot": np.concatenate([-lam_im, lam_im]),  # what the swapped halves get
            "gamma2": np.concatenate([gamma, gamma]),
        }

    def recurrent_grads(self, p: Params, trace: Any) -> Params:
        """∂L/∂λ from δ_t = dah_t and x_{t−1}: with x_t = λ x_{t−1} + …, in real form
        ∂L/∂Re λ = Σ δ_re x_re + δ_im x_im, ∂L/∂Im λ = Σ δ_im x_re − δ_re x_im; ∂L/∂γ =
        Σ δ ⊙ v (v_t = B u_t + b, from the caches); then onto ν, θ (or λ's parts)."""
        h_prev, d = trace.h[:-1], trace.dah
        N = h_prev.shape[-1] // 2
        xr, xi, dr, di = h_prev[..., :N], h_prev[..., N:], d[..., :N], d[..., N:]
        g_re = np.einsum("tbn,tbn->n", dr, xr) + np.einsum("tbn,tbn->n", di, xi)
        g_im = np.einsum("tbn,tbn->n", di, xr) - np.einsum("tbn,tbn->n", dr, xi)
        if self.parameterisation == "direct":
            return {"lam_re": g_re, "lam_im": g_im}
        lam_re, lam_im = self.eigenvalues(p)
        e_nu, e_theta = np.exp(p["nu"]), np.exp(p["theta"])
        g_nu = -e_nu * (g_re * lam_re + g_im * lam_im)  # ∂λ/∂ν = −e^ν λ
        if self.normalise:
            stacked = trace.stacked if trace.stacked is not None else self.stack(trace.caches)
            v = stacked.v
            g_gamma = np.einsum("tbn,tbn->n", dr, v[..., :N])
            g_gamma += np.einsum("tbn,tbn->n", di, v[..., N:])
            gamma = self._gamma(p)
            g_nu += g_gamma * e_nu * (lam_re**2 + lam_im**2) / gamma  # ∂γ/∂ν = e^ν |λ|²/γ
        g_theta = e_theta * (g_im * lam_re - g_re * lam_im)  # ∂λ/∂θ = i e^θ λ
        return {"nu": g_nu, "theta": g_theta}

    def recurrent_matrix(self, p: Params) -> Array:
        """Λ in real form, [[diag Re λ, −diag Im λ], [diag Im λ, diag Re λ]] (H × H)."""
        lam_re, lam_im = (np.asarray(a, dtype=np.float64) for a in self.eigenvalues(p))
        return np.block([[np.diag(lam_re), -np.diag(lam_im)], [np.diag(lam_im), np.diag(lam_re)]])

    def exact_rate(self, p: Params) -> float:
        """max_j |λ_j|: the Jacobian product of τ steps is diag(λ)^τ, of norm max |λ_j|^τ
        (in float64: float32's parts could round |λ| above 1)."""
        p64 = {k: np.asarray(p[k], dtype=np.float64) for k in ("nu", "lam_re", "lam_im") if k in p}
        if "nu" in p64:
            return math.exp(-math.exp(float(p64["nu"].min())))
        return float(np.hypot(p64["lam_re"], p64["lam_im"]).max())

    # -- one step, and its derivatives ---------------------------------------------------

    def step(self, ax: Array, state: tuple[Array, ...], p: Params) -> tuple[tuple, LRUCache]:
        (h_prev,) = state
        N = h_prev.shape[-1] // 2
        h = h_prev * p["lam"]
        h[:, :N] += h_prev[:, N:] * p["lam_rot"][:N]  # Re: − Im λ · Im x
        h[:, N:] += h_prev[:, :N] * p["lam_rot"][N:]  # Im: + Im λ · Re x
        h += ax * p["gamma2"]
        return (h,), LRUCache(ax)

    def coefficients(self, cache: LRUCache) -> tuple[Array]:
        return (cache.v,)  # J_t is the same at every step; the step's one variable is v_t

    def vjp(self, dstate: tuple, coef: tuple, p: Params) -> tuple[Array, Array, tuple]:
        """δ_{t−1} = Λᵀ δ_t: conj(λ) ⊙ δ in complex form; dax = γ ⊙ δ_t, dah = δ_t."""
        (d,) = dstate
        N = d.shape[-1] // 2
        d_prev = d * p["lam"]
        d_prev[..., :N] += d[..., N:] * p["lam_rot"][N:]  # Re: + Im λ · δ_im
        d_prev[..., N:] += d[..., :N] * p["lam_rot"][:N]  # Im: − Im λ · δ_re
        return d * p["gamma2"], d, (d_prev,)

    def jacobian(self, cache: LRUCache, p: Params) -> Array:
        B, H = cache.v.shape
        N = H // 2
        J = np.zeros((B, H, H), dtype=cache.v.dtype)
        i, j = np.arange(H), np.r_[np.arange(N, H), np.arange(N)]
        J[:, i, i] = p["lam"]
        J[:, i, j] = p["lam_rot"]  # row Re_k, column Im_k: −Im λ; row Im_k, column Re_k: +Im λ
        return J

    def activations(self, h: Array, cache: LRUCache) -> Activations:
        """No φ in the recurrence: the states themselves, through the identity."""
        return Activations("identity", h[1:], None, None)

    # -- the output map ------------------------------------------------------------------

    def output(self, p: Params, h: Array, u: Array) -> tuple[Array, tuple]:
        """out_t from h_1..h_T (T, B, H) and the layer's inputs u (T, B, D), or ids (T, B)."""
        y = _rows(h, p["C"].T)
        y += p["D"].T[u] if u.ndim == 2 else _rows(u, p["D"].T)
        if self.mixing == "none":
            return y, ()
        z = _rows(y, p["M"].T)
        z += p["m"]
        return y + gelu(z)[0], (y, z)

    def output_vjp(
        self, p: Params, cache: tuple, h: Array, u: Array | None, dout: Array
    ) -> tuple[Array, Array | None, Params]:
        grads: Params = {}
        dy = dout
        if self.mixing == "mlp":
            y, z = cache
            dz = dout * gelu(z)[1]  # backprop into z through GELU
            grads |= {"M": sum_outer(dz, y), "m": dz.reshape(-1, dz.shape[-1]).sum(axis=0)}
            dy = dout + _rows(dz, p["M"])  # the residual, and back through M
        if u is None:  # the params' gradients are not wanted
            return _rows(dy, p["C"]), _rows(dy, p["D"]), {}
        grads["C"] = sum_outer(dy, h)
        if u.ndim == 2:  # token ids: D u is a column of D
            dDT = np.zeros(p["D"].T.shape, dtype=dy.dtype)
            np.add.at(dDT, u.ravel(), dy.reshape(-1, dy.shape[-1]))
            grads["D"], du = dDT.T, None
        else:
            grads["D"], du = sum_outer(dy, u), _rows(dy, p["D"])
        return _rows(dy, p["C"]), du, grads
