"""Activation statistics over every step and sequence of a trace: why J = diag(φ') W is small.

tanh, sigmoid   saturation: the fraction of φ'(a) below 5 % of its maximum γ (φ' < 0.05
                for tanh, < 0.0125 for sigmoid), and the mean φ'
relu            dead units (0 on every step of every sequence) and inactive activations
gated cells     the carry gate (LSTM f: c carries f⊙c_{t−1}, f near 0 forgets; GRU z: h
                carries z⊙h_{t−1}), mean + histogram; saturation of the candidate tanh(·)

Each cell says what to read (`Cell.activations`): its φ's output and its carry gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_positive
from rnnlab.engine.activations import DPHI, GAMMA
from rnnlab.engine.cells import Cell, as_cell
from rnnlab.engine.model import SequenceModel, Trace

GATE_BINS = 10


@dataclass(frozen=True)
class ActivationStats:
    """One layer. nonlinearity is φ for the Elman RNN, the candidate's tanh for LSTM/GRU.
    Fields that do not apply (saturation of relu, gates of an ungated cell) are None.
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
    return [
        layer_activation_stats(layer, model.cell, lt.h, lt.caches, None, saturation_level)
        for layer, lt in enumerate(trace.layers)
    ]


def layer_activation_stats(
    layer: int,
    cell: Cell | str,
    h: Array,
    caches: list[Any],
    nonlinearity: str | None = None,
    saturation_level: float = 0.05,
) -> ActivationStats:
    """One layer's statistics from its states h (T+1, B, H) and the engine cell's per-step
    caches, wherever they were recorded. `cell` is the layer's Cell, or a kind's name with
    its φ in `nonlinearity` (for a kind that has one)."""
    level = check_positive("saturation_level", saturation_level)
    cell = as_cell(cell, nonlinearity)
    nonlinearity, phi, gate_name, gate = cell.activations(h, cell.stack(caches))
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
