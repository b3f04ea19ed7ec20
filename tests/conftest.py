"""Shared test helpers: small float64 problems for every cell, nonlinearity and loss."""

from __future__ import annotations

import numpy as np

import rnnlab
from rnnlab.engine.model import SequenceModel

CELLS = [
    ("rnn", "tanh"),
    ("rnn", "relu"),
    ("rnn", "sigmoid"),
    ("rnn", "identity"),
    ("lstm", None),
    ("gru", None),
]


def make_model(cell: str, nonlinearity: str | None, **kwargs) -> SequenceModel:
    if cell == "rnn":
        return rnnlab.RNN(nonlinearity=nonlinearity or "tanh", **kwargs)
    return {"lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[cell](**kwargs)


def make_problem(rng: np.random.Generator, model: SequenceModel, T: int, B: int, loss: str):
    """X, Y, mask, h0 for `loss` in {"ce_all", "ce_last", "mse"}."""
    D, K, L, H = model.input_size, model.output_size, model.num_layers, model.hidden_size
    X = rng.standard_normal((T, B, D))
    mask = None
    if loss == "mse":
        Y = rng.standard_normal((T, B, K))
    else:
        Y = rng.integers(0, K, (T, B))
    if loss == "ce_last":
        mask = np.zeros((T, B))
        mask[-1] = 1
    h0 = rng.standard_normal((L, B, H)) * 0.5
    if len(model.cell.state_names) == 2:
        h0 = (h0, rng.standard_normal((L, B, H)) * 0.5)
    return X, Y, mask, h0


def engine_loss(loss: str) -> str:
    return "mse" if loss == "mse" else "cross_entropy"


def preactivations(model: SequenceModel, X: np.ndarray, h0) -> list[np.ndarray]:
    """a_t = U x_t + W h_{t−1} + b per layer of an RNN, recomputed from the forward trace."""
    trace = model.loss_and_grads(
        X, np.zeros(X.shape[:2], dtype=int), mask=np.zeros(X.shape[:2]), h0=h0
    ).trace
    out, inputs = [], X
    for layer, lt in enumerate(trace.layers):
        p = model.layer_params(layer)
        out.append(inputs @ p["U"].T + lt.h[:-1] @ p["W"].T + p["b"])
        inputs = lt.h[1:]
    return out
