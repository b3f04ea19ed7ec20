"""LSTM cell, PyTorch's gate order (i, f, g, o), state (h, c).

    [a_i, a_f, a_g, a_o] = U x_t + W h_{t−1} + b
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c_t = f ⊙ c_{t−1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

b is PyTorch's b_ih + b_hh. Init "chrono" sets b_f = log(u), u ~ U[1, T_max − 1], and
b_i = −b_f (Tallec & Ollivier 2018): f starts at u/(1 + u), a memory of 1/(1 − f) = 1 + u
steps, and i at 1/(1 + u). The step Jacobian is 2H × 2H over the state (h, c):
    ∂c_t/∂h_{t−1} = diag(c_{t−1} f') W_f + diag(g i') W_i + diag(i g') W_g
    ∂c_t/∂c_{t−1} = diag(f)
    ∂h_t/∂h_{t−1} = diag(tanh(c_t) o') W_o + diag(o tanh'(c_t)) ∂c_t/∂h_{t−1}
    ∂h_t/∂c_{t−1} = diag(o tanh'(c_t) f)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.checks import check_number
from rnnlab.engine import init as initialisers
from rnnlab.engine.cells.base import Activations, Cell


class LSTMCache(NamedTuple):
    gates: Array  # [i, f, g, o] after their nonlinearities, (·, 4H)
    c_prev: Array  # c_{t−1}
    tc: Array  # tanh(c_t)


@cache
def _gate_affine(H: int, dtype: np.dtype) -> tuple[Array, Array, Array]:
    """Over the 4H gate columns: (scale, offset) with σ(a) = ½·tanh(a/2) + ½ for i, f, o and
    tanh(a) for g, so one tanh over all four blocks serves every gate; and b, 1 on the g
    block and 0 elsewhere, so that every gate's derivative is (1 − y)(y + b)."""
    scale = np.full(4 * H, 0.5, dtype=dtype)
    scale[2 * H : 3 * H] = 1.0
    offset, b = 1 - scale, 2 * scale - 1
    for a in (scale, offset, b):
        a.flags.writeable = False
    return scale, offset, b


