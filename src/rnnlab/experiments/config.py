"""A run's config: one TOML file in sections [model], [task], [train]; its hash is the run id.

    [model]  cell, hidden_size, num_layers, nonlinearity, init, init_scale, spectral_radius,
             forget_bias, dtype
    [task]   name, then that task's own parameters (T, variant, path, seed, ...)
    [train]  see rnnlab.train.TrainConfig
    [diagnostics]  every (default: ten diagnoses per run; 0: off), probe_size, jacobians

Every error is one line naming the TOML path, the value given and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from rnnlab import tasks
from rnnlab.diagnostics.verdict import RunInfo
from rnnlab.engine.model import MODELS, SequenceModel
from rnnlab.tasks.base import Task
from rnnlab.train.config import DiagnosticsConfig, Frozen, TrainConfig, format_error
from rnnlab.train.history import History
from rnnlab.train.loop import fit


class ConfigError(ValueError):
    """A config a user wrote wrong; the message is one line."""


class ModelConfig(Frozen):
    cell: Literal["rnn", "lstm", "gru"] = "rnn"
    hidden_size: int = Field(default=64, gt=0)
    num_layers: int = Field(default=1, gt=0)
    nonlinearity: Literal["tanh", "relu", "sigmoid", "identity"] = "tanh"
    init: Literal["pytorch", "glorot", "normal", "orthogonal", "identity"] = "pytorch"
    init_scale: float | None = Field(default=None, gt=0)
    spectral_radius: float | None = Field(default=None, gt=0)
    forget_bias: float | None = None
    dtype: Literal["float32", "float64"] = "float32"


class TaskConfig(Frozen):
    """The task's name; its other keys are the task's parameters, checked by the task."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True)
    name: str = "adding"


class RunConfig(Frozen):
    model: ModelConfig = ModelConfig()
    task: TaskConfig = TaskConfig()
    train: TrainConfig = TrainConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()

    @property
    def run_id(self) -> str:
        """The first 12 hex digits of the SHA-256 of the canonical JSON."""
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def task_params(self) -> dict[str, Any]:
        return dict(self.task.model_extra or {})


def _parse_value(text: str) -> Any:
    """A --set value as TOML (3e-4, true, "norm", [1, 2]); a bare word stays a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides to a raw config dict (validated afterwards)."""
    for item in overrides:
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or len(keys) < 2 or not all(keys):
            raise ConfigError(
                f"--set: got {item!r}; expected section.key=value, e.g. train.lr=3e-4"
            )
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set: got {item!r}; {key} is not a table")
        node[keys[-1]] = _parse_value(text.strip())
    return data


def validate(data: dict[str, Any]) -> RunConfig:
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_error(err, RunConfig)) from None
    build(config)  # the task and the model check the rest
    return config


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:  # type: ignore[assignment]
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config: got {str(path)!r}; expected an existing TOML file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"config: {path} is not valid TOML ({err})") from None
    return validate(apply_overrides(data, list(overrides)))


def build_task(config: RunConfig) -> Task:
    try:
        return tasks.get(config.task.name, **{"dtype": config.model.dtype, **config.task_params})
    except ValueError as err:
        raise ConfigError(f"task.{err}") from None


def run_info(config: RunConfig, model: SequenceModel) -> RunInfo:
    """What the diagnostics' remedies need to know about the run."""
    clip = config.train.clip
    return RunInfo.from_model(
        model,
        clip_mode=clip.mode,
        clip_threshold=clip.threshold,
        spectral_radius=config.model.spectral_radius,
    )


def train(
    config: RunConfig, out: str | Path, resume: bool = False, quiet: bool = False
) -> tuple[History, Task]:
    """Build the run a config describes and train it with its diagnostics into `out`."""
    model, task = build(config)
    history = fit(
        model,
        task,
        config.train,
        out=out,
        resume=resume,
        quiet=quiet,
        run_config=config.model_dump(),
        diagnostics=config.diagnostics,
    )
    return history, task


def build(config: RunConfig) -> tuple[SequenceModel, Task]:
    """The model (seeded from train.seed) and the task a config describes."""
    task = build_task(config)
    m = config.model
    kwargs: dict[str, Any] = dict(
        input_size=task.input_size,
        hidden_size=m.hidden_size,
        output_size=task.output_size,
        num_layers=m.num_layers,
        dtype=m.dtype,
        seed=config.train.seed,
        init=m.init,
        init_scale=m.init_scale,
        spectral_radius=m.spectral_radius,
        forget_bias=m.forget_bias,
    )
    if m.cell == "rnn":
        kwargs["nonlinearity"] = m.nonlinearity
    try:
        return MODELS[m.cell](**kwargs), task
    except ValueError as err:
        raise ConfigError(f"model.{err}") from None
