"""The one path from a config to a run: validate it once into a PreparedRun, then use that.

    run = load_run("examples/adding.toml")      # or prepare(parse(data)), prepare(config)
    history = train(run, "results/runs/" + run.config.run_id)

`prepare` builds the task and the model (seeded from train.seed) exactly once; building is
what checks the task's parameters and the model's, so a config that prepares is valid. In
between, the run's memory, estimated from its sizes, is checked against the limit
(rnnlab.experiments.limits), before the model or any data is allocated.
Every user of a run takes the PreparedRun: `train`, the sweep worker (runner.run_one, which
trusts the driver's validation and only builds), `rnnlab diagnose` and `rnnlab sample`.
`validate` is for the sweep driver, which checks every point before anything runs and keeps
the configs only: the models cannot cross to the workers (nothing is pickled).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from rnnlab import tasks
from rnnlab.checks import check_int
from rnnlab.diagnostics.verdict import RunInfo
from rnnlab.engine.init import T_MAX_MIN
from rnnlab.engine.model import SequenceModel
from rnnlab.engine.model import build as build_model
from rnnlab.experiments.config import ConfigError, RunConfig, parse, read_config
from rnnlab.experiments.limits import check_budget, check_inputs
from rnnlab.tasks.base import Task
from rnnlab.train.history import History
from rnnlab.train.loop import fit


@dataclass(frozen=True)
class PreparedRun:
    """A validated run, built: its config, the model (at initialisation until it is trained
    or given a checkpoint's params), the task, and what the diagnostics' remedies need to
    know about the run. Training updates the model in place: prepare a run per training."""

    config: RunConfig
    model: SequenceModel
    task: Task
    info: RunInfo


def prepare(config: RunConfig) -> PreparedRun:
    """Build the run a (parsed) config describes; a ConfigError (one line) if the task or
    the model rejects its parameters. A model.t_max equal to its default, the task's
    dependency length, is dropped from the run's config: spelled or left out, one run id."""
    model, task = build(config)
    if config.model.t_max == task.dependency_length:
        model_config = config.model.model_copy(update={"t_max": None})
        config = config.model_copy(update={"model": model_config})
    return PreparedRun(config, model, task, run_info(config, model))


def validate(data: dict[str, Any]) -> RunConfig:
    """The RunConfig of a config's contents, checked in full (schema, task and model)."""
    return prepare(parse(data)).config


def load_run(path: str | Path, overrides: Sequence[str] = ()) -> PreparedRun:
    """The run a TOML config file describes, with `section.key=value` overrides."""
    return prepare(read_config(path, overrides))


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """The config of a TOML file with overrides, checked in full."""
    return load_run(path, overrides).config


@overload
def train(
    run: PreparedRun, out: str | Path, resume: bool = False, quiet: bool = False
) -> History: ...
@overload
def train(
    run: RunConfig, out: str | Path, resume: bool = False, quiet: bool = False
) -> tuple[History, Task]: ...
def train(
    run: PreparedRun | RunConfig, out: str | Path, resume: bool = False, quiet: bool = False
) -> History | tuple[History, Task]:
    """Train a prepared run with its diagnostics into `out` (checkpoints, history.json).
    A RunConfig (the old form) still works, returning (history, task), with a warning."""
    if isinstance(run, RunConfig):
        warnings.warn(
            "train(config, ...) is deprecated: pass prepare(config), and read the task "
            "from it; train then returns the History alone",
            DeprecationWarning,
            stacklevel=2,
        )
        prepared = prepare(run)
        return train(prepared, out, resume, quiet), prepared.task
    config = run.config
    return fit(
        run.model,
        run.task,
        config.train,
        out=out,
        resume=resume,
        quiet=quiet,
        run_config=config.model_dump(),
        diagnostics=config.diagnostics,
        run_info=run.info,
    )


def run_info(config: RunConfig, model: SequenceModel) -> RunInfo:
    """What the diagnostics' remedies need to know about the run."""
    clip = config.train.clip
    return RunInfo.from_model(
        model,
        clip_mode=clip.mode,
        clip_threshold=clip.threshold,
        spectral_radius=config.model.spectral_radius,
    )


def build_task(config: RunConfig) -> Task:
    try:
        return tasks.get(config.task.name, **{"dtype": config.model.dtype, **config.task_params})
    except ValueError as err:
        raise ConfigError(f"task.{err}") from None


def build(config: RunConfig) -> tuple[SequenceModel, Task]:
    """The model (seeded from train.seed) and the task a config describes, once the run is
    known to fit in memory (rnnlab.experiments.limits): a file the task reads is checked
    before it is read, the whole run's estimate before the model is built. Building the task
    allocates nothing but charlm's text; its validation set is drawn when first used."""
    check_inputs(config)
    task = build_task(config)
    check_budget(config, task)
    m = config.model
    try:
        t_max = m.t_max
        if m.init == "chrono" and t_max is None:  # chrono's T_max: the lag the task asks for
            why = " (unset, so the task's dependency length; set it)"
            t_max = check_int("t_max", task.dependency_length, T_MAX_MIN, why=why)
        model = build_model(
            {"cell": m.cell, **m.cell_options}
            | m.model_dump(include={"hidden_size", "num_layers", "dtype", "init"})
            | m.model_dump(include={"init_scale", "spectral_radius"})
            | {"t_max": t_max},
            input_size=task.input_size,
            output_size=task.output_size,
            seed=config.train.seed,
        )
    except ValueError as err:
        raise ConfigError(f"model.{err}") from None
    return model, task
