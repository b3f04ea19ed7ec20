"""Sweeps: a base config plus a [sweep] table of axes; the grid is their product.

    [model]                      # the base config, as for `rnnlab run`
    hidden_size = 32
    ...
    [sweep]
    "model.cell" = ["rnn", "lstm", "gru"]
    "task.T"     = [25, 50, 100]
    "train.seed" = [0, 1, 2]
    exclude = [{ "model.cell" = "rnn", "task.T" = 100 }]   # drops every point matching one

Axis keys are TOML paths of config fields (quoted, or as nested tables); a field that is
a table takes whole tables ("train.clip" = [{ mode = "none" }, ...]). An axis named by a
section is a list of variants, each setting several of its fields while the base config
gives the rest (cells have different options):
    model = [{ cell = "rnn", nonlinearity = "relu", init = "identity" }, { cell = "lstm" }]
Every point is validated before anything runs or is written; points that give the same
config run once. A grid has at most MAX_POINTS points (the product of the axes' lengths,
before `exclude`), checked before any point is made: validation takes about a millisecond
a point, so the limit also bounds the wait before the first run starts.
`run_sweep` drives the runs through an executor and records every result in the store.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import json
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from rnnlab import tasks
from rnnlab.engine.cells import CELLS
from rnnlab.experiments.config import ConfigError, ModelConfig, RunConfig, check_depth, read_toml
from rnnlab.experiments.executors import Executor
from rnnlab.experiments.prepared import validate
from rnnlab.experiments.runner import one_line
from rnnlab.experiments.select import flatten
from rnnlab.experiments.store import Store
from rnnlab.tasks.base import task_class

MAX_POINTS = 10_000


@dataclass(frozen=True)
class Sweep:
    axes: dict[str, list[Any]]
    exclude: list[dict[str, Any]]
    points: list[dict[str, Any]]  # each config's axis values, in grid order
    configs: list[RunConfig]


def _flatten_to_axes(entry: dict[str, Any], axes: dict[str, Any], prefix: str = "") -> dict:
    """An exclude entry flattened like the axes, keeping a table whole where it is a value."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and path not in axes:
            out |= _flatten_to_axes(value, axes, path)
        else:
            out[path] = value
    return out


def _section_class(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


@cache
def _task_parameters(name: str) -> tuple[str, ...]:
    return tuple(inspect.signature(task_class(name)).parameters)  # read, not built


def _check_field(key: str, task_names: Sequence[str]) -> None:
    """Raise ConfigError unless `key` is the TOML path of a config field."""
    parts = key.split(".")
    section: type[BaseModel] | None = RunConfig
    for depth, name in enumerate(parts):
        if section is None:  # a path that goes on below a plain field
            raise ConfigError(
                f"sweep.{key}: unknown key; {'.'.join(parts[:depth])} has no fields below it"
            )
        extra = section.model_config.get("extra") == "allow" and name not in section.model_fields
        if extra and section is ModelConfig:  # a cell's own option
            options = sorted({o for c in CELLS.values() for o in c.option_names()})
            if name in options and depth == len(parts) - 1:
                return
            fields = ", ".join([*section.model_fields, *options])
            raise ConfigError(f"sweep.{key}: unknown key; expected one of {fields}")
        if extra:  # [task]: the task's parameters
            if not task_names:
                return  # an unknown task name: validating the points reports it
            allowed = sorted({"name", *(p for n in task_names for p in _task_parameters(n))})
            if name in allowed and depth == len(parts) - 1:
                return
            raise ConfigError(f"sweep.{key}: unknown key; expected one of {', '.join(allowed)}")
        if name not in section.model_fields:
            where = ".".join(parts[:depth]) or "the config"
            raise ConfigError(
                f"sweep.{key}: unknown key; expected one of {', '.join(section.model_fields)} "
                f"(the fields of {where})"
            )
        section = _section_class(section.model_fields[name].annotation)
    if len(parts) < 2:
        raise ConfigError(f"sweep.{key}: got a whole section; expected a field, e.g. {key}.<name>")


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = data
    for name in parents:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            raise ConfigError(f"sweep.{key}: the base config's {name} is not a table")
    if isinstance(value, dict) and not parents:  # a section's variant: the rest stays
        for inner, v in flatten(value).items():
            _set(node.setdefault(last, {}), inner, v)
    else:  # a field's value, a whole table (train.clip) included
        node[last] = copy.deepcopy(value)


def _canonical(value: Any) -> str:
    """A TOML value as canonical JSON: equal for equal values, without Python's
    1 == 1.0 == True (a TOML date, which no config field takes, by its repr)."""
    return json.dumps(value, sort_keys=True, default=lambda v: f"{type(v).__name__} {v!r}")


def _brief(values: list[Any]) -> str:
    """A list's repr, cut short when long: an axis may hold thousands of values."""
    text = repr(values)
    if len(text) <= 100:
        return text
    return f"[{', '.join(repr(v) for v in values[:3])}, …] ({len(values)} values)"


def _label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.items())


