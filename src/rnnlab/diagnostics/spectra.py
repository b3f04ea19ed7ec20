"""Spectra of the recurrent weights: eigenvalues (spectral radius ρ) and singular values (σ_max).

σ_max(W) enters the Pascanu bound (γ·σ_max)^τ; ρ(W) sets the long-run growth of W^τ for a
linear RNN (W^τ ~ ρ^τ). For a gated cell (LSTM, GRU) every gate block W_i, W_f, … (H × H)
gets both; the stacked W (G·H × H) is not square and gets σ_max only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnlab.arrays import Array
from rnnlab.engine.cells import Cell, cell_type
from rnnlab.engine.model import SequenceModel


@dataclass(frozen=True)
class BlockSpectrum:
    """block: "W" (the Elman RNN's W, or a gated cell's stacked W) or "W_f" etc. (a gate).
    eigenvalues (complex) and spectral_radius are None for the non-square stacked W; for a
    block that is not finite, sigma_max and spectral_radius are nan, eigenvalues None."""

    layer: int
    block: str
    sigma_max: float
    spectral_radius: float | None
    singular_values: Array
    eigenvalues: Array | None = field(metadata={"complex": True})  # read back from [re, im]


def weight_spectra(model: SequenceModel) -> list[BlockSpectrum]:
    """Every recurrent W of every layer (the cell's recurrent matrix: diag(u) for an
    IndRNN, exp(A) for an expRNN), and for a cell with several gates each of its gate
    blocks; none for a cell without a recurrent matrix (minGRU, minLSTM: J_t = diag(a_t)
    reads x_t only)."""
    out = []
    for layer in range(model.num_layers):
        W = model.cell.recurrent_matrix(model.layer_params(layer))
        if W is not None:
            out.extend(block_spectra(layer, model.cell, W, model.hidden_size))
    return out


def block_spectra(layer: int, cell: Cell | str, W: Array, hidden_size: int) -> list[BlockSpectrum]:
    """One layer's recurrent W (G·H × S, S the size of h) of `cell` (or a kind's name):
    with several gates, the stacked W first (σ only), then each gate's H × S block, with
    eigenvalues where the block is square (S = H; an LSTM with a projection has S < H)."""
    W = np.asarray(W, dtype=np.float64)
    H = hidden_size
    gate_names = (cell_type(cell) if isinstance(cell, str) else cell).gate_names
    out = []
    if len(gate_names) > 1:
        sv = singular_values(W)
        out.append(BlockSpectrum(layer, "W", float(sv[0]), None, sv, None))
    for k, gate in enumerate(gate_names):
        block = W[k * H : (k + 1) * H]  # (H, S)
        sv = singular_values(block)
        square = block.shape[0] == block.shape[1]
        eig = None
        if square and np.isfinite(sv[0]):
            eig = np.linalg.eigvals(block)
        radius = None if not square else float(np.abs(eig).max()) if eig is not None else np.nan
        name = f"W_{gate}" if gate else "W"
        out.append(BlockSpectrum(layer, name, float(sv[0]), radius, sv, eig))
    return out


def singular_values(block: Array) -> Array:
    """Descending singular values; all nan for a block that is not finite (the SVD would
    raise), so an overflowed W is reported, not fatal."""
    if not np.all(np.isfinite(block)):
        return np.full(min(block.shape), np.nan)
    return np.linalg.svd(block, compute_uv=False)
