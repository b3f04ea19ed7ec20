"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates read x_t only.

[k_z, k_h] = U x_t + b               (arrives precomputed as ax; no recurrent matrix)
z_t = σ(k_z)                         the update gate
h̃_t = g(k_h),  g(x) = x + ½ (x ≥ 0), σ(x) (x < 0)      the paper's positive map
h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t
J_t = ∂h_t/∂h_{t−1} = diag(1 − z_t)

g keeps h̃ positive so the recurrence can run in log space; it is applied in the step loop
too, so both compute one function. The initial state may have any sign (the scan keeps it
out of the logarithm). With `scan = true` the layer runs as a parallel scan over time
(engine.sequence.scan); 1 − z_t is computed as σ(−k_z), not 1 − σ(k_z), so it stays
positive and exact where z_t rounds to 1. Note that z_t, in the paper's convention,
multiplies h̃_t: z near 0 keeps h_{t−1} (PyTorch's GRU has it the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.engine import init as initialisers
from rnnlab.engine.activations import DPHI, positive_map, sigmoid
from rnnlab.engine.cells.base import Activations, GatedLinearCell


class MinGRUCache(NamedTuple):
    z: Array
    keep: Array  # 1 − z = σ(−k_z)
    h_tilde: Array  # g(k_h)
    h_prev: Array


def refuse_spectral_radius(scheme: initialisers.Scheme, title: str) -> None:
    if scheme.spectral_radius is not None:
        raise ValueError(
            f"spectral_radius: got {scheme.spectral_radius:g}, but the {title} has no "
            "recurrent matrix: its gates read x_t only"
        )


@dataclass(frozen=True)
class MinGRUCell(GatedLinearCell):
    """scan: run over time as a parallel scan instead of the step loop (same function)."""

    Cache = MinGRUCache
    name = "mingru"
    title = "minGRU"
    gate_names = ("z", "h")
    carry = "z"

    def init_layer(
        self, rng: np.random.Generator, D: int, H: int, scheme: initialisers.Scheme
    ) -> Params:
        """U (2H, D) and b (2H,), blocks z then h̃, as the scheme draws input weights."""
        refuse_spectral_radius(scheme, self.title)
        return initialisers.layer(rng, {"U": (2 * H, D), "b": (2 * H,)}, 2, scheme)

    def terms(self, ax: Array, p: Params) -> tuple[Array, Array, tuple[Array, ...]]:
        H = ax.shape[-1] // 2
        k_z, k_h = ax[..., :H], ax[..., H:]
        z, keep, h_tilde = sigmoid(k_z), sigmoid(-k_z), positive_map(k_h)
        return keep, z * h_tilde, (z, keep, h_tilde)

    def coefficients(self, cache: MinGRUCache) -> tuple[Array, Array]:
        """(1 − z, ∂h_t/∂[k_z, k_h]) = (1 − z, [(h̃ − h_{t−1}) z(1 − z), z g'(k_h)])."""
        z, keep, h_tilde, h_prev = cache
        H = z.shape[-1]
        dh_dax = np.empty(z.shape[:-1] + (2 * H,), dtype=z.dtype)
        np.multiply((h_tilde - h_prev) * z, keep, out=dh_dax[..., :H])
        np.multiply(z, DPHI["g"](h_tilde), out=dh_dax[..., H:])
        return keep, dh_dax

    def activations(self, h: Array, cache: MinGRUCache) -> Activations:
        """The candidate h̃ = g(k_h) and the update gate z (1 − z keeps h_{t−1})."""
        return Activations("g", cache.h_tilde, "z", cache.z)
