"""The verdict tells the truth: a run that blew up is exploding, with its step in the evidence;
non-finite weights give a verdict and no warning; a run at its baseline is stuck, not healthy;
every shipped example records diagnoses."""

from __future__ import annotations

import json
import math
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab.diagnostics import Learning, RunInfo, diagnose, history_stats, judge
from rnnlab.experiments.prepared import build, prepare, train, validate
from rnnlab.experiments.sweep import load_sweep
from rnnlab.tasks import get
from rnnlab.train import DiagnosticsConfig, TrainConfig, fit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# A ReLU RNN whose W has spectral radius 2, trained by plain SGD without clipping: the
# forward pass grows like 2^T, the first update overshoots and the next step overflows.
BLOWS_UP = {
    "model": {"cell": "rnn", "nonlinearity": "relu", "hidden_size": 16, "spectral_radius": 2.0},
    "task": {"name": "adding", "T": 40},
    "train": {"optimizer": "sgd", "lr": 0.01, "steps": 50, "eval_every": 10},
    "diagnostics": {"every": 20, "probe_size": 8, "jacobians": 1},
}


def test_a_diverged_run_is_diagnosed_where_it_stopped(tmp_path):
    config = validate(BLOWS_UP)
    history = train(prepare(config), tmp_path / "run", quiet=True)
    assert history.status == "diverged"
    k = history.diverged_at
    stored = json.loads((tmp_path / "run" / "history.json").read_text())
    last = stored["diagnostics"][-1]
    assert last["step"] == k  # the last finite params, diagnosed at the stop, not at step 0
    assert [d["step"] for d in stored["diagnostics"]] == [s for s in (0, 20, 40) if s < k] + [k]
    verdict = last["verdict"]
    assert verdict["label"] == "exploding"
    assert f"became non-finite at step {k}" in " ".join(verdict["evidence"])
    assert verdict["history"]["first_nonfinite"] == k and verdict["history"]["nonfinite_steps"] == 1
    assert "nan" not in " ".join(verdict["evidence"])


