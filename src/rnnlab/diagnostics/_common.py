"""Shared helpers: argument checks (one-line ValueErrors) and conversion to JSON-safe values."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_int

Index = slice | Array


def check_step(step: object, T: int) -> int:
    """The step t whose loss L_t is followed back, 1..T (h_t is row t of a state array).
    None means the last step, T. A lag needs at least one step behind t, so t ≥ 2."""
    if step is None:
        step = T
    return check_int("step", step, 2, T, why=" (T)")


def check_lag(name: str, lag: object, t: int) -> int:
    """A lag τ reachable from step t: 1 <= τ <= t − 1."""
    return check_int(name, lag, 1, t - 1, why=f" (the lags step {t} can reach)")


def select(sequences: object, B: int) -> Index:
    """Which sequences of the batch to use: None (all), an int n (the first n: views, no copy)
    or an array of distinct indices (e.g. drawn with rng.choice)."""
    if sequences is None:
        return slice(0, B)
    if isinstance(sequences, int | np.integer) and not isinstance(sequences, bool):
        n = check_int("sequences", sequences, 1, B, expected=f"1 <= n <= {B} (the batch)")
        return slice(0, n)
    idx = np.asarray(sequences)
    if (
        idx.ndim != 1
        or idx.size == 0
        or not np.issubdtype(idx.dtype, np.integer)
        or idx.min() < 0
        or idx.max() >= B
        or np.unique(idx).size != idx.size
    ):
        raise ValueError(
            f"sequences: got {sequences!r}; expected None, a count, or distinct indices in [0, {B})"
        )
    return idx


def indices(index: Index) -> list[int]:
    """The batch indices an Index selects, as plain ints."""
    if isinstance(index, slice):
        return list(range(index.start or 0, index.stop))
    return [int(i) for i in index]


def jsonable(value: Any) -> Any:
    """Dataclasses, dicts, arrays and numpy scalars -> lists, dicts, floats, ints, str, None.
    Non-finite floats become None (strict JSON has no NaN or Infinity); a complex number
    becomes [real, imag]."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, complex | np.complexfloating):
        return [jsonable(float(value.real)), jsonable(float(value.imag))]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value
