"""Parameter initialisers. Each returns the params dict of a stacked recurrent model.

    pytorch      every weight and bias ~ U(±1/√H), PyTorch's nn.RNN/LSTM/GRU default
    glorot       weights Glorot-uniform per gate block, biases 0
    normal       weights ~ N(0, σ²), σ = init_scale (default 0.01), biases 0
    orthogonal   each recurrent gate block a random orthogonal matrix (× init_scale);
                 U and V as pytorch; biases 0 (Saxe et al. 2014)
    identity     each recurrent gate block init_scale·I (default 1); U, V ~ N(0, 0.001²);
                 biases 0 — the IRNN of Le et al. 2015
    chrono       pytorch's draw, then the gated cell (LSTM, GRU) sets the bias of the gate
                 that carries its state to b = log(u), u ~ U[1, T_max − 1], so the carry's
                 time scales 1/(1 − σ(b)) = 1 + u spread over 2..T_max steps (Tallec &
                 Ollivier 2018)

Any of them can then be rescaled so every recurrent block has spectral radius ρ. A cell
draws its own layers through `layer` (and adds what is its own, such as the LSTM's
forget-gate bias, or chrono's gate biases through `chrono_bias`); the model then draws the
readout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_int, check_one_of, check_positive

Init = Literal["pytorch", "glorot", "normal", "orthogonal", "identity", "chrono"]
INITS: tuple[Init, ...] = get_args(Init)
T_MAX_MIN = 3  # U[1, T_max − 1] is a spread of time scales only from T_max = 3


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float) -> Array:
    return rng.uniform(-bound, bound, size=shape)


def orthogonal(rng: np.random.Generator, n: int) -> Array:
    """A Haar-random n × n orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def spectral_radius(W: Array) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(W))))


@dataclass(frozen=True)
class Scheme:
    """How a model's weights are drawn: the initialiser `init`, its scale, the spectral
    radius ρ every recurrent block is rescaled to afterwards (None: left alone), and T_max,
    the longest time scale chrono sets (required by init "chrono", read by it alone)."""

    init: Init = "pytorch"
    init_scale: float | None = None
    spectral_radius: float | None = None
    t_max: int | None = None

    def __post_init__(self) -> None:
        check_one_of("init", self.init, INITS)
        for name in ("init_scale", "spectral_radius"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))
        if self.init == "chrono":
            why = " (init 'chrono': the longest dependency to remember, in steps)"
            object.__setattr__(self, "t_max", check_int("t_max", self.t_max, T_MAX_MIN, why=why))
        elif self.t_max is not None:
            raise ValueError(
                f"t_max: got {self.t_max!r}, but init {self.init!r} does not read it; "
                "expected it unset, or init 'chrono'"
            )

    @property
    def base(self) -> Init:
        """The initialiser that draws the weights: chrono's are pytorch's, the same draw
        from the same seed (the cell then sets its gate biases from it, see chrono_bias)."""
        return "pytorch" if self.init == "chrono" else self.init


def layer(
    rng: np.random.Generator, shapes: dict[str, tuple[int, ...]], gates: int, scheme: Scheme
) -> dict[str, Array]:
    """One layer's float64 params of the given shapes: U (G·H, D), W (G·H, H) of `gates`
    H × H blocks, and biases (every other name starting with b)."""
    G, D = shapes["U"]
    H = G // gates
    init, sigma = scheme.base, 0.01 if scheme.init_scale is None else scheme.init_scale
    scale = 1.0 if scheme.init_scale is None else scheme.init_scale
    p = {name: _uniform(rng, shape, 1 / np.sqrt(H)) for name, shape in shapes.items()}  # pytorch
    if init != "pytorch":
        p = {name: np.zeros_like(v) if name.startswith("b") else v for name, v in p.items()}
    recurrent = "W" in shapes  # a cell whose recurrence is not a matrix draws its own
    if init == "glorot":
        p["U"] = _uniform(rng, (G, D), np.sqrt(6 / (D + H)))
        if recurrent:
            p["W"] = _uniform(rng, (G, H), np.sqrt(6 / (H + H)))
    elif init == "normal":
        p["U"] = rng.normal(0, sigma, (G, D))
        if recurrent:
            p["W"] = rng.normal(0, sigma, (G, H))
    elif init == "orthogonal" and recurrent:
        p["W"] = np.concatenate([scale * orthogonal(rng, H) for _ in range(gates)])
    elif init == "identity":
        p["U"] = rng.normal(0, 0.001, (G, D))
        if recurrent:
            p["W"] = np.concatenate([scale * np.eye(H) for _ in range(gates)])
    if scheme.spectral_radius is not None and recurrent:
        blocks = np.split(p["W"], gates)
        p["W"] = np.concatenate([rescale(block, scheme.spectral_radius) for block in blocks])
    return p


def readout(rng: np.random.Generator, H: int, K: int, scheme: Scheme) -> dict[str, Array]:
    """The readout's float64 V (K, H) and c (K,)."""
    init, k = scheme.base, 1 / np.sqrt(H)
    sigma = 0.01 if scheme.init_scale is None else scheme.init_scale
    if init == "glorot":
        V = _uniform(rng, (K, H), np.sqrt(6 / (H + K)))
    elif init in ("normal", "identity"):
        V = rng.normal(0, 0.001 if init == "identity" else sigma, (K, H))
    else:
        V = _uniform(rng, (K, H), k)
    return {"V": V, "c": _uniform(rng, (K,), k) if init == "pytorch" else np.zeros(K)}


def chrono_bias(b: Array, scheme: Scheme) -> Array:
    """log(u), u ~ U[1, T_max − 1], for one gate's bias block b (H,) as pytorch drew it,
    b ~ U(±1/√H): mapped affinely onto [1, T_max − 1] it is still uniform, and drawing
    nothing more leaves every other parameter what init "pytorch" draws from the seed."""
    assert scheme.t_max is not None, "Scheme requires t_max with init 'chrono'"
    k = 1 / np.sqrt(b.shape[0])
    u = np.clip((b + k) / (2 * k), 0.0, 1.0)  # U[0, 1); the clip only absorbs rounding
    return np.log1p(u * (scheme.t_max - 2))


def rescale(W: Array, rho: float) -> Array:
    """W scaled so its spectral radius is ρ."""
    current = spectral_radius(W)
    if current == 0:
        raise ValueError("spectral_radius: cannot rescale a recurrent matrix whose radius is 0")
    return W * (rho / current)
