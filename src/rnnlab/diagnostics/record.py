"""A diagnosis recorded during training, typed: a history's or a store's record
{"step": step, **Diagnosis.to_dict()} read back (Diagnosis.from_dict) with the training step
it was taken at, and the numbers the report and the figures read off a diagnosis."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnlab.engine.cells import CELLS

if TYPE_CHECKING:
    from rnnlab.diagnostics.diagnose import Diagnosis
    from rnnlab.diagnostics.spectra import BlockSpectrum

NO_DIAGNOSES = "no diagnoses recorded for this run"


@dataclass(frozen=True)
class Snapshot:
    """The Diagnosis taken at training step `step` (0: at initialisation)."""

    step: int
    diagnosis: Diagnosis

    def to_dict(self) -> dict[str, Any]:
        """The record as a history and a store keep it (JSON-safe)."""
        return {"step": self.step} | self.diagnosis.to_dict()


def top_profile(d: Diagnosis) -> np.ndarray:
    """The top layer's normalised lag profile, τ = 0..t−1 (the layer nearest the loss)."""
    return np.asarray(d.flow.lag.profile[-1], dtype=np.float64)


def top_layer(d: Diagnosis) -> int:
    """The layer nearest the loss, whose lag profile the summary numbers come from."""
    return int(d.flow.lag.profile.shape[0]) - 1


def w_block(d: Diagnosis, layer: int | None = None) -> BlockSpectrum | None:
    """The spectrum of the recurrent W (the stacked W for gated cells) of a layer (top)."""
    layer = top_layer(d) if layer is None else layer
    return next((s for s in d.spectra if s.layer == layer and s.block == "W"), None)


def exact_rate(d: Diagnosis) -> float | None:
    """ρ of the top layer where its cell's equations give ‖Π J‖ = ρ^τ exactly (an LRU's
    max |λ_j|), as its Jacobian products recorded it; None elsewhere."""
    layer = top_layer(d)
    rate = next((j.exact_rate for j in d.jacobians if j.layer == layer), None)
    return None if rate is None or not math.isfinite(rate) else float(rate)


def gamma_sigma(d: Diagnosis) -> float | None:
    """γ·σ_max(W) of the top layer of a cell the Pascanu bound holds for (its factor per
    step); None for gated cells, where no such bound holds, and where it is not finite."""
    cell = CELLS.get(d.run.cell)
    if cell is None or not cell.bounded:
        return None
    layer = top_layer(d)
    gamma = next((a.gamma for a in d.activations if a.layer == layer), 1.0)
    w = w_block(d, layer)
    if w is None or not math.isfinite(w.sigma_max) or not math.isfinite(gamma):
        return None
    return float(gamma) * float(w.sigma_max)
