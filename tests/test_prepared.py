"""The one path from a config to a run: a config is validated once into a PreparedRun (config,
model, task, RunInfo) that training, the sweep worker, `diagnose` and `sample` all use. Each
path builds the model and the task once; training is what building then fitting was, bit for
bit; run ids and the one-line errors are what they were."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab import tasks
from rnnlab.cli.main import cli
from rnnlab.diagnostics.verdict import RunInfo
from rnnlab.engine.model import SequenceModel
from rnnlab.experiments import sweep
from rnnlab.experiments.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    parse,
    read_config,
)
from rnnlab.experiments.executors import InlineExecutor
from rnnlab.experiments.prepared import build, load_run, prepare, train, validate
from rnnlab.experiments.runner import run_one
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import expand, run_sweep
from rnnlab.train import fit

EXAMPLES = Path(__file__).parent.parent / "examples"

# diagnosed and clipped, W rescaled: RunInfo's every field reaches the remedies
DATA = {
    "model": {"hidden_size": 8, "init": "orthogonal", "spectral_radius": 1.5},
    "task": {"name": "adding", "T": 12, "val_size": 16},
    "train": {
        "steps": 20,
        "batch_size": 8,
        "eval_every": 10,
        "checkpoint_every": 10,
        "clip": {"mode": "norm", "threshold": 1.0},
    },
    "diagnostics": {"every": 10, "probe_size": 8, "jacobians": 1},
}
TOML = """
[model]
hidden_size = 8
[task]
name = "adding"
T = 12
val_size = 16
[train]
steps = 4
batch_size = 8
eval_every = 2
[diagnostics]
every = 2
probe_size = 8
"""


@pytest.fixture
def builds(monkeypatch) -> Counter:
    """How many tasks and models get built, whichever path builds them."""
    counts: Counter = Counter()
    get = tasks.get

    def counted_get(*args, **kwargs):
        counts["task"] += 1
        return get(*args, **kwargs)

    monkeypatch.setattr(tasks, "get", counted_get)
    init = SequenceModel.__init__

    def counted_init(self, *args, **kwargs):
        counts["model"] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(SequenceModel, "__init__", counted_init)
    return counts


def test_run_ids_are_pinned():
    """A run id changes only on purpose (README says when it last did: [model] took each
    cell's own options, so an RNN's config no longer carries the LSTM's forget_bias)."""
    config = RunConfig()
    assert config.run_id == "aca54d359c66"
    assert config.canonical_json == json.dumps(
        config.model_dump(), sort_keys=True, separators=(",", ":")
    )
    assert hashlib.sha256(config.canonical_json.encode()).hexdigest()[:12] == config.run_id
    examples = {
        "adding": "2d50f3787b91",
        "charlm": "7ae28e5659e4",
        "copy": "f5e0ed183e58",
        "temporal_order": "3d34d17d9341",
    }
    assert {name: read_config(EXAMPLES / f"{name}.toml").run_id for name in examples} == examples


def test_the_worker_builds_the_run_once_and_does_not_validate_it_again(tmp_path, builds):
    config = parse(DATA)  # the schema alone builds nothing
    assert builds == {}
    result = json.loads(run_one(config.canonical_json, str(tmp_path / "run")))
    assert result["status"] == "done"
    assert builds == {"task": 1, "model": 1}


def test_a_sweep_builds_each_point_once_to_validate_and_once_to_train(tmp_path, builds):
    grid = expand(DATA | {"sweep": {"train.seed": [0, 1, 2]}})
    assert builds == {"task": 3, "model": 3}  # every point checked before anything runs
    with Store(tmp_path / "store", write=True) as store:
        counts = run_sweep(grid.configs, store, InlineExecutor(quiet=True))
    assert counts.done == 3
    assert builds == {"task": 6, "model": 6}


def test_sweeping_a_task_parameter_reads_the_task_s_signature_without_building_it(builds):
    sweep._task_parameters.cache_clear()
    grid = expand(DATA | {"sweep": {"task.T": [10, 12]}})
    assert len(grid.configs) == 2 and builds == {"task": 2, "model": 2}


def test_rnnlab_run_builds_once_to_validate_and_once_to_train(tmp_path, builds):
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    out = tmp_path / "store"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert builds == {"task": 2, "model": 2}  # was 4 tasks and 3 models


def test_diagnose_builds_a_config_or_a_checkpoint_once(tmp_path, builds):
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    result = CliRunner().invoke(cli, ["diagnose", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert builds == {"task": 1, "model": 1}
    train(load_run(path), tmp_path / "run", quiet=True)
    builds.clear()
    result = CliRunner().invoke(cli, ["diagnose", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    assert builds == {"task": 1, "model": 1}


def test_sample_builds_the_checkpoint_s_run_once(tmp_path, builds):
    data = {"model": {"cell": "gru", "hidden_size": 8}, "task": {"name": "charlm", "T": 20}}
    train(prepare(parse(data | {"train": {"steps": 2}})), tmp_path / "run", quiet=True)
    builds.clear()
    result = CliRunner().invoke(cli, ["sample", str(tmp_path / "run"), "--length", "5"])
    assert result.exit_code == 0, result.output
    assert builds == {"task": 1, "model": 1}


def test_a_prepared_run_trains_bit_for_bit_as_building_and_fitting_did(tmp_path):
    config = validate(DATA)
    # the path train() took before: build again and fit, RunInfo read off the model
    model, task = build(config)
    old = fit(
        model,
        task,
        config.train,
        out=tmp_path / "old",
        quiet=True,
        run_config=config.model_dump(),
        diagnostics=config.diagnostics,
    )
    run = prepare(config)
    clip = config.train.clip
    assert run.info == RunInfo.from_model(model, clip_mode=clip.mode, clip_threshold=clip.threshold)
    assert run.info.spectral_radius == 1.5 and run.info.clip_mode == "norm"
    new = train(run, tmp_path / "new", quiet=True)
    assert new.status == old.status == "done" and len(new.diagnostics) == 3
    assert json.dumps(new.to_dict()) == json.dumps(old.to_dict())
    assert (tmp_path / "new" / "history.json").read_bytes() == (
        tmp_path / "old" / "history.json"
    ).read_bytes()
    assert run.model.params.keys() == model.params.keys()
    for name, value in model.params.items():
        np.testing.assert_array_equal(run.model.params[name], value)
    # and the worker, from the config's JSON, records that same history
    result = json.loads(run_one(config.canonical_json, str(tmp_path / "worker")))
    recorded = json.loads(json.dumps(old.to_dict()))
    for key in ("steps", "evals", "diagnostics"):
        assert result[key] == recorded[key]


def test_a_prepared_run_is_frozen_and_holds_what_was_built():
    run = prepare(parse(DATA))
    assert run.config == parse(DATA) and run.task.name == "adding" and run.model.hidden_size == 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.model = None  # type: ignore[misc]


BAD = {
    "train.lr: got -1.0; expected greater than 0": ["train.lr=-1.0"],
    "train.clip.mode: got 'norms'; expected one of 'norm', 'value' or 'none'": [
        "train.clip.mode='norms'"
    ],
    "task.T: got 0; expected an integer >= 2 (one marker in each half)": ["task.T=0"],
    "task.length: not a parameter of task 'adding'; expected one of T, variant, seed, "
    "val_size, dtype": ["task.length=3"],
    "model.forget_bias: got 1.0, but only an LSTM has it; the RNN's options are nonlinearity": [
        "model.forget_bias=1.0"
    ],
}


@pytest.mark.parametrize(("message", "overrides"), BAD.items())
def test_a_bad_config_gets_the_same_one_line_error_on_every_path(tmp_path, message, overrides):
    data = apply_overrides({}, overrides)
    with pytest.raises(ConfigError) as err:
        validate(data)
    assert str(err.value) == message
    path = tmp_path / "empty.toml"
    path.write_text("")
    with pytest.raises(ConfigError) as err:
        load_run(path, overrides)
    assert str(err.value) == message
    # a worker handed a config no driver checked fails that run with the same line
    result = json.loads(run_one(json.dumps(data), str(tmp_path / "never")))
    assert (result["status"], result["error"]) == ("failed", f"ConfigError: {message}")
    assert not (tmp_path / "never").exists()
    sets = [arg for item in overrides for arg in ("--set", item)]
    for command in (["run", str(path), "--out", str(tmp_path / "store")], ["diagnose", str(path)]):
        result = CliRunner().invoke(cli, [*command, *sets])
        assert (result.exit_code, result.output) == (2, f"error: {message}\n")
    assert not (tmp_path / "store").exists()


def test_train_of_a_config_still_works_with_a_deprecation_warning(tmp_path):
    """The old form train(config, out) -> (history, task) warns and trains the same run."""
    config = parse(DATA)
    with pytest.warns(DeprecationWarning, match=r"train\(config, \.\.\.\) is deprecated"):
        old, task = train(config, tmp_path / "old", quiet=True)
    new = train(prepare(config), tmp_path / "new", quiet=True)
    assert task.name == prepare(config).task.name
    assert [s["loss"] for s in old.steps] == [s["loss"] for s in new.steps]
    assert old.evals == new.evals
