"""Truncated BPTT(k1, k2) in the sense of Williams & Peng 1990, for long streams.

Every k1 new steps, backpropagate through the last k2 steps (k2 >= k1): the window is the
k2 − k1 steps already seen plus the k1 new ones, the loss sits on the new steps only, and
the window starts from the state carried forward, so the gradient is cut at its start.
With k1 = k2 each window is one chunk, and one chunk from h0 is exactly full BPTT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.arrays import Array
from rnnlab.engine.model import BPTTResult, SequenceModel, State


@dataclass(frozen=True)
class Carry:
    """What a stream carries between updates: the state at the next window's start and the
    k2 − k1 steps of inputs and targets that window repeats."""

    h0: State | None
    X: Array | None = None
    Y: Array | None = None


def tbptt_step(
    model: SequenceModel, carry: Carry, X: Array, Y: Array, mask: Array, k2: int, loss: str
) -> tuple[BPTTResult, Carry]:
    """Gradients for one update from the k1 = len(X) new steps, and the carry for the next."""
    k1 = X.shape[0]
    if carry.X is not None and carry.Y is not None and len(carry.X):
        X_win = np.concatenate([carry.X, X])
        Y_win = np.concatenate([carry.Y, Y])
        mask_win = np.concatenate([np.zeros((len(carry.X),) + mask.shape[1:], mask.dtype), mask])
    else:
        X_win, Y_win, mask_win = X, Y, mask
    result = model.loss_and_grads(X_win, Y_win, loss=loss, mask=mask_win, h0=carry.h0)
    start = len(X_win) - min(k2 - k1, len(X_win))  # the next window's first step
    return result, Carry(result.trace.state(start), X_win[start:], Y_win[start:])
