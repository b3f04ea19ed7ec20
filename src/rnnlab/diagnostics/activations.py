"""Activation statistics over every step and sequence of a trace: why J = diag(φ') W is small.

tanh, sigmoid   saturation: the fraction of φ'(a) below 5 % of its maximum γ (φ' < 0.05
                for tanh, < 0.0125 for sigmoid), and the mean φ'
relu            dead units (0 on every step of every sequence) and inactive activations
LSTM            forget gates f (c carries f⊙c_{t−1}: f near 0 forgets), mean + histogram;
                saturation of the candidate g = tanh(·)
GRU             update gates z (h carries z⊙h_{t−1}), mean + histogram; saturation of
                the candidate n = tanh(·)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.checks import check_positive
from rnnlab.engine.activations import DPHI, GAMMA
from rnnlab.engine.model import SequenceModel, Trace

Array = np.ndarray

GATE_BINS = 10


@dataclass(frozen=True)
class ActivationStats:
    """One layer. nonlinearity is φ for the Elman RNN, the candidate's tanh for LSTM/GRU.
    Fields that do not apply (saturation of relu, gates of an Elman RNN) are None.
    gate_histogram: fraction of gate values in each of GATE_BINS equal bins over [0, 1]."""

    layer: int
    nonlinearity: str
    gamma: float
    mean_dphi: float
    saturation: float | None
    dead_fraction: float | None
    inactive_fraction: float | None
    gate: str | None
    gate_mean: float | None
    gate_histogram: Array | None


def activation_stats(
    model: SequenceModel, trace: Trace, saturation_level: float = 0.05
) -> list[ActivationStats]:
    """Per layer, over steps 1..T and the whole batch. A unit counts as saturated where
    φ'(a) < saturation_level · γ, γ = max φ'."""
    nonlinearity = getattr(model.cell, "nonlinearity", None)
    return [
        layer_activation_stats(layer, model.kind, lt.h, lt.caches, nonlinearity, saturation_level)
        for layer, lt in enumerate(trace.layers)
    ]


def layer_activation_stats(
    layer: int,
    kind: str,
    h: Array,
    caches: list[tuple],
    nonlinearity: str | None = None,
    saturation_level: float = 0.05,
) -> ActivationStats:
    """One layer's statistics from its states h (T+1, B, H) and the engine cells' per-step
    caches (the format of rnnlab.engine.cells), wherever they were recorded. `kind` is rnn,
    lstm or gru; `nonlinearity` is the Elman RNN's φ (ignored for gated cells)."""
    level = check_positive("saturation_level", saturation_level)
    gate_name, gate = None, None
    if kind == "rnn":
        if nonlinearity is None:
            raise ValueError("nonlinearity: got None; an Elman RNN needs its φ")
        phi = h[1:]  # (T, B, H), h_t = φ(a_t)
    else:
        gate_name, gate, phi = _gated_values(kind, caches)
        nonlinearity = "tanh"
    dphi = DPHI[nonlinearity](phi)
    gamma = GAMMA[nonlinearity]
    saturation = None
    if nonlinearity in ("tanh", "sigmoid"):
        saturation = float(np.mean(dphi < level * gamma))
    dead = inactive = None
    if nonlinearity == "relu":
        active = phi > 0
        dead = float(np.mean(~active.any(axis=(0, 1))))  # per unit, over all t and b
        inactive = float(np.mean(~active))
    hist = None
    if gate is not None:
        counts, _ = np.histogram(gate, bins=GATE_BINS, range=(0.0, 1.0))
        hist = counts / max(gate.size, 1)
    return ActivationStats(
        layer=layer,
        nonlinearity=nonlinearity,
        gamma=gamma,
        mean_dphi=float(np.mean(dphi, dtype=np.float64)),
        saturation=saturation,
        dead_fraction=dead,
        inactive_fraction=inactive,
        gate=gate_name,
        gate_mean=None if gate is None else float(np.mean(gate, dtype=np.float64)),
        gate_histogram=hist,
    )


def _gated_values(kind: str, caches: list[tuple]) -> tuple[str, Array, Array]:
    """(gate name, carry gate (T, B, H), candidate (T, B, H)) read from the cells' caches:
    LSTM caches (gates [i f g o], c_{t−1}, tanh c_t); GRU caches (r, z, n, ah_n, h_{t−1})."""
    if kind == "lstm":
        gates = np.stack([c[0] for c in caches])  # (T, B, 4H)
        H = gates.shape[2] // 4
        return "f", gates[:, :, H : 2 * H], gates[:, :, 2 * H : 3 * H]
    return "z", np.stack([c[1] for c in caches]), np.stack([c[2] for c in caches])
