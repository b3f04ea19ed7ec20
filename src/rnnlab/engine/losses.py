"""Losses over a sequence, L = Σ_t Σ_b m_tb L_tb / B, and their gradient with respect to o.

Summed over the time steps the mask selects (the article's L = Σ_t L_t), averaged over the batch.
    cross_entropy: L_tb = −log softmax(o_tb)[y_tb]     Y: class ids (T, B)
    mse:           L_tb = mean_k (o_tbk − y_tbk)²       Y: targets (T, B, K)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np

from rnnlab.arrays import Array

Loss = Literal["cross_entropy", "mse"]
LOSSES: tuple[Loss, ...] = get_args(Loss)


def cross_entropy(o: Array, Y: Array, mask: Array) -> tuple[float, Array]:
    """o (T, B, K) logits, Y (T, B) ids, mask (T, B) -> (L, ∂L/∂o (T, B, K))."""
    B = o.shape[1]
    shifted = o - o.max(axis=-1, keepdims=True)
    expo = np.exp(shifted)
    Z = expo.sum(axis=-1, keepdims=True)
    y = np.where(mask != 0, Y, 0)[..., None]  # masked steps may hold any id
    logp_y = np.take_along_axis(shifted, y, axis=-1)[..., 0] - np.log(Z[..., 0])
    loss = -float(np.sum(mask * logp_y, dtype=np.float64)) / B
    do = expo / Z  # softmax ŷ; ∂L/∂o = (ŷ − onehot(y)) m / B
    np.put_along_axis(do, y, np.take_along_axis(do, y, axis=-1) - 1, axis=-1)
    do *= (mask / B)[..., None]
    return loss, do


def mse(o: Array, Y: Array, mask: Array) -> tuple[float, Array]:
    """o (T, B, K), Y (T, B, K), mask (T, B) -> (L, ∂L/∂o (T, B, K))."""
    B, K = o.shape[1], o.shape[2]
    err = o - Y
    sq = np.sum(err * err, axis=-1, dtype=np.float64)
    loss = float(np.sum(mask * sq)) / (B * K)
    do = err * (2 * mask / (B * K))[..., None]
    return loss, do.astype(o.dtype, copy=False)


LOSS_FNS: dict[str, Callable[[Array, Array, Array], tuple[float, Array]]] = {
    "cross_entropy": cross_entropy,
    "mse": mse,
}  # one per name in LOSSES
