"""What a report reads: runs from a run folder or a results store, as plain stored data.

    run = load_run_folder("runs/abc123")        # history.json + the config in last.safetensors
    runs = load_store("results/adding")         # every run of a store (runs.db)
    run = load_store_run("results", "abc1")     # one run, by id or a unique prefix

A RunData holds a run's records: `steps` (one dict per training step) and `evals` (one per
evaluation) as they are stored, and `diagnostics`, one Snapshot per diagnosis: its training
step (the first 0, at initialisation) and the Diagnosis read back from the stored JSON record
({"step", **Diagnosis.to_dict()}), alike from a run folder's history.json and from a store
of any schema version.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.diagnostics.diagnose import Diagnosis
from rnnlab.diagnostics.record import NO_DIAGNOSES, Snapshot
from rnnlab.engine.cells import CELLS, DEFAULT_CELL, Cell
from rnnlab.experiments.select import flatten
from rnnlab.experiments.store import Store, StoreError
from rnnlab.train.history import History


@dataclass(frozen=True)
class RunData:
    """One run as stored. config: the run config ({} if the folder holds none); status:
    done | diverged | failed | running | pending; baseline: the task's memoryless loss."""

    id: str
    config: dict[str, Any]
    status: str
    steps: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    diagnostics: list[Snapshot] = field(default_factory=list)
    diverged_at: int | None = None
    error: str | None = None
    seconds: float | None = None
    baseline: float | None = None

    @classmethod
    def from_history(
        cls, run_id: str, config: dict[str, Any], history: History, seconds: float | None = None
    ) -> RunData:
        """A run trained in this process (fit's History) with its run config (a dict as
        RunConfig.model_dump() gives)."""
        return cls(
            id=run_id,
            config=config,
            status=history.status,
            steps=history.steps,
            evals=history.evals,
            diagnostics=snapshots(history.diagnostics),
            diverged_at=history.diverged_at,
            seconds=seconds,
            baseline=baseline(config),
        )

    @property
    def final(self) -> dict[str, float]:
        return {k: v for k, v in (self.evals[-1] if self.evals else {}).items() if k != "step"}

    @property
    def solved(self) -> bool:
        return self.status == "done" and bool(self.final.get("solved", 0.0))

    @property
    def label(self) -> str:
        return model_label(self.config.get("model", {}))

    @property
    def T(self) -> int | None:
        return self.config.get("task", {}).get("T")

    @property
    def task(self) -> str:
        return str(self.config.get("task", {}).get("name", "?"))


def no_diagnoses(config: dict[str, Any]) -> str:
    """Why a run has no diagnoses, as far as its config tells."""
    if config.get("diagnostics", {}).get("every") == 0:
        return "no diagnoses recorded (the run's config sets [diagnostics] every = 0)"
    return NO_DIAGNOSES


def model_label(model: dict[str, Any]) -> str:
    """'tanh RNN', 'IRNN', 'LSTM', 'GRU' (the cell's label), with ρ(W) when it was set at
    initialisation."""
    name = cell_of(model).label(model.get("init", "pytorch"))
    if model.get("spectral_radius") is not None:
        name += f", ρ {model['spectral_radius']:g}"
    return name


def cell_of(model: dict[str, Any]) -> Cell:
    """The cell a stored model config names, with its options; a kind or option this
    version does not know (a store written by another) reads as its bare kind."""
    cls = CELLS.get(model.get("cell", DEFAULT_CELL), CELLS[DEFAULT_CELL])
    options = {k: v for k, v in model.items() if k in cls.option_names()}
    try:
        return cls(**options)
    except ValueError:
        return cls()


# --- loading ---------------------------------------------------------------------------------


@cache
def _baseline(task_json: str) -> float | None:
    from rnnlab import tasks

    params = json.loads(task_json)
    try:
        return float(tasks.get(params.pop("name"), **params).baseline)
    except (ValueError, TypeError, KeyError):
        return None  # a task this rnnlab does not know: the report goes on without it


def baseline(config: dict[str, Any]) -> float | None:
    task = config.get("task")
    return _baseline(json.dumps(task, sort_keys=True)) if task else None


