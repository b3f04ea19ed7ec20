"""Argument checks every layer shares, each a one-line ValueError naming the argument, the
value given and what is allowed. This module imports nothing above rnnlab.vocab, so the
tasks (which depend on nothing) use it as the engine, diagnostics, train and the torch
bridge do.

    check_int("T", 1, 2)                       T: got 1; expected an integer >= 2
    check_int("step", 1, 2, 10, why=" (T)")    step: got 1; expected an integer 2 <= step <= 10 (T)
    check_positive("lr", 0)                    lr: got 0; expected a finite number > 0
    check_number("gamma", 2, lambda v: 0 < v <= 1, "a number in (0, 1]")
    check_one_of("mode", "max", CLIP_MODES)    mode: got 'max'; expected one of norm, value, none

Integers are Python or numpy integers, numbers any real number; a bool is neither.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from rnnlab.vocab import DTYPES

T = TypeVar("T")


def check_int(
    name: str,
    value: object,
    low: int,
    high: int | None = None,
    *,
    why: str = "",
    expected: str | None = None,
) -> int:
    """`value` as an int, if it is an integer with low <= value (<= high). The message says
    `expected` if given, else the bounds; `why` follows it."""
    n = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None
    if n is None or n < low or (high is not None and n > high):
        if expected is None:
            bounds = f">= {low}" if high is None else f"{low} <= {name} <= {high}"
            expected = f"an integer {bounds}"
        raise ValueError(f"{name}: got {value!r}; expected {expected}{why}")
    return n


def check_number(
    name: str, value: object, ok: Callable[[float], bool], expected: str, *, finite: bool = True
) -> float:
    """`value` as a float, if it is a real number (finite, unless finite=False) for which
    ok(value) holds; else the message says `expected` (e.g. "a number in [0, 1)")."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or (finite and not math.isfinite(value))
        or not ok(float(value))
    ):
        raise ValueError(f"{name}: got {value!r}; expected {expected}")
    return float(value)


def check_positive(name: str, value: object, *, finite: bool = True, why: str = "") -> float:
    """`value` as a float, if it is a number > 0 (and finite, unless finite=False)."""
    expected = ("a finite number > 0" if finite else "a number > 0") + why
    return check_number(name, value, lambda v: v > 0, expected, finite=finite)


def check_one_of(name: str, value: object, allowed: tuple[T, ...]) -> T:
    """The member of `allowed` (a vocabulary, e.g. CLIP_MODES) that `value` equals."""
    for member in allowed:
        if value == member:
            return member
    raise ValueError(f"{name}: got {value!r}; expected one of {', '.join(map(str, allowed))}")


def check_dtype(dtype: object) -> np.dtype:
    """'float32' or 'float64' (a name or a numpy dtype) as a numpy dtype."""
    return np.dtype(check_one_of("dtype", dtype, DTYPES))
