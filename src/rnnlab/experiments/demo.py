"""The seed's story at initialisation: how ∂L_T/∂h_k shrinks or grows with the lag T − k.

For each model, on one batch of the adding problem (T = 101, loss on the last step only),
the lag profile ‖∂L_T/∂h_{T−τ}‖ / ‖∂L_T/∂h_T‖ per sequence, averaged over the batch, at the
lags the table shows; for tanh also Pascanu's bound (γ·σ_max(W))^τ, γ = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.engine.model import LSTM, RNN, SequenceModel
from rnnlab.tasks.adding import AddingTask

LAGS = (1, 10, 50, 100)


@dataclass(frozen=True)
class StoryRow:
    name: str
    sigma_max: float  # σ_max of the recurrent W (the stacked gate blocks for LSTM)
    profile: dict[int, float]  # lag -> mean ‖∂L_T/∂h_{T−lag}‖ / ‖∂L_T/∂h_T‖
    bound: dict[int, float] | None  # lag -> (γ σ_max)^lag, where it applies


def lag_profile(model: SequenceModel, X: np.ndarray, Y: np.ndarray, lags: tuple[int, ...]):
    """Mean over the batch of ‖δ_{T−τ}‖ / ‖δ_T‖ with the loss on the last step only."""
    mask = np.zeros(X.shape[:2], dtype=model.dtype)
    mask[-1] = 1
    delta = model.loss_and_grads(X, Y, loss="mse", mask=mask).trace.layers[0].delta
    norms = np.linalg.norm(delta.astype(np.float64), axis=-1)  # (T+1, B)
    ratio = (norms / norms[-1]).mean(axis=1)
    return {lag: float(ratio[-1 - lag]) for lag in lags}


def seed_story(hidden_size: int = 64, batch_size: int = 32, seed: int = 0) -> list[StoryRow]:
    T = max(LAGS) + 1
    task = AddingTask(T=T, dtype="float64", seed=seed)
    X, Y, _ = task.batch(np.random.default_rng(seed), batch_size)
    sizes: dict[str, Any] = dict(
        input_size=2, hidden_size=hidden_size, output_size=1, dtype="float64", seed=seed
    )

    tanh = RNN(nonlinearity="tanh", **sizes)
    tanh08 = RNN(nonlinearity="tanh", **sizes)
    W = tanh08.params["W_0"]
    tanh08.set_params(tanh08.params | {"W_0": W * 0.8 / np.linalg.norm(W, 2)})
    relu_big = RNN(nonlinearity="relu", spectral_radius=2.0, **sizes)
    lstm = LSTM(**sizes)

    rows = []
    for name, model in [
        ("tanh RNN", tanh),
        ("tanh RNN, σ_max 0.8", tanh08),
        ("ReLU RNN, ρ(W) = 2", relu_big),
        ("LSTM", lstm),
    ]:
        smax = float(np.linalg.norm(model.params["W_0"], 2))
        bound = None
        if isinstance(model, RNN) and model.cell.nonlinearity == "tanh":
            bound = {lag: smax**lag for lag in LAGS}
        rows.append(StoryRow(name, smax, lag_profile(model, X, Y, LAGS), bound))
    return rows
