"""A run's config: one TOML file in sections [model], [task], [train]; its hash is the run id.

    [model]  cell, hidden_size, num_layers, init, init_scale, spectral_radius, t_max
             (init "chrono"; default: the task's dependency length), dtype, and the
             cell's own options (rnn: nonlinearity; lstm: forget_bias; indrnn:
             nonlinearity, recurrent_max)
    [task]   name, then that task's own parameters (T, variant, path, seed, ...)
    [train]  see rnnlab.train.TrainConfig
    [diagnostics]  every (default: ten diagnoses per run; 0: off), probe_size, jacobians

This module is the schema: `parse` checks what pydantic can (types, ranges, known keys).
The task's parameters and the model's are checked by building them, once, in
rnnlab.experiments.prepared, which turns a RunConfig into a run. Every error is one line
naming the TOML path, the value given and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from rnnlab.engine.cells import CELLS, DEFAULT_CELL, make_cell
from rnnlab.engine.init import Init
from rnnlab.train.config import DiagnosticsConfig, Frozen, TrainConfig, format_error
from rnnlab.vocab import DType


class ConfigError(ValueError):
    """A config a user wrote wrong; the message is one line."""


# A config is at most a few levels deep (sweep -> axis -> variant -> table); deeper data is
# hostile, and the readers (tomllib, copy.deepcopy, pydantic) recurse into it.
MAX_DEPTH = 32
MAX_TOML_BYTES = 16 << 20  # a config or sweep file is kilobytes; /dev/zero is endless


def check_depth(data: Any, what: str) -> None:
    """A ConfigError, `<what> nests tables or arrays more than 32 deep`, if they do (walked
    without recursion, so any depth is safe to check)."""
    stack = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list | tuple):
            children = list(node)
        else:
            continue
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"{what} nests tables or arrays more than {MAX_DEPTH} deep; "
                f"expected at most {MAX_DEPTH} levels"
            )
        stack.extend((child, depth + 1) for child in children)


class ModelConfig(Frozen):
    """The model: `cell` (a registered kind), then the options every cell shares, then
    the cell's own options (the rnn's nonlinearity, the lstm's forget_bias, ...), which
    the cell checks and fills in with its defaults, so that a config spelling a default
    and one leaving it out are one run. t_max (init "chrono" alone) defaults to the task's
    dependency length, which only the task knows: `prepare` resolves it for the model and
    drops it from the config where it equals that default. Unset, it is not dumped, so the
    run ids of configs without it are what they were before it existed."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True, allow_inf_nan=False)
    cell: str = DEFAULT_CELL
    hidden_size: int = Field(default=64, gt=0)
    num_layers: int = Field(default=1, gt=0)
    init: Init = "pytorch"
    init_scale: float | None = Field(default=None, gt=0)
    spectral_radius: float | None = Field(default=None, gt=0)
    t_max: int | None = None  # its range is the model's to check (init.Scheme)
    dtype: DType = "float32"

    @model_validator(mode="before")
    @classmethod
    def _cell_options(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("cell", DEFAULT_CELL), str):
            return data  # pydantic says what is wrong with it
        options = {k: v for k, v in data.items() if k not in cls.model_fields}
        every = {o for c in CELLS.values() for o in c.option_names()}
        for key in options:
            if key not in every:  # no cell's option: a typo of a field, most likely
                fields = ", ".join([*cls.model_fields, *sorted(every)])
                raise ValueError(f"{key}: unknown key; expected one of {fields}")
        cell = make_cell(data.get("cell", DEFAULT_CELL), **options)  # one-line ValueErrors
        return {k: v for k, v in data.items() if k in cls.model_fields} | cell.options()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if "t_max" in data and data["t_max"] is None:  # unset: the ids from before it stay
            del data["t_max"]
        return data

    @property
    def cell_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


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
    def canonical_json(self) -> str:
        """The config with its defaults as JSON, keys sorted, no spaces: the form the store
        keeps, a worker receives and run_id hashes."""
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """The first 12 hex digits of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.canonical_json.encode()).hexdigest()[:12]

    @property
    def task_params(self) -> dict[str, Any]:
        return dict(self.task.model_extra or {})


def _parse_value(text: str) -> Any:
    """A --set value as TOML (3e-4, true, "norm", [1, 2]); a bare word stays a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise ConfigError(
            f"--set: got a value nested too deeply to read; expected at most {MAX_DEPTH} levels"
        ) from None


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


def stored(data: dict[str, Any]) -> dict[str, Any]:
    """A config as a checkpoint or a store keeps it, readable by this version: one written
    before cells owned their options carries nonlinearity and forget_bias for every cell,
    where the cells that had no such thing ignored them; they are dropped there."""
    model = data.get("model")
    if not isinstance(model, dict) or model.get("cell", DEFAULT_CELL) not in CELLS:
        return data
    owned = CELLS[model.get("cell", DEFAULT_CELL)].option_names()
    legacy = [k for k in ("nonlinearity", "forget_bias") if k in model and k not in owned]
    return data | {"model": {k: v for k, v in model.items() if k not in legacy}}


def parse(data: dict[str, Any]) -> RunConfig:
    """The RunConfig of a config's contents, as far as the schema checks it."""
    check_depth(data, "config: got data that")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_error(err, RunConfig)) from None


def read_toml(path: str | Path, argument: str) -> dict[str, Any]:
    """A TOML file's contents; a ConfigError naming `argument` if it is missing or invalid."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_TOML_BYTES + 1)  # bounded: a device or a huge file never ends
        if len(raw) > MAX_TOML_BYTES:
            raise ConfigError(
                f"{argument}: got {str(path)!r}, larger than {MAX_TOML_BYTES >> 20} MiB; "
                "expected a TOML file (a config is kilobytes)"
            )
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{argument}: got {str(path)!r}; expected an existing TOML file"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{argument}: {path} is not valid TOML ({err})") from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise ConfigError(
            f"{argument}: {path} nests tables or arrays too deeply to read; "
            f"expected at most {MAX_DEPTH} levels"
        ) from None
    check_depth(data, f"{argument}: {path}")
    return data


def read_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """The RunConfig of a TOML file with `section.key=value` overrides, parsed."""
    return parse(apply_overrides(read_toml(path, "config"), list(overrides)))
