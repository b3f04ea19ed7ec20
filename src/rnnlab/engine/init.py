"""Parameter initialisers. Each returns the params dict of a stacked recurrent model.

    pytorch      every weight and bias ~ U(±1/√H), PyTorch's nn.RNN/LSTM/GRU default
    glorot       weights Glorot-uniform per gate block, biases 0
    normal       weights ~ N(0, σ²), σ = init_scale (default 0.01), biases 0
    orthogonal   each recurrent gate block a random orthogonal matrix (× init_scale);
                 U and V as pytorch; biases 0 (Saxe et al. 2014)
    identity     each recurrent gate block init_scale·I (default 1); U, V ~ N(0, 0.001²);
                 biases 0 — the IRNN of Le et al. 2015

Any of them can then be rescaled so every recurrent block has spectral radius ρ, and the LSTM
forget-gate bias set (Gers et al. 2000; Jozefowicz et al. 2015 suggest 1).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from rnnlab.checks import check_one_of

Array = np.ndarray

Init = Literal["pytorch", "glorot", "normal", "orthogonal", "identity"]
INITS: tuple[Init, ...] = get_args(Init)


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float) -> Array:
    return rng.uniform(-bound, bound, size=shape)


def orthogonal(rng: np.random.Generator, n: int) -> Array:
    """A Haar-random n × n orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def spectral_radius(W: Array) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def init_params(
    *,
    gates: int,
    input_size: int,
    hidden_size: int,
    output_size: int,
    num_layers: int,
    init: str,
    rng: np.random.Generator,
    init_scale: float | None = None,
    spectral_radius_: float | None = None,
    forget_bias: float | None = None,
    gru: bool = False,
) -> dict[str, Array]:
    """float64 params: per layer l, U_l (G·H, D_l), W_l (G·H, H), b_l (G·H,) [, b_hn_l (H,)];
    readout V (K, H), c (K,). D_0 = input_size, D_l = H above."""
    check_one_of("init", init, INITS)
    H, G = hidden_size, gates * hidden_size
    k = 1 / np.sqrt(H)
    sigma = 0.01 if init_scale is None else init_scale
    params: dict[str, Array] = {}
    for layer in range(num_layers):
        D = input_size if layer == 0 else H
        shapes = {"U": (G, D), "W": (G, H), "b": (G,)} | ({"b_hn": (H,)} if gru else {})
        p = {name: _uniform(rng, shape, k) for name, shape in shapes.items()}  # pytorch
        if init != "pytorch":
            p = {name: np.zeros_like(v) if name.startswith("b") else v for name, v in p.items()}
        if init == "glorot":
            p["U"] = _uniform(rng, (G, D), np.sqrt(6 / (D + H)))
            p["W"] = _uniform(rng, (G, H), np.sqrt(6 / (H + H)))
        elif init == "normal":
            p["U"] = rng.normal(0, sigma, (G, D))
            p["W"] = rng.normal(0, sigma, (G, H))
        elif init == "orthogonal":
            scale = 1.0 if init_scale is None else init_scale
            p["W"] = np.concatenate([scale * orthogonal(rng, H) for _ in range(gates)])
        elif init == "identity":
            scale = 1.0 if init_scale is None else init_scale
            p["U"] = rng.normal(0, 0.001, (G, D))
            p["W"] = np.concatenate([scale * np.eye(H) for _ in range(gates)])
        if spectral_radius_ is not None:
            p["W"] = np.concatenate(
                [rescale(block, spectral_radius_) for block in np.split(p["W"], gates)]
            )
        if forget_bias is not None:
            p["b"][H : 2 * H] = forget_bias  # LSTM order i, f, g, o
        params |= {f"{name}_{layer}": v for name, v in p.items()}
    K = output_size
    if init == "glorot":
        params["V"] = _uniform(rng, (K, H), np.sqrt(6 / (H + K)))
    elif init in ("normal", "identity"):
        params["V"] = rng.normal(0, 0.001 if init == "identity" else sigma, (K, H))
    else:
        params["V"] = _uniform(rng, (K, H), k)
    params["c"] = _uniform(rng, (output_size,), k) if init == "pytorch" else np.zeros(output_size)
    return params


def rescale(W: Array, rho: float) -> Array:
    """W scaled so its spectral radius is ρ."""
    current = spectral_radius(W)
    if current == 0:
        raise ValueError("spectral_radius: cannot rescale a recurrent matrix whose radius is 0")
    return W * (rho / current)
