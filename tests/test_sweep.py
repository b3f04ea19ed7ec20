"""Sweep files and the commands around the store: grids, bad input, run, ls, show, export."""

from __future__ import annotations

import csv
import hashlib
import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.experiments.config import ConfigError
from rnnlab.experiments.prepared import validate
from rnnlab.experiments.sweep import expand, load_sweep

EXAMPLES = Path(__file__).parent.parent / "examples"

BASE = """
[model]
hidden_size = 4

[task]
name = "adding"
T = 5
val_size = 50

[train]
batch_size = 8
steps = 20
eval_every = 10
checkpoint_every = 5
"""


def sweep_data(sweep: str, base: str = BASE) -> dict:
    return tomllib.loads(base + "\n[sweep]\n" + sweep)


def test_the_grid_is_the_product_in_file_order_minus_exclusions():
    grid = expand(
        sweep_data(
            '"model.cell" = ["rnn", "lstm", "gru"]\n'
            "train.seed = [0, 1]\n"  # the nested spelling works too
            'exclude = [{ "model.cell" = "gru", "train.seed" = 1 }]'
        )
    )
    assert grid.points == [
        {"model.cell": c, "train.seed": s}
        for c in ("rnn", "lstm", "gru")
        for s in (0, 1)
        if (c, s) != ("gru", 1)
    ]
    for point, config in zip(grid.points, grid.configs, strict=True):
        assert (config.model.cell, config.train.seed) == tuple(point.values())
        assert config.model.hidden_size == 4 and config.task_params["T"] == 5
        text = config.canonical_json
        assert hashlib.sha256(text.encode()).hexdigest()[:12] == config.run_id
        assert validate(json.loads(text)).run_id == config.run_id  # a worker rebuilds the same


def test_table_valued_axes_and_points_that_give_the_same_config_run_once():
    grid = expand(
        sweep_data(
            '"train.clip" = [{ mode = "none" }, { mode = "norm", threshold = 1.0 }]\n'
            '"model.nonlinearity" = ["tanh", "relu"]\n'
            'exclude = [{ "train.clip" = { mode = "none" }, "model.nonlinearity" = "relu" }]'
        )
    )
    assert [c.train.clip.mode for c in grid.configs] == ["none", "norm", "norm"]
    same = expand(sweep_data('"train.lr" = [1, 1.0, 2.0]'))  # pydantic stores 1 as 1.0
    assert len(same.configs) == 2  # one config, one run id, one run


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ('"train.lrate" = [1, 2]', "sweep.train.lrate: unknown key; expected one of optimizer, lr"),
        ('"model.cel" = ["rnn"]', "sweep.model.cel: unknown key; expected one of cell, hidden"),
        ('"train.clip.modes" = ["norm"]', "sweep.train.clip.modes: unknown key; expected one of"),
        ('"task.length" = [5]', "sweep.task.length: unknown key; expected one of T, dtype, name"),
        ('"model" = [1]', "sweep.model: got a whole section"),
        ('"train.lr.x" = [1]', "sweep.train.lr.x: unknown key; train.lr has no fields below it"),
        ('"train.seed" = 3', "sweep.train.seed: got 3; expected a non-empty list of values"),
        ('"train.seed" = []', "sweep.train.seed: got []; expected a non-empty list"),
        ('"train.seed" = [1, 1]', "sweep.train.seed: got [1, 1]; expected distinct values"),
        ('"task.T" = [5, 0]', "task.T: got 0; expected an integer >= 2"),
        ('"model.cell" = ["rnn", "transformer"]', "model.cell: got 'transformer'; expected one of"),
        ('"train.seed" = [0]\nexclude = [{ seed = 0 }]', "sweep.exclude: got key 'seed'"),
        ('"train.seed" = [0]\nexclude = [{ "train.seed" = 2 }]', "sweep.exclude.train.seed: got 2"),
        ('"train.seed" = [0]\nexclude = [{ "train.seed" = 0 }]', "excludes every point"),
    ],
)
def test_bad_sweeps_are_one_line_errors(sweep, message):
    with pytest.raises(ConfigError, match=None) as err:
        expand(sweep_data(sweep))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_point_error_names_the_point():
    with pytest.raises(ConfigError) as err:
        expand(sweep_data('"model.cell" = ["rnn"]\n"task.T" = [5, 0]'))
    assert str(err.value).endswith("(in sweep point model.cell='rnn', task.T=0)")