def expand(data: dict[str, Any], max_points: int = MAX_POINTS) -> Sweep:
    """The validated grid of a sweep file's contents (a base config plus [sweep]), of at
    most `max_points` points (before `exclude`)."""
    check_depth(data, "sweep: got data that")
    data = copy.deepcopy(data)
    table = data.pop("sweep", None)
    if not isinstance(table, dict):
        raise ConfigError(
            'sweep: missing; expected a [sweep] table of axes, e.g. "train.seed" = [0, 1, 2]'
        )
    raw_exclude = table.pop("exclude", [])
    axes = flatten(table)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            shown = _brief(values) if isinstance(values, list) else repr(values)
            raise ConfigError(f"sweep.{key}: got {shown}; expected a non-empty list of values")
    n_points = math.prod(len(values) for values in axes.values())
    if n_points > max_points:  # before a single point is made
        sizes = " × ".join(f"{key} {len(values)}" for key, values in axes.items())
        raise ConfigError(
            f"sweep: got {n_points} points ({sizes}); expected at most {max_points} "
            "(rnnlab sweep --max-points N allows more)"
        )
    base_task = data.get("task", {}).get("name", RunConfig().task.name)
    task_names = [str(n) for n in axes.get("task.name", [base_task]) if isinstance(n, str)]
    task_names += [  # a [task] variant may name its own task
        v["name"] for v in axes.get("task", []) if isinstance(v, dict) and "name" in v
    ]
    known = [n for n in task_names if n in tasks.names()]
    for key, values in axes.items():  # a field set by a variant and by an axis: which wins?
        if "." not in key and all(isinstance(v, dict) for v in values):
            for inner in {i for v in values for i in flatten(v)}:
                if f"{key}.{inner}" in axes:
                    raise ConfigError(
                        f"sweep.{key}: sets {inner}, which the axis {key}.{inner} also sets; "
                        "expected each field on one axis"
                    )
    canonical = {key: [_canonical(v) for v in values] for key, values in axes.items()}
    for key, values in axes.items():
        seen: set[str] = set()
        for value, text in zip(values, canonical[key], strict=True):
            if text in seen:  # a set: linear in the axis's length
                raise ConfigError(
                    f"sweep.{key}: got {_brief(values)}; expected distinct values "
                    f"({value!r} is there twice)"
                )
            seen.add(text)
        if "." not in key and all(isinstance(v, dict) for v in values):  # section variants
            for variant in values:
                for inner in flatten(variant):
                    _check_field(f"{key}.{inner}", known)
        else:
            _check_field(key, known)

    if not isinstance(raw_exclude, list) or not all(isinstance(e, dict) for e in raw_exclude):
        shown = _brief(raw_exclude) if isinstance(raw_exclude, list) else repr(raw_exclude)
        raise ConfigError(f"sweep.exclude: got {shown}; expected a list of tables of axis values")
    exclude = [_flatten_to_axes(e, axes) for e in raw_exclude]
    for entry in exclude:
        for key, value in entry.items():
            if key not in axes:
                raise ConfigError(
                    f"sweep.exclude: got key {key!r}; expected one of the axes {', '.join(axes)}"
                )
            if _canonical(value) not in canonical[key]:
                raise ConfigError(
                    f"sweep.exclude.{key}: got {value!r}; expected one of {_brief(axes[key])}"
                )
    # an exclude entry as the index of its value on each axis it names
    names = list(axes)
    excluded = [
        [(names.index(k), canonical[k].index(_canonical(v))) for k, v in entry.items()]
        for entry in exclude
    ]

    points, configs, seen_ids = [], [], set()
    for index in itertools.product(*(range(len(values)) for values in axes.values())):
        if any(all(index[axis] == i for axis, i in entry) for entry in excluded):
            continue
        point = {key: axes[key][i] for key, i in zip(names, index, strict=True)}
        run = copy.deepcopy(data)
        for key, value in point.items():
            _set(run, key, value)
        try:
            config = validate(run)
        except ConfigError as err:
            raise ConfigError(f"{err} (in sweep point {_label(point)})") from None
        if config.run_id not in seen_ids:
            seen_ids.add(config.run_id)
            points.append(point)
            configs.append(config)
    if not configs:
        raise ConfigError("sweep.exclude: excludes every point; expected at least one run left")
    return Sweep(axes, exclude, points, configs)


