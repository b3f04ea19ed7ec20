"""Hidden activations φ and their derivatives φ', expressed through the output h = φ(a).

Each derivative is written in terms of h so the backward pass needs only the stored h_t:
tanh' = 1 − h², σ' = h(1 − h), relu' = [h > 0], identity' = 1.
GAMMA[name] bounds |φ'|; it enters the Pascanu bound (γ·σ_max(W))^lag.

DPHI and GAMMA also know two φ's that only some cells have built in, for the activation
statistics: modReLU (expRNN), modrelu' = [h ≠ 0], and minGRU's positive map g (below).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_one_of

Nonlinearity = Literal["tanh", "relu", "sigmoid", "identity"]
NONLINEARITIES: tuple[Nonlinearity, ...] = get_args(Nonlinearity)
# φ's built into some cells (not an option of the Elman RNN): DPHI and GAMMA know them too
BUILT_IN: tuple[str, ...] = ("modrelu", "g")


def sigmoid(a: Array, out: Array | None = None) -> Array:
    """σ(a) = ½·tanh(a/2) + ½: one transcendental, and no overflow for large |a|."""
    out = np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _relu(a: Array, out: Array | None = None) -> Array:
    return np.maximum(a, 0, out=out)


def _identity(a: Array, out: Array | None = None) -> Array:
    if out is None:
        return a.copy()
    out[...] = a
    return out


def _tanh(a: Array, out: Array | None = None) -> Array:
    return np.tanh(a, out=out)


def _dtanh(h: Array) -> Array:
    return 1 - h * h


def _dsigmoid(h: Array) -> Array:
    return h * (1 - h)


def _drelu(h: Array) -> Array:
    return (h > 0).astype(h.dtype)


def _didentity(h: Array) -> Array:
    return np.ones_like(h)


def positive_map(a: Array) -> Array:
    """g(a) = a + ½ for a ≥ 0, σ(a) below (Feng et al. 2024): positive, continuous at 0,
    so that its logarithm exists and h̃ can be scanned in log space."""
    return np.where(a >= 0, a + 0.5, sigmoid(np.minimum(a, 0)))


def _dpositive_map(h: Array) -> Array:
    """g' from g = h: 1 where h ≥ ½ (a ≥ 0; the right derivative at the kink a = 0),
    σ' = h(1 − h) below."""
    return np.where(h >= 0.5, 1, h * (1 - h)).astype(h.dtype, copy=False)


def _dmodrelu(h: Array) -> Array:
    return (h != 0).astype(h.dtype)


# one entry per name in NONLINEARITIES, in each table (DPHI and GAMMA: then BUILT_IN's)
PHI: dict[str, Callable[..., Array]] = {
    "tanh": _tanh,
    "relu": _relu,
    "sigmoid": sigmoid,
    "identity": _identity,
}
DPHI: dict[str, Callable[[Array], Array]] = {
    "tanh": _dtanh,
    "relu": _drelu,
    "sigmoid": _dsigmoid,
    "identity": _didentity,
    "modrelu": _dmodrelu,
    "g": _dpositive_map,
}
GAMMA: dict[str, float] = {
    "tanh": 1.0,
    "relu": 1.0,
    "sigmoid": 0.25,
    "identity": 1.0,
    "modrelu": 1.0,
    "g": 1.0,
}


def check_nonlinearity(nonlinearity: object) -> Nonlinearity:
    return check_one_of("nonlinearity", nonlinearity, NONLINEARITIES)
