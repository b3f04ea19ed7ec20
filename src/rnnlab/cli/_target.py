"""The run `rnnlab diagnose` and `rnnlab sample` take, named as `rnnlab report` names one.

TARGET is one of
- a run folder (runs/<id>/ of a store): its last.safetensors;
- a run id, or a unique prefix of one, in the store at --store: that run's last.safetensors;
- a checkpoint file (.safetensors);
- for `diagnose` only, a CONFIG.toml: the model it describes, at initialisation.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rnnlab.cli.run import DEFAULT_STORE
from rnnlab.experiments.store import DB_NAME, Store
from rnnlab.report.data import resolve
from rnnlab.train.checkpoint import (
    Checkpoint,
    CheckpointDir,
    CheckpointError,
    load_checkpoint,
    read_checkpoint_header,
)

if TYPE_CHECKING:
    from rnnlab.experiments.prepared import PreparedRun

# the option of every command that looks a RUN_ID up (diagnose, sample, report)
store_option = click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=DEFAULT_STORE,
    show_default=True,
    help="Where to look up a RUN_ID (the store `rnnlab train` and `run` write by default).",
)


@dataclass(frozen=True)
class Target:
    """A resolved TARGET: `path` is a checkpoint, or a config when kind is "config"."""

    kind: str  # "checkpoint" | "config"
    path: Path
    run_id: str | None = None  # when TARGET named a run (folder or id)

    def describe(self, step: int, steps: int) -> str:
        """Which checkpoint was used: `checkpoint PATH (run ID, step 300 of 3000)`."""
        of = f"run {self.run_id}, " if self.run_id else ""
        return f"checkpoint {self.path} ({of}step {step} of {steps})"


def resolve_target(target: str, store: Path, config: bool = False) -> Target:
    """What TARGET names; a ValueError (one line: the argument, what was given, what is
    allowed) if it names nothing usable. `config`: a CONFIG.toml is allowed too."""
    forms = [
        "a run folder",
        f"a run id (or a unique prefix) in the store at {str(store)!r} (see --store)",
        "a .safetensors checkpoint",
    ] + (["a CONFIG.toml"] if config else [])
    allowed = ", ".join(forms[:-1]) + " or " + forms[-1]
    path = Path(target)
    suffixes = (".safetensors", ".toml") if config else (".safetensors",)
    if path.suffix in (".safetensors", ".toml") or path.is_file():
        if not path.is_file():
            why = "no such file" if not os.path.lexists(path) else "not a regular file"
            raise ValueError(f"target: got {target!r}, {why}; expected {allowed}")
        if path.suffix not in suffixes:
            raise ValueError(f"target: got {target!r}, not a checkpoint; expected {allowed}")
        return Target("config" if path.suffix == ".toml" else "checkpoint", path)
    try:
        kind, found = resolve(target, store)
    except ValueError:
        raise ValueError(
            f"target: got {target!r}{_why(target, store)}; expected {allowed}"
        ) from None
    if kind == "sweep":
        raise ValueError(
            f"target: got {target!r}, a whole store; expected one run of it: its id with "
            f"--store {shlex.quote(target)} (see `rnnlab ls {shlex.quote(target)}`)"
        )
    if kind == "run":
        run_id, folder, status = found.name, found, ""
    else:
        with Store(found) as s:
            run = s.get(target)
        run_id, folder, status = run.id, s.run_dir(run.id), f" ({run.status})"
    last = CheckpointDir(folder).last_path
    if os.path.lexists(last) and not last.is_file():
        raise ValueError(
            f"target: got {target!r}, run {run_id}{status}, whose checkpoint {last} is not a "
            "regular file (a link to nothing, a link loop or not a file); expected a run with "
            "a checkpoint file"
        )
    if not last.is_file():
        raise ValueError(
            f"target: got {target!r}, run {run_id}{status}, which has no checkpoint ({last}); "
            "expected a run that has one (trained by rnnlab train, run or sweep)"
        )
    return Target("checkpoint", last, run_id)


def load_trained(found: Target) -> tuple[Checkpoint, PreparedRun]:
    """A checkpoint and its run, prepared from the config it holds (built once), the
    model holding the checkpoint's params.

    The checkpoint's config decides what is allocated and which files are read, and anyone
    can write one (its digest is recomputable), so it is checked as a config file is, the
    run's resource budget included (prepare), from the header alone; only then is the data
    read, and only if it holds exactly the model's params, in the model's dtype."""
    from rnnlab.experiments.config import parse, stored
    from rnnlab.experiments.prepared import prepare

    header = read_checkpoint_header(found.path)
    try:
        run = prepare(parse(stored(header.config)))  # a config from an older version too
    except ValueError as err:
        raise CheckpointError(f"{found.path}: the config it holds: {err}") from None
    ckpt = load_checkpoint(found.path, params_like=run.model.params)
    run.model.set_params(ckpt.params)
    return ckpt, run


def _why(target: str, store: Path) -> str:
    """Why `resolve` found no run: what TARGET is instead, as a clause after the value."""
    if Path(target).is_dir():
        return ", a folder without history.json"
    if "/" in target:
        return ", no such folder"
    if not (store / DB_NAME).is_file():
        return f", not a folder, and there is no store at {str(store)!r}"
    with Store(store) as s:
        matches = sum(run.id.startswith(target) for run in s.runs())
    return f", the start of {matches} run ids" if matches > 1 else ", no such folder or run id"