def test_diagnose_of_a_diverged_run_folder_reads_its_history(tmp_path):
    from click.testing import CliRunner

    from rnnlab.cli.main import cli

    history = train(prepare(validate(BLOWS_UP)), tmp_path / "run", quiet=True)
    result = CliRunner().invoke(cli, ["diagnose", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout.strip().splitlines()[-1])
    k = history.diverged_at
    assert d["verdict"]["label"] == "exploding"
    assert d["verdict"]["history"]["first_nonfinite"] == k  # the same evidence as in training
    assert any(e.startswith("validation loss") for e in d["verdict"]["evidence"])


def test_a_diagnosis_of_nan_weights_warns_nothing_and_says_so():
    task = get("adding", T=20)
    model = rnnlab.RNN(input_size=2, hidden_size=8, output_size=1, nonlinearity="relu", seed=0)
    model.params = model.params | {"W_0": np.full_like(model.params["W_0"], np.nan)}
    X, Y, mask = (a[:, :4] for a in task.validation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail here
        d = diagnose(model, X, Y, mask, loss="mse", dependency_length=10, grad_norms=[1.0, np.nan])
    assert d.label == "exploding"
    text = str(d)
    assert "nan" not in text and "the weights are not finite (layer 0 W)" in text
    assert json.loads(json.dumps(d.to_dict()))["spectra"][0]["sigma_max"] is None


def test_overflowing_gradients_are_exploding_without_warnings():
    task = get("adding", T=60)
    model = rnnlab.RNN(
        input_size=2, hidden_size=16, output_size=1, nonlinearity="relu", seed=0,
        spectral_radius=8.0,
    )  # fmt: skip
    X, Y, mask = (a[:, :4] for a in task.validation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = diagnose(model, X, Y, mask, loss="mse", dependency_length=30)
    assert not math.isfinite(d.grad_norm) and d.label == "exploding"
    assert any("not finite" in e for e in d.verdict.evidence)


def test_geometric_growth_is_exploding_only_without_clipping():
    norms = 1.1 ** np.arange(100)  # ×1.1 per step: ×1.3e4 over the window
    h = history_stats(norms)
    assert h.growth == pytest.approx(1.1) and h.growth_steps == 100
    assert h.growth_from == pytest.approx(1.0) and h.growth_to == pytest.approx(1.1**99)
    bare = RunInfo(cell="rnn", nonlinearity="relu")
    clipped = RunInfo(cell="rnn", nonlinearity="relu", clip_mode="norm", clip_threshold=1.0)
    assert judge(run=bare, history=h).label == "exploding"
    tamed = judge(run=clipped, history=h)
    assert tamed.label == "healthy" and any("tamed by norm clipping" in e for e in tamed.evidence)
    flat = history_stats(1.01 ** np.arange(100))  # ×2.7 in all: not an explosion
    assert judge(run=bare, history=flat).label == "healthy"
    before = history_stats([*(2.0 ** np.arange(30)), np.nan])  # the growth before the blow-up
    assert before.first_nonfinite == 30 and before.growth == pytest.approx(2.0)
    assert "×2 per step over the last 30 finite steps" in " ".join(
        judge(run=bare, history=before).evidence
    )
    assert history_stats([1.0, 1500.0]).growth is None  # two steps are no trend
    assert judge(run=bare, history=history_stats([1.0, 1500.0])).label == "healthy"
    skipped = history_stats([np.nan, *(2.0 ** np.arange(20))])  # a skipped step, then growth
    assert skipped.growth == pytest.approx(2.0) and skipped.growth_steps == 20


def test_a_run_at_its_baseline_is_stuck_not_healthy():
    run = RunInfo(cell="rnn", nonlinearity="tanh")
    stuck = judge(run=run, learning=Learning(step=300, loss=0.164, baseline=1 / 6))
    assert stuck.label == "stuck" and stuck.remedies[0].name == "train_longer"
    assert "within 10% of the memoryless baseline 0.1667" in stuck.evidence[-1]
    above = judge(run=run, learning=Learning(step=300, loss=0.185, baseline=1 / 6))
    assert above.label == "stuck" and "not below" in above.evidence[-1]
    learned = judge(run=run, learning=Learning(step=300, loss=0.12, baseline=1 / 6))
    assert learned.label == "healthy" and "28% below" in learned.evidence[-1]
    at_init = judge(run=run, learning=Learning(step=0, loss=0.5, baseline=1 / 6))
    assert at_init.label == "healthy"  # nothing can have been learned before training


def test_a_training_run_that_learns_nothing_is_stuck(tmp_path):
    """A tanh RNN on a short adding problem with a learning rate too small to move it: the
    gradient reaches the dependency length, the loss stays at 1/6, and the verdict says so."""
    task = get("adding", T=8, dtype="float64")
    model = rnnlab.RNN(input_size=2, hidden_size=8, output_size=1, dtype="float64", seed=0)
    config = TrainConfig(steps=40, lr=1e-6, eval_every=20)
    h = fit(model, task, config, quiet=True, diagnostics=DiagnosticsConfig(every=20))
    first, last = h.diagnostics[0], h.diagnostics[-1]
    assert last["flow"]["ratio"] > 1e-3  # the gradient reaches back: not vanishing
    assert first["verdict"]["label"] == "healthy" and last["verdict"]["label"] == "stuck"


@pytest.mark.parametrize("name", ["adding", "copy", "temporal_order", "charlm"])
def test_every_example_config_records_diagnoses(name):
    data = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())
    config = validate(data)
    assert config.diagnostics.cadence(config.train.steps) > 0
    model, task = build(config)  # the probe fits the task's validation set
    assert task.validation[0].shape[1] >= 1


def test_the_example_sweep_records_diagnoses():
    grid = load_sweep(EXAMPLES / "sweep_adding.toml")
    assert all(c.diagnostics.cadence(c.train.steps) > 0 for c in grid.configs)


def test_the_default_cadence_is_ten_per_run_and_zero_turns_it_off():
    assert DiagnosticsConfig().cadence(3000) == 300
    assert DiagnosticsConfig().cadence(5) == 1
    assert DiagnosticsConfig(every=7).cadence(3000) == 7
    assert DiagnosticsConfig(every=0).cadence(3000) == 0


@pytest.mark.parametrize("name", ["adding", "copy", "temporal_order", "charlm"])
def test_every_example_report_has_data_in_every_figure(tmp_path, name):
    """What a newcomer gets from `rnnlab train examples/<name>.toml` then `rnnlab report`,
    shortened to 20 steps: every figure of the report draws data."""
    from rnnlab.experiments.prepared import load_config
    from rnnlab.report import html
    from rnnlab.report.data import load_run_folder

    short = ["train.steps=20", "train.eval_every=10", "train.checkpoint_every=10"]
    config = load_config(EXAMPLES / f"{name}.toml", short)
    train(prepare(config), tmp_path / "run", quiet=True)
    run = load_run_folder(tmp_path / "run")
    assert [d.step for d in run.diagnostics] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    for figure, (make, _) in html.run_figures(run).items():
        fig = make()
        drawn = [a for a in fig.axes if a.axison and (a.lines or a.collections or a.images)]
        assert drawn, f"{name}: the {figure} figure is empty"