@dataclass(frozen=True)
class LSTMCell(Cell):
    """forget_bias: the forget gate's bias b_f at initialisation (None: the init's own)."""

    forget_bias: float | None = None
    Cache = LSTMCache
    name = "lstm"
    title = "LSTM"
    gate_names = ("i", "f", "g", "o")
    state_names = ("h", "c")
    carry = "f"
    chrono = True
    remedies = {
        "vanishing": ("forget_bias", "chrono_init", "orthogonal_w", "gated_cell"),
        "stuck": ("train_longer", "forget_bias"),
    }

    def __post_init__(self) -> None:
        b = self.forget_bias
        if b is not None:  # as a float: 1 and 1.0 are one config
            b = check_number("forget_bias", b, lambda _: True, "a finite number, or unset")
            object.__setattr__(self, "forget_bias", b)

    def init_layer(
        self, rng: np.random.Generator, D: int, H: int, scheme: initialisers.Scheme
    ) -> Params:
        p = super().init_layer(rng, D, H, scheme)
        if scheme.init == "chrono":
            if self.forget_bias is not None:
                raise ValueError(
                    f"forget_bias: got {self.forget_bias!r}, but init 'chrono' sets the "
                    "forget-gate bias; expected it unset with init 'chrono'"
                )
            b_f = initialisers.chrono_bias(p["b"][H : 2 * H], scheme)
            p["b"][H : 2 * H] = b_f
            p["b"][:H] = -b_f  # the input gate opens as little as the forget gate forgets
        elif self.forget_bias is not None:
            p["b"][H : 2 * H] = self.forget_bias  # Gers et al. 2000; Jozefowicz et al. 2015
        return p

    def step(
        self, ax: Array, state: tuple[Array, ...], p: Params
    ) -> tuple[tuple[Array, Array], LSTMCache]:
        h_prev, c_prev = state
        H = h_prev.shape[1]
        scale, offset, _ = _gate_affine(H, ax.dtype)
        gates = h_prev @ p.get("W_T", p["W"].T)  # (B, 4H)
        gates += ax
        gates *= scale
        np.tanh(gates, out=gates)
        gates *= scale
        gates += offset  # now [i, f, g, o] = [σ(a_i), σ(a_f), tanh(a_g), σ(a_o)]
        i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        c = f * c_prev
        c += i * g
        tc = np.tanh(c)
        h = o * tc
        return (h, c), LSTMCache(gates, c_prev, tc)

    def coefficients(self, cache: LSTMCache) -> tuple[Array, Array, Array]:
        """The step's local derivatives, for any leading dims: ds_da, from the state (h, c)
        into the gate pre-activations, = [∂c_t/∂a_i, ∂c_t/∂a_f, ∂c_t/∂a_g, ∂h_t/∂a_o] =
        [g i', c_{t−1} f', i g', tanh(c_t) o'] (c_t for i, f, g; h_t for o),
        dh_dc = ∂h_t/∂c_t = o tanh'(c_t), and f = ∂c_t/∂c_{t−1}."""
        gates, c_prev, tc = cache
        H = tc.shape[-1]
        _, _, b = _gate_affine(H, gates.dtype)
        i, f, g, o = (gates[..., k * H : (k + 1) * H] for k in range(4))
        ds_da = 1 - gates
        ds_da *= gates + b  # σ' = y(1 − y), tanh' = (1 − y)(1 + y)
        ds_da[..., :H] *= g
        ds_da[..., H : 2 * H] *= c_prev
        ds_da[..., 2 * H : 3 * H] *= i
        ds_da[..., 3 * H :] *= tc
        dh_dc = 1 - tc * tc
        dh_dc *= o
        return ds_da, dh_dc, f

    def vjp(
        self, dstate: tuple[Array, ...], coef: tuple, p: Params
    ) -> tuple[Array, Array, tuple[Array, Array]]:
        (dh, dc), (ds_da, dh_dc, f) = dstate, coef
        B, H = dh.shape
        dc = dc + dh * dh_dc  # the total ∂L/∂c_t: carried, plus through h_t = o tanh(c_t)
        da = np.empty_like(ds_da)
        da4, ds_da4 = da.reshape(B, 4, H), ds_da.reshape(B, 4, H)
        np.multiply(dc[:, None, :], ds_da4[:, :3], out=da4[:, :3])  # into a_i, a_f, a_g
        np.multiply(dh, ds_da4[:, 3], out=da4[:, 3])  # into a_o
        return da, da, (da @ p["W"], dc * f)  # into h_{t−1} through W, c_{t−1} through f

    def jacobian(self, cache: LSTMCache, p: Params) -> Array:
        gates, c_prev, tc = cache
        B, H = c_prev.shape
        i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        Wi, Wf, Wg, Wo = (p["W"][k * H : (k + 1) * H] for k in range(4))
        dc_dh = (
            (c_prev * f * (1 - f))[:, :, None] * Wf
            + (g * i * (1 - i))[:, :, None] * Wi
            + (i * (1 - g * g))[:, :, None] * Wg
        )
        o_dtanh = o * (1 - tc * tc)
        J = np.zeros((B, 2 * H, 2 * H), dtype=gates.dtype)
        J[:, :H, :H] = (tc * o * (1 - o))[:, :, None] * Wo + o_dtanh[:, :, None] * dc_dh
        J[:, :H, H:] = _diag(o_dtanh * f)
        J[:, H:, :H] = dc_dh
        J[:, H:, H:] = _diag(f)
        return J

    def activations(self, h: Array, cache: LSTMCache) -> Activations:
        """The candidate g = tanh(·) and the forget gate f (c carries f ⊙ c_{t−1})."""
        H = h.shape[-1]
        g, f = cache.gates[..., 2 * H : 3 * H], cache.gates[..., H : 2 * H]
        return Activations("tanh", g, "f", f)


def _diag(v: Array) -> Array:
    """(B, H) -> (B, H, H), a batch of diagonal matrices."""
    out = np.zeros(v.shape + v.shape[-1:], dtype=v.dtype)
    idx = np.arange(v.shape[1])
    out[:, idx, idx] = v
    return out
