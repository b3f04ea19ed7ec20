"""Choosing and ordering runs by their config fields and final metrics: `rnnlab ls --where`,
`--sort`, `export`."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from typing import Any

from rnnlab.experiments.store import Run


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as {"model.cell": "lstm", "train.clip.mode": "norm", ...}."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out |= flatten(value, path)
        else:
            out[path] = value
    return out


def _parse_value(text: str) -> Any:
    """A --where value as TOML (10, 1e-3, true, "lstm"); a bare word stays a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def select(runs: Sequence[Run], where: Sequence[str]) -> list[Run]:
    """The runs matching every `key=value` in `where`; a key is a config field (model.cell)
    or a final metric (solved); numbers compare by value, so task.T=10 matches 10."""
    wanted = []
    for item in where:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--where: got {item!r}; expected key=value, e.g. model.cell=lstm")
        wanted.append((key.strip(), _parse_value(text.strip())))
    fields = [flatten(run.config) | run.final for run in runs]
    known = set().union(*fields) if fields else set()
    for key, _ in wanted:
        if runs and key not in known:
            raise ValueError(
                f"--where: got {key!r}; expected a config field or a final metric of these "
                "runs, e.g. model.cell, task.T or loss"
            )
    return [
        run
        for run, values in zip(runs, fields, strict=True)
        if all(key in values and _equal(values[key], value) for key, value in wanted)
    ]


def _columns(run: Run) -> dict[str, Any]:
    """What `ls` shows of a run, by the names --sort takes."""
    fixed = {"id": run.id, "status": run.status, "steps": run.steps_done}
    return fixed | flatten(run.config) | run.final


def sort(runs: Sequence[Run], by: str) -> list[Run]:
    """The runs ordered by `by`: id, status, steps, a config field (task.T) or a final
    metric (loss); runs without a value, or with NaN, go last."""
    columns = [_columns(run) for run in runs]
    if runs and by not in set().union(*columns):
        raise ValueError(
            f"--sort: got {by!r}; expected id, status, steps, a config field or a final "
            "metric of these runs, e.g. model.cell, task.T or loss"
        )

    def key(values: dict[str, Any]) -> tuple[int, Any]:
        value = values.get(by)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (1, 0)
        return (0, value)

    order = sorted(range(len(runs)), key=lambda i: key(columns[i]))
    return [runs[i] for i in order]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)