def load_run_folder(folder: str | os.PathLike[str]) -> RunData:
    """A run folder written by `rnnlab train` or a store: history.json, and the run config
    from the metadata of last.safetensors (if present)."""
    from rnnlab.train.checkpoint import read_checkpoint_header

    folder = Path(folder)
    history = History.load(folder / "history.json")
    config: dict[str, Any] = {}
    last = folder / "last.safetensors"
    if os.path.lexists(last):  # a link to nothing is an error, not a run without a config
        config = read_checkpoint_header(last).config  # the config alone: no data is read
    return RunData.from_history(folder.name, config, history)


def _by_step(series: dict[str, list[tuple[int, float]]]) -> list[dict[str, float]]:
    rows: dict[int, dict[str, float]] = {}
    for name, values in series.items():
        for step, value in values:
            rows.setdefault(step, {"step": step})[name] = value
    return [rows[s] for s in sorted(rows)]


def snapshots(records: Sequence[dict[str, Any]]) -> list[Snapshot]:
    """Diagnostics records ({"step", **Diagnosis.to_dict()}) as Snapshots."""
    return [Snapshot(int(r["step"]), Diagnosis.from_dict(r)) for r in records]


def _store_run(store: Store, row: Any) -> RunData:
    records = [{"step": step} | r for step, r in store.diagnostics(row.id)]
    if not records:  # runs recorded without snapshots may still have them on disk
        path = store.run_dir(row.id) / "history.json"
        if path.exists():
            records = History.load(path).diagnostics
    return RunData(
        id=row.id,
        config=row.config,
        status=row.status,
        steps=_by_step(store.metrics(row.id, "train")),
        evals=_by_step(store.metrics(row.id, "eval")),
        diagnostics=snapshots(records),
        diverged_at=row.diverged_at,
        error=row.error,
        seconds=row.seconds,
        baseline=baseline(row.config),
    )


def load_store(folder: str | os.PathLike[str], ids: Sequence[str] | None = None) -> list[RunData]:
    """Every run of the store at `folder` (or those in `ids`), in the order they were added."""
    with Store(folder) as store:
        return [_store_run(store, row) for row in store.runs(ids)]


def load_store_run(folder: str | os.PathLike[str], run_id: str) -> RunData:
    with Store(folder) as store:
        return _store_run(store, store.get(run_id))


def is_store(folder: Path) -> bool:
    return (folder / "runs.db").is_file()


def is_run_folder(folder: Path) -> bool:
    return (folder / "history.json").is_file()


def resolve(target: str, store: str | os.PathLike[str] = "results") -> tuple[str, Path]:
    """What `rnnlab report TARGET` names: ("sweep", store folder), ("run", run folder) or
    ("id", store folder) for a run id found in the store at `store`."""
    path = Path(target)
    if path.is_dir() and is_store(path):
        return "sweep", path
    if path.is_dir() and is_run_folder(path):
        return "run", path
    if Path(store).is_dir() and is_store(Path(store)) and "/" not in target:
        try:
            with Store(store) as s:
                s.get(target)
        except StoreError:
            pass
        else:
            return "id", Path(store)
    raise ValueError(
        f"target: got {target!r}; expected a run folder (with history.json), a store folder "
        f"(with runs.db) or a run id in the store at {str(store)!r} (see --store)"
    )


# --- reading numbers -------------------------------------------------------------------------


def num(value: Any) -> float:
    """A stored number as float; None (a non-finite number in JSON) as nan."""
    return math.nan if value is None else float(value)


def array(values: Any) -> np.ndarray:
    return np.array([num(v) for v in values], dtype=np.float64)


def known(value: float | None) -> float | None:
    """A number, or None where it is missing or not finite (a table shows it as –)."""
    return None if value is None or not math.isfinite(value) else value


