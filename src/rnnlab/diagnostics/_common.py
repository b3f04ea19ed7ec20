"""Shared helpers: argument checks (one-line ValueErrors), conversion to JSON-safe values and
back."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import cache
from typing import Any, TypeVar

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_int

Index = slice | Array
DC = TypeVar("DC")  # a dataclass


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


def from_jsonable(cls: type[DC], value: dict[str, Any], path: str = "") -> DC:
    """The dataclass `cls` again from what jsonable made of it, read through its field types:
    None is nan for a float and inside an array, and an array whose field's metadata says
    complex holds [real, imag] pairs. A field the value lacks takes its default, else is read
    as None would be (None, nan, [], {} or an empty array); a str, int or bool field without
    one is a ValueError naming its path. Keys that are not fields are ignored."""
    kwargs = {}
    hints = _hints(typing.cast(type, cls))
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in value and (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        ):
            continue
        kwargs[f.name] = _read(hints[f.name], value.get(f.name), f"{path}{f.name}", f)
    make: Any = cls  # a dataclass: its fields are its keyword arguments
    return typing.cast(DC, make(**kwargs))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _read(tp: Any, value: Any, path: str, f: dataclasses.Field[Any] | None = None) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):  # X | None: the fields' only unions
        if value is None:
            return None
        (tp,) = (a for a in args if a is not type(None))
        return _read(tp, value, path, f)
    if dataclasses.is_dataclass(tp):
        return from_jsonable(typing.cast(type, tp), value or {}, f"{path}.")
    if tp is np.ndarray:
        array = np.array([] if value is None else value, dtype=np.float64)  # None -> nan
        if f is not None and f.metadata.get("complex") and array.ndim == 2:
            return array[:, 0] + 1j * array[:, 1]
        return array
    if origin is list:
        return [_read(args[0], v, f"{path}[{i}]") for i, v in enumerate(value or [])]
    if origin is dict:
        return {k: _read(args[1], v, f"{path}.{k}") for k, v in (value or {}).items()}
    if tp is float:
        return math.nan if value is None else float(value)
    if origin is typing.Literal:  # a vocabulary: the dataclass checks its member
        return value
    if value is None:
        raise ValueError(f"{path}: got nothing; expected a {tp.__name__}")
    return tp(value)