def load_sweep(path: str | Path, max_points: int = MAX_POINTS) -> Sweep:
    return expand(read_toml(path, "sweep"), max_points)


# --- driving -------------------------------------------------------------------------------


@dataclass
class Counts:
    """Where a sweep stands. total counts the runs this invocation has to run; finished
    and failed_before count runs the store already had (skipped)."""

    total: int = 0
    done: int = 0
    diverged: int = 0
    failed: int = 0
    running: int = 0
    finished_before: int = 0
    failed_before: int = 0

    @property
    def completed(self) -> int:
        return self.done + self.diverged + self.failed


def run_sweep(
    configs: Sequence[RunConfig],
    store: Store,
    executor: Executor,
    retry_failed: bool = False,
    on_change: Callable[[Counts], None] | None = None,
) -> Counts:
    """Run every config the store has not finished; record each result as it arrives.

    Finished runs (done, diverged) are skipped; pending runs and runs left `running` by a
    crash are (re)started, the latter resuming from their last checkpoint; failed runs are
    skipped unless retry_failed. The store is written here only, never by a worker."""
    entries = {config.run_id: config.canonical_json for config in configs}
    store.add(entries.items())
    before = store.statuses()
    wanted = ("pending", "running", "failed") if retry_failed else ("pending", "running")
    queue = deque(run_id for run_id in entries if before[run_id] in wanted)
    counts = Counts(
        total=len(queue),
        finished_before=sum(before[r] in ("done", "diverged") for r in entries),
        failed_before=sum(before[r] == "failed" for r in entries) if not retry_failed else 0,
    )

    def changed() -> None:
        if on_change is not None:
            on_change(counts)

    changed()
    while queue or counts.running:
        while queue and counts.running < executor.slots:
            run_id = queue.popleft()
            store.mark_running(run_id)
            run_dir = store.run_dir(run_id).resolve()
            executor.submit(run_id, entries[run_id], str(run_dir))
            counts.running += 1
            changed()
        run_id, result_json = executor.next_result()
        result = json.loads(result_json)
        try:
            store.record(run_id, result)
        except ValueError as err:  # e.g. diagnostics that are not strict JSON
            result = {"status": "failed", "error": one_line(err)}
            store.record(run_id, result)
        counts.running -= 1
        setattr(counts, result["status"], getattr(counts, result["status"]) + 1)
        changed()
    return counts