def varying(runs: Sequence[RunData]) -> dict[str, list[Any]]:
    """The config fields whose values differ between runs, each with its distinct values."""
    fields = [flatten(r.config) for r in runs]
    keys = sorted({k for f in fields for k in f})
    out = {}
    for key in keys:
        values = [json.dumps(f.get(key), sort_keys=True) for f in fields]
        if len(set(values)) > 1:
            out[key] = [json.loads(v) for v in dict.fromkeys(values)]
    return out


# field names as the report writes them (the notation's letters where it has one)
SHORT_NAMES = {"hidden_size": "H", "batch_size": "B", "num_layers": "layers"}


def group_labels(runs: Sequence[RunData]) -> list[str]:
    """A short label per run that tells groups of runs apart (runs that differ only in T or
    the seed share one): the model label, then only the fields needed to tell runs of the
    same model apart, e.g. 'tanh RNN, ρ 2, clip none'. A field the others already tell
    apart (diagnostics.every set with train.eval_every) is left out: cadences are dropped
    first, the fields a learner compares (the model's, clipping, optimiser, lr) last. Two
    groups whose values print alike get their first run's id."""
    model_keys = [k for k in varying(runs) if k.startswith("model.")]
    keys = group_keys(runs) + list(dict.fromkeys(".".join(k.split(".")[:2]) for k in model_keys))
    flats = [flatten(r.config) for r in runs]
    values = [{k: _field_value(flat, k) for k in keys} for flat in flats]

    def rank(key: str) -> tuple[int, str]:  # dropped first: what only says how it was watched
        if key.startswith("diagnostics.") or key.endswith("every") or key == "task.val_size":
            return 0, key
        learner = key.startswith("model.") or key in ("train.clip", "train.optimizer", "train.lr")
        return (2 if learner else 1), key

    kept: dict[str, list[str]] = {}  # model label -> the fields its runs need
    for label in dict.fromkeys(r.label for r in runs):
        mine = [v for r, v in zip(runs, values, strict=True) if r.label == label]
        need = sorted((k for k in keys if len({v[k] for v in mine}) > 1), key=rank)

        def groups(fields: list[str], mine: list[dict[str, str]] = mine) -> int:
            return len({tuple(v[k] for k in fields) for v in mine})

        target = groups(need)
        for key in list(need):  # drop each field the others already tell apart
            if groups([k for k in need if k != key]) == target:
                need.remove(key)
        kept[label] = sorted(need, key=lambda k: keys.index(k))
    labels = [
        ", ".join([r.label, *(f"{_short(k)} {v[k]}" for k in kept[r.label])])
        for r, v in zip(runs, values, strict=True)
    ]
    # a label two groups share (values that print alike): add the group's first run id
    skip = ("task.T", "train.seed", "task.seed")
    groups_of: dict[str, dict[str, str]] = {}  # label -> group -> its first run's id
    ids = []
    for run, label, flat in zip(runs, labels, flats, strict=True):
        group = json.dumps({k: v for k, v in flat.items() if k not in skip}, sort_keys=True)
        groups_of.setdefault(label, {}).setdefault(group, run.id)
        ids.append(groups_of[label][group])
    return [
        f"{label} ({run_id})" if len(groups_of[label]) > 1 else label
        for label, run_id in zip(labels, ids, strict=True)
    ]


def _short(key: str) -> str:
    name = key.split(".")[-1]
    return SHORT_NAMES.get(name, name)


def _field_value(flat: dict[str, Any], key: str) -> str:
    """A field's value as printed; a table such as train.clip: its leaves' values, e.g.
    'norm 1'."""
    if key in flat:
        leaves = [flat[key]]
    else:
        leaves = [v for k, v in flat.items() if k.startswith(key + ".") and v is not None]
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in leaves)


def group_keys(runs: Sequence[RunData]) -> list[str]:
    """Varying fields that tell groups of runs apart: all but the model's (in the label),
    the sequence length and the seeds (aggregated over). A table's leaves (train.clip.mode,
    train.clip.threshold) count as the table (train.clip)."""
    skip = ("model.", "task.T", "train.seed", "task.seed")
    keys = [k for k in varying(runs) if not k.startswith(skip)]
    return list(dict.fromkeys(".".join(k.split(".")[:2]) for k in keys))
