"""Every cell at initialisation, on one batch: the whole story as one picture.

On one adding batch of length T (loss on the last step only, float64), each model's lag
profile ‖∂L_T/∂h_{T−τ}‖ / ‖∂L_T/∂h_T‖, the mean over the batch, for τ = 0..T−1: the tanh
RNN vanishing, the article's σ_max 0.8 under 0.8^τ, ρ(W) = 2 exploding, and what each
remedy, classic and modern, does to it. `lag_profile` is also what the demo's table reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.arrays import Array
from rnnlab.engine.model import SequenceModel
from rnnlab.tasks.adding import AddingTask

# family: what the curve shows, and how the figure draws it
VANISHING, EXPLODING, CLASSIC, MODERN = "vanishes", "explodes", "classic remedy", "modern remedy"

# label, family, the model's options (SequenceModel keywords; t_max = T where "chrono")
CELLS_AT_INIT: list[tuple[str, str, dict[str, Any]]] = [
    ("tanh RNN", VANISHING, {"cell": "rnn", "nonlinearity": "tanh"}),
    ("tanh RNN, σ_max 0.8", VANISHING, {"cell": "rnn", "nonlinearity": "tanh", "sigma": 0.8}),
    (
        "tanh RNN, ρ(W) = 2",
        EXPLODING,
        {"cell": "rnn", "nonlinearity": "tanh", "init": "orthogonal", "spectral_radius": 2.0},
    ),
    ("IRNN (ReLU, W = I)", CLASSIC, {"cell": "rnn", "nonlinearity": "relu", "init": "identity"}),
    ("LSTM", CLASSIC, {"cell": "lstm"}),
    ("LSTM, chrono init", CLASSIC, {"cell": "lstm", "init": "chrono"}),
    ("GRU", CLASSIC, {"cell": "gru"}),
    ("IndRNN, |u| ≤ 2^(1/T)", MODERN, {"cell": "indrnn", "recurrent_max": "2^(1/T)"}),
    ("expRNN (orthogonal W)", MODERN, {"cell": "exprnn"}),
    ("minGRU", MODERN, {"cell": "mingru"}),
    ("minLSTM", MODERN, {"cell": "minlstm"}),
    ("LRU", MODERN, {"cell": "lru"}),
]


EVERY_CELL_CAPTION = (
    "Every cell at initialisation on one adding batch (T = 100, H = 64, loss on the last "
    "step): how much of the gradient at step T reaches step T − τ. Solid: the failures, the "
    "tanh RNN vanishing (σ_max 0.8 under the article's 0.8^τ, dotted) and ρ(W) = 2 growing; "
    "dashed: the classic remedies (IRNN, LSTM, GRU, chrono-initialised LSTM); dash-dotted: "
    "the modern ones (IndRNN, expRNN, minGRU, minLSTM, LRU). The vertical line is the "
    "article's τ = 50. Untrained: training moves every curve (see each run below)."
)


@dataclass(frozen=True)
class Curve:
    label: str
    family: str
    profile: Array  # (T,): τ = 0..T−1, 1 at τ = 0


def lag_profile(model: SequenceModel, X: Array, Y: Array) -> Array:
    """Mean over the batch of ‖δ_{T−τ}‖ / ‖δ_T‖, τ = 0..T−1, with the loss (MSE) on the last
    step only: the top layer's δ."""
    mask = np.zeros(X.shape[:2], dtype=model.dtype)
    mask[-1] = 1
    delta = model.loss_and_grads(X, Y, loss="mse", mask=mask).trace.layers[-1].delta
    norms = np.linalg.norm(delta.astype(np.float64), axis=-1)  # (T+1, B)
    return (norms[:0:-1] / norms[-1]).mean(axis=1)  # τ = 0 at step T


def build_at_init(options: dict[str, Any], T: int, **sizes: Any) -> SequenceModel:
    """A model of CELLS_AT_INIT's options: "sigma" rescales W to that σ_max, "2^(1/T)" and
    t_max are read for this T."""
    options = dict(options)
    sigma = options.pop("sigma", None)
    if options.get("recurrent_max") == "2^(1/T)":
        options["recurrent_max"] = 2 ** (1 / T)  # Li et al. 2018's bound for ReLU
    if options.get("init") == "chrono":
        options["t_max"] = T
    model = SequenceModel(**options, **sizes)
    if sigma is not None:
        W = model.params["W_0"]
        model.set_params(model.params | {"W_0": W * sigma / np.linalg.norm(W, 2)})
    return model


def every_cell_at_init(
    T: int = 100, hidden_size: int = 64, batch_size: int = 32, seed: int = 0
) -> list[Curve]:
    """CELLS_AT_INIT's lag profiles on one adding batch of length T."""
    task = AddingTask(T=T, dtype="float64", seed=seed)
    X, Y, _ = task.batch(np.random.default_rng(seed), batch_size)
    sizes = dict(input_size=2, hidden_size=hidden_size, output_size=1, dtype="float64", seed=seed)
    return [
        Curve(label, family, lag_profile(build_at_init(options, T, **sizes), X, Y))
        for label, family, options in CELLS_AT_INIT
    ]