def test_without_a_sweep_table():
    with pytest.raises(ConfigError, match=r"sweep: missing; expected a \[sweep\] table"):
        expand(tomllib.loads(BASE))


@pytest.mark.parametrize(
    ("command", "base", "sweep", "message"),
    [
        ("sweep", BASE + "colour = 1\n", '"train.seed" = [0]', "train.colour: unknown key"),
        (
            "sweep",
            BASE.replace("steps = 20", 'steps = "20"'),
            '"train.seed" = [0]',
            "train.steps: got '20'; expected a valid integer",
        ),
        ("sweep", BASE, '"task.T" = [5, 0]', "task.T: got 0; expected an integer >= 2"),
        ("sweep", BASE, '"model.cell" = ["rnn", "cnn"]', "model.cell: got 'cnn'; expected one of"),
        ("sweep", BASE, '"train.lrate" = [0.1]', "sweep.train.lrate: unknown key"),
        ("run", BASE + "colour = 1\n", None, "train.colour: unknown key"),
        ("run", BASE.replace("steps = 20", 'steps = "20"'), None, "train.steps: got '20'"),
        ("run", BASE.replace("T = 5", "T = 0"), None, "task.T: got 0; expected an integer >= 2"),
        ("run", BASE.replace("hidden_size = 4", 'cell = "cnn"'), None, "model.cell: got 'cnn'"),
    ],
)
def test_bad_configs_exit_2_with_one_line_and_write_nothing(
    tmp_path, command, base, sweep, message
):
    path = tmp_path / "config.toml"
    path.write_text(base + (f"\n[sweep]\n{sweep}\n" if sweep else ""))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [command, str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert message in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers: got 0; expected an integer >= 1"),
        (["--address", "auto"], "--address: got 'auto'; expected it only with --executor ray"),
    ],
)
def test_bad_executor_options_exit_2(tmp_path, args, message):
    path = tmp_path / "sweep.toml"
    path.write_text(BASE + '\n[sweep]\n"train.seed" = [0]\n')
    result = CliRunner().invoke(cli, ["sweep", str(path), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "o").exists()


def test_run_records_once_and_ls_show_export_read_the_store(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(BASE)
    out = tmp_path / "store"
    runner = CliRunner()
    first = runner.invoke(cli, ["run", str(path), "--out", str(out), "--quiet"])
    assert first.exit_code == 0, first.output
    run_id = validate(tomllib.loads(BASE)).run_id
    assert first.output.startswith(f"run {run_id}: done; mse ")
    assert (out / "runs" / run_id / "last.safetensors").exists()
    again = runner.invoke(cli, ["run", str(path), "--out", str(out), "--quiet"])
    assert f"run {run_id}: done (already in the store)" in again.output

    other = runner.invoke(cli, ["run", str(path), "--out", str(out), "--set", "train.seed=3"])
    assert other.exit_code == 0, other.output
    listing = runner.invoke(cli, ["ls", str(out)])
    assert listing.exit_code == 0 and run_id in listing.output
    assert "train.seed" in listing.output  # the field that varies gets a column
    only = runner.invoke(cli, ["ls", str(out), "--where", "train.seed=3"])
    assert "1 of 1 runs" in only.output and run_id not in only.output

    shown = runner.invoke(cli, ["show", run_id[:6], str(out)])
    assert shown.exit_code == 0, shown.output
    assert f"run {run_id}  done" in shown.output and "evaluations" in shown.output
    missing = runner.invoke(cli, ["show", "zzzz", str(out)])
    assert missing.exit_code == 2 and "run id: got 'zzzz'; no run" in missing.output

    table = tmp_path / "runs.csv"
    exported = runner.invoke(cli, ["export", str(out), "--csv", str(table)])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(table.open()))
    assert [r["train.seed"] for r in rows] == ["0", "3"]
    assert rows[0]["id"] == run_id and float(rows[0]["final.loss"]) > 0
    steps = tmp_path / "steps.csv"
    assert runner.invoke(cli, ["export", str(out), "--csv", str(steps), "--steps"]).exit_code == 0
    metrics = list(csv.DictReader(steps.open()))
    assert {(r["kind"], r["name"]) for r in metrics} >= {("train", "loss"), ("eval", "mse")}
    assert len([r for r in metrics if r["name"] == "loss" and r["kind"] == "train"]) == 40


def test_the_example_sweep_is_valid():
    """3 cells × 2 lengths × 2 seeds, less the GRU's second seed at both lengths: 10 runs."""
    grid = load_sweep(EXAMPLES / "sweep_adding.toml")
    points = {(c.model.cell, c.task_params["T"], c.train.seed) for c in grid.configs}
    expected = {
        (cell, T, seed)
        for cell in ("rnn", "lstm", "gru")
        for T in (10, 30)
        for seed in (0, 1)
        if not (cell == "gru" and seed == 1)
    }
    assert points == expected and len(grid.configs) == 10


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES / "reproduce").glob("*.toml")), ids=lambda p: p.stem
)
def test_every_reproduction_sweep_is_valid_and_has_its_study(path):
    """benchmarks/reproduce.py runs these and reads each store with the study of its name:
    every file must expand to valid runs, and have a study that writes its rows."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "reproduce", EXAMPLES.parent / "benchmarks" / "reproduce.py"
    )
    assert spec is not None and spec.loader is not None
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    assert path.stem in reproduce.STUDIES
    assert len(load_sweep(path).configs) > 1


def test_ctrl_c_records_nothing_as_failed_and_a_rerun_finishes(tmp_path, monkeypatch):
    """README: Ctrl-C stops the sweep and records nothing as failed; rerunning continues."""
    from rnnlab.experiments import executors
    from rnnlab.experiments.executors import InlineExecutor
    from rnnlab.experiments.store import Store
    from rnnlab.experiments.sweep import run_sweep
    from rnnlab.train import loop

    grid = expand(
        {
            "task": {"name": "adding", "T": 5, "val_size": 8},
            "model": {"hidden_size": 4},
            "train": {"steps": 4, "batch_size": 4, "eval_every": 2},
            "sweep": {"train.seed": [0, 1, 2]},
        }
    )
    real_fit, calls = loop.fit, []

    def interrupted_second(*args, **kwargs):  # Ctrl-C in the middle of the second run
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr("rnnlab.experiments.prepared.fit", interrupted_second)
    with Store(tmp_path, write=True) as store, pytest.raises(KeyboardInterrupt):
        run_sweep(grid.configs, store, InlineExecutor(quiet=True))
    with Store(tmp_path) as store:
        statuses = [store.get(c.run_id).status for c in grid.configs]
    assert statuses[0] == "done" and "failed" not in statuses
    monkeypatch.setattr("rnnlab.experiments.prepared.fit", real_fit)
    with Store(tmp_path, write=True) as store:
        counts = run_sweep(grid.configs, store, executors.InlineExecutor(quiet=True))
        assert [store.get(c.run_id).status for c in grid.configs] == ["done"] * 3
    assert counts.failed == 0 and counts.finished_before == 1


def test_section_variants_name_their_task_and_share_no_field_with_an_axis():
    """A [task] variant may name another task (its parameters are that task's); a field set
    both by a variant and by an axis is an error, not whichever comes last."""
    base = {"task": {"name": "copy", "T": 30}, "train": {"steps": 2}}
    variants = [{"name": "copy"}, {"name": "adding", "variant": "hochreiter1997"}]
    grid = expand(base | {"sweep": {"task": variants}})
    assert [c.task.name for c in grid.configs] == ["copy", "adding"]
    assert grid.configs[1].task_params["variant"] == "hochreiter1997"
    clash = {"model": [{"cell": "lstm"}], "model.cell": ["rnn", "gru"]}
    with pytest.raises(ConfigError, match=r"^sweep\.model: sets cell, which the axis model\.cell"):
        expand(base | {"sweep": clash})
