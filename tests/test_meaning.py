"""Tests of what a result means to its user: the best checkpoint is the one with the lowest
validation loss; a diverged run keeps exactly the params of the step before; the phase
diagram aggregates several seeds per cell, some solved and some not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnnlab.engine.model import build as build_model
from rnnlab.experiments.prepared import prepare, train, validate
from rnnlab.tasks import get
from rnnlab.train import TrainConfig, fit, load_checkpoint

from conftest import need


def test_best_checkpoint_holds_the_lowest_validation_loss(tmp_path):
    """A noisy run (a large SGD step) whose validation loss goes down and up again: best
    is the evaluation with the lowest loss, not the last one, and its params give that loss."""
    task = get("adding", T=10, val_size=256, dtype="float64")
    model = build_model(
        {"cell": "rnn", "input_size": 2, "hidden_size": 8, "output_size": 1, "dtype": "float64"},
        seed=0,
    )
    config = TrainConfig(optimizer="sgd", lr=0.3, steps=60, eval_every=5, batch_size=8)
    history = fit(model, task, config, out=tmp_path, quiet=True, diagnostics=None)
    losses = {int(e["step"]): e["loss"] for e in history.evals}
    best_step = min(losses, key=losses.__getitem__)
    assert best_step != max(losses)  # not simply the last evaluation: the choice matters
    best = load_checkpoint(tmp_path / "best.safetensors")
    assert best.step == best_step
    assert float(best.metadata["metric"]) == losses[best_step]
    X, Y, mask = task.validation
    model.set_params(best.params)
    o, _ = model.forward(X)
    assert task.metrics(o, Y, mask)["loss"] == pytest.approx(losses[best_step], rel=1e-12)
    assert load_checkpoint(tmp_path / "last.safetensors").step == 60


# A tanh RNN with W orthogonal × 2, by plain SGD (lr 0.3) without clipping: the loss
# overflows at step 26, after many finite steps (so k − 1 and k − 2 differ).
BLOWS_UP = {
    "model": {"cell": "rnn", "hidden_size": 16, "init": "orthogonal", "spectral_radius": 2.0},
    "task": {"name": "adding", "T": 20},
    "train": {"optimizer": "sgd", "lr": 0.3, "steps": 60, "eval_every": 10},
    "diagnostics": {"every": 0},
}


def test_a_diverged_run_keeps_the_params_of_the_step_before(tmp_path):
    """Diverged at step k (steps count from 0: step k's loss or gradient is not finite): the
    params kept, in memory and in last.safetensors, are bit for bit those that step k − 1's
    update produced, the params a run of k steps (0 … k − 1) ends with; not those of the
    step before that (the last finite update is kept, not dropped)."""
    history = train(prepare(validate(BLOWS_UP)), tmp_path / "diverged", quiet=True)
    assert history.status == "diverged"
    k = history.diverged_at
    assert k is not None and k >= 10
    assert history.steps[-1]["step"] == k and not np.isfinite(history.steps[-1]["loss"])
    assert history.steps[-2]["step"] == k - 1 and np.isfinite(history.steps[-2]["loss"])
    kept = load_checkpoint(tmp_path / "diverged" / "last.safetensors")

    def stopped_after(steps: int):
        config = validate(BLOWS_UP | {"train": BLOWS_UP["train"] | {"steps": steps}})
        short = train(prepare(config), tmp_path / f"steps-{steps}", quiet=True)
        assert short.status == "done" and len(short.steps) == steps
        assert short.steps[-1]["step"] == steps - 1
        return load_checkpoint(tmp_path / f"steps-{steps}" / "last.safetensors").params

    reference = stopped_after(k)
    assert set(kept.params) == set(reference)
    for name, v in reference.items():
        assert np.all(np.isfinite(v))
        np.testing.assert_array_equal(kept.params[name], v, err_msg=name)
    older = stopped_after(k - 1)
    # (U, W, b have stopped moving: every unit is saturated; V and c still move)
    assert not np.array_equal(older["V"], reference["V"])


def _run(cell: str, T: int, seed: int, solved: bool):
    from rnnlab.report.data import RunData

    config = validate(
        {"model": {"cell": cell}, "task": {"name": "adding", "T": T}, "train": {"seed": seed}}
    ).model_dump()
    loss = 0.001 if solved else 0.17
    return RunData(
        id=f"{cell}-{T}-{seed}",
        config=config,
        status="done",
        evals=[{"step": 100.0, "loss": loss, "mse": loss, "solved": float(solved)}],
        baseline=1 / 6,
    )


def test_phase_diagram_aggregates_seeds_some_solved():
    """Three seeds per (cell, T): each square is solved seeds / seeds, as text and colour."""
    need("matplotlib")
    from rnnlab.report import plots

    solved = {  # (cell, T) -> which of seeds 0, 1, 2 solved
        ("rnn", 10): (True, False, False),
        ("rnn", 20): (False, False, False),
        ("lstm", 10): (True, True, True),
        ("lstm", 20): (True, False, True),
    }
    runs = [
        _run(cell, T, seed, s)
        for (cell, T), seeds in solved.items()
        for seed, s in enumerate(seeds)
    ]
    fig = plots.phase_diagram(runs)
    ax = fig.axes[0]
    groups = [t.get_text() for t in ax.get_yticklabels()]
    Ts = [int(t.get_text()) for t in ax.get_xticklabels()]
    assert Ts == [10, 20] and len(groups) == 2
    rows = {g: ("lstm" if "LSTM" in g else "rnn") for g in groups}
    Z = np.asarray(ax.images[0].get_array())
    texts = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }
    for i, g in enumerate(groups):
        for j, T in enumerate(Ts):
            seeds = solved[(rows[g], T)]
            assert Z[i, j] == pytest.approx(sum(seeds) / 3)
            assert texts[(i, j)] == f"{sum(seeds)}/3"
    # a diverged run counts as not solved, whatever its last evaluation says
    runs[0] = dataclasses.replace(runs[0], status="diverged")
    Z = np.asarray(plots.phase_diagram(runs).axes[0].images[0].get_array())
    assert Z[groups.index(next(g for g in groups if rows[g] == "rnn")), 0] == 0
