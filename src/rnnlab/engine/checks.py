"""Input validation for the engine: one-line ValueErrors naming argument, given and allowed."""

from __future__ import annotations

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_dtype as check_dtype
from rnnlab.checks import check_int, check_one_of
from rnnlab.engine.losses import LOSSES, Loss


def check_positive_int(name: str, value: object) -> int:
    return check_int(name, value, 1, expected="a positive integer")


def _check_finite(name: str, A: Array) -> None:
    if not np.all(np.isfinite(A)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(A))[0])
        raise ValueError(f"{name}: got a non-finite value {A[bad]} at index {bad}; expected finite")


def _check_float(name: str, A: object, dtype: np.dtype) -> Array:
    if not isinstance(A, np.ndarray):
        raise ValueError(f"{name}: got {type(A).__name__}; expected a numpy array of {dtype}")
    if A.dtype != dtype:
        raise ValueError(f"{name}: got dtype {A.dtype}; expected {dtype} (the model's dtype)")
    _check_finite(name, A)
    return A


def check_inputs(X: object, input_size: int, dtype: np.dtype) -> Array:
    """X (T, B, D) floats of the model's dtype, or token ids (T, B) in [0, input_size)."""
    if not isinstance(X, np.ndarray):
        raise ValueError(f"X: got {type(X).__name__}; expected a numpy array (T, B, D) or (T, B)")
    if 0 in X.shape[:2]:
        raise ValueError(f"X: got shape {X.shape}; expected T >= 1 and B >= 1")
    if X.ndim == 2 and np.issubdtype(X.dtype, np.integer):
        if X.min() < 0 or X.max() >= input_size:
            bad = int(X.min()) if X.min() < 0 else int(X.max())
            raise ValueError(
                f"X: got token id {bad}; expected 0 <= id < {input_size} (the vocabulary size)"
            )
        return X
    if X.ndim != 3 or X.shape[2] != input_size:
        raise ValueError(
            f"X: got shape {X.shape} of {X.dtype}; expected (T, B, {input_size}) floats "
            f"or (T, B) integer token ids"
        )
    return _check_float("X", X, dtype)


def check_targets(Y: object, loss: str, T: int, B: int, K: int, dtype: np.dtype) -> Array:
    if not isinstance(Y, np.ndarray):
        raise ValueError(f"Y: got {type(Y).__name__}; expected a numpy array")
    if loss == "cross_entropy":
        if Y.shape != (T, B) or not np.issubdtype(Y.dtype, np.integer):
            raise ValueError(
                f"Y: got shape {Y.shape} of {Y.dtype}; expected integer class ids ({T}, {B})"
            )
        return Y
    if Y.shape != (T, B, K):
        raise ValueError(f"Y: got shape {Y.shape}; expected ({T}, {B}, {K}) regression targets")
    return _check_float("Y", Y, dtype)


def check_class_ids(Y: Array, mask: Array, K: int) -> None:
    live = Y[mask != 0]
    if live.size and (live.min() < 0 or live.max() >= K):
        bad = int(live.min()) if live.min() < 0 else int(live.max())
        raise ValueError(f"Y: got class id {bad}; expected 0 <= id < {K} (output_size)")


def check_mask(mask: object, T: int, B: int, dtype: np.dtype) -> Array:
    if mask is None:
        return np.ones((T, B), dtype=dtype)
    if not isinstance(mask, np.ndarray) or mask.shape != (T, B):
        shape = getattr(mask, "shape", type(mask).__name__)
        raise ValueError(f"mask: got {shape}; expected a numpy array of shape ({T}, {B})")
    _check_finite("mask", mask)
    if mask.size and mask.min() < 0:  # a weight per step: a negative one would flip the loss
        at = tuple(int(i) for i in np.unravel_index(mask.argmin(), mask.shape))
        raise ValueError(f"mask: got {float(mask.min())!r} at {at}; expected weights >= 0")
    return mask.astype(dtype, copy=False)


def check_targets_and_mask(
    Y: object, mask: object, loss: str, T: int, B: int, K: int, dtype: np.dtype
) -> tuple[Array, Array]:
    """Y and the mask as the loss reads them; class ids are checked where the mask scores."""
    Y = check_targets(Y, loss, T, B, K, dtype)
    mask = check_mask(mask, T, B, dtype)
    if loss == "cross_entropy":
        check_class_ids(Y, mask, K)
    return Y, mask


def check_loss(loss: object) -> Loss:
    return check_one_of("loss", loss, LOSSES)


def check_state(
    h0: object, n_state: int, L: int, B: int, H: int, dtype: np.dtype
) -> tuple[Array, ...]:
    """h0: None, an (L, B, H) array, or for LSTM a tuple (h0, c0) of them."""
    expected = f"({L}, {B}, {H})" if n_state == 1 else f"a tuple (h0, c0), each ({L}, {B}, {H})"
    if h0 is None:
        return tuple(np.zeros((L, B, H), dtype=dtype) for _ in range(n_state))
    parts = (h0,) if n_state == 1 else h0
    if not isinstance(parts, tuple | list) or len(parts) != n_state:
        raise ValueError(f"h0: got {type(h0).__name__}; expected {expected}")
    for part in parts:
        if not isinstance(part, np.ndarray) or part.shape != (L, B, H):
            shape = getattr(part, "shape", type(part).__name__)
            raise ValueError(f"h0: got {shape}; expected {expected}")
        _check_float("h0", part, dtype)
    return tuple(parts)
