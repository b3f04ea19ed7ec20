"""GRU cell, PyTorch's gate order (r, z, n); the reset gate acts after the recurrent product.

    [ax_r, ax_z, ax_n] = U x_t + b
    [ah_r, ah_z, ah_n] = W h_{t−1} + [0, 0, b_hn]
    r = σ(ax_r + ah_r)   z = σ(ax_z + ah_z)
    n = tanh(ax_n + r ⊙ ah_n)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

b is PyTorch's b_ih + [b_hr, b_hz, 0]; b_hn stays apart because r multiplies it. Init
"chrono" sets b_z = log(u), u ~ U[1, T_max − 1] (Tallec & Ollivier 2018): z multiplies
h_{t−1}, so it starts at u/(1 + u), a memory of 1/(1 − z) = 1 + u steps. Jacobian:
    ∂h_t/∂h_{t−1} = diag(z) + diag((h_{t−1} − n) z') W_z
                  + diag((1 − z) n') [diag(r) W_n + diag(ah_n r') W_r]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.engine import init as initialisers
from rnnlab.engine.activations import sigmoid
from rnnlab.engine.cells.base import Activations, Cell


class GRUCache(NamedTuple):
    r: Array
    z: Array
    n: Array
    ah_n: Array  # W_n h_{t−1} + b_hn, which r scales
    h_prev: Array


@dataclass(frozen=True)
class GRUCell(Cell):
    Cache = GRUCache
    name = "gru"
    title = "GRU"
    gate_names = ("r", "z", "n")
    carry = "z"
    chrono = True
    remedies = {
        "vanishing": ("chrono_init", "orthogonal_w", "gated_cell", "lru_cell"),
        "stuck": ("train_longer",),
    }
    separate_dah = True  # r scales W_n h_{t−1} + b_hn

    def init_layer(
        self, rng: np.random.Generator, D: int, H: int, scheme: initialisers.Scheme
    ) -> Params:
        """U, W, b and b_hn (H,), PyTorch's b_hn: r multiplies it, so it stays apart."""
        shapes = {"U": (3 * H, D), "W": (3 * H, H), "b": (3 * H,), "b_hn": (H,)}
        p = initialisers.layer(rng, shapes, self.gates, scheme)
        if scheme.init == "chrono":
            p["b"][H : 2 * H] = initialisers.chrono_bias(p["b"][H : 2 * H], scheme)
        return p

    def recurrent_grads(self, p: Params, trace: Any) -> Params:
        G = trace.dah.shape[2]  # b_hn sits in the n block of W h_{t−1} + b_hn
        return super().recurrent_grads(p, trace) | {
            "b_hn": trace.dah[:, :, 2 * G // 3 :].sum(axis=(0, 1))
        }

    def step(self, ax: Array, state: tuple[Array, ...], p: Params) -> tuple[tuple[Array], GRUCache]:
        (h_prev,) = state
        H = h_prev.shape[1]
        ah = h_prev @ p.get("W_T", p["W"].T)  # (B, 3H)
        ah[:, 2 * H :] += p["b_hn"]
        rz = sigmoid(ax[:, : 2 * H] + ah[:, : 2 * H])
        r, z = rz[:, :H], rz[:, H:]
        ah_n = ah[:, 2 * H :]
        n = np.tanh(ax[:, 2 * H :] + r * ah_n)
        h = n + z * (h_prev - n)
        return (h,), GRUCache(r, z, n, ah_n, h_prev)

    def coefficients(self, cache: GRUCache) -> tuple[Array, Array, Array]:
        """The step's local derivatives, for any leading dims: dh_da = [∂h_t/∂a_r,
        ∂h_t/∂a_z, ∂h_t/∂a_n] = [ah_n r' dh_dan, (h_{t−1} − n) z', dh_dan] with
        dh_dan = (1 − z) n', into the pre-activations of r, z, n; and r (which scales
        W_n h + b_hn) and z (the carry z h_{t−1})."""
        r, z, n, ah_n, h_prev = cache
        H = r.shape[-1]
        dh_da = np.empty(r.shape[:-1] + (3 * H,), dtype=r.dtype)
        dh_dan = np.multiply(1 - z, 1 - n * n, out=dh_da[..., 2 * H :])
        np.multiply(ah_n * dh_dan, r * (1 - r), out=dh_da[..., :H])  # through r ah_n
        np.multiply(h_prev - n, z * (1 - z), out=dh_da[..., H : 2 * H])
        return dh_da, r, z

    def vjp(
        self, dstate: tuple[Array, ...], coef: tuple, p: Params
    ) -> tuple[Array, Array, tuple[Array]]:
        (dh,), (dh_da, r, z) = dstate, coef
        B, H = dh.shape
        dax = np.multiply(dh[:, None, :], dh_da.reshape(B, 3, H)).reshape(B, 3 * H)
        dah = dax.copy()
        dah[:, 2 * H :] *= r  # into W_n h + b_hn, which r scales
        dh_prev = dah @ p["W"]  # into h_{t−1} through W
        dh_prev += dh * z  # and through the carry z h_{t−1}
        return dax, dah, (dh_prev,)

    def jacobian(self, cache: GRUCache, p: Params) -> Array:
        r, z, n, ah_n, h_prev = cache
        H = r.shape[1]
        Wr, Wz, Wn = (p["W"][k * H : (k + 1) * H] for k in range(3))
        dn = (1 - z) * (1 - n * n)
        J = ((h_prev - n) * z * (1 - z))[:, :, None] * Wz
        J += (dn * r)[:, :, None] * Wn
        J += (dn * ah_n * r * (1 - r))[:, :, None] * Wr
        idx = np.arange(H)
        J[:, idx, idx] += z
        return J

    def activations(self, h: Array, cache: GRUCache) -> Activations:
        """The candidate n = tanh(·) and the update gate z (h carries z ⊙ h_{t−1})."""
        return Activations("tanh", cache.n, "z", cache.z)
