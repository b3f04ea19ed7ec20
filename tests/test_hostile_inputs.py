"""Hostile inputs and kills: a diverged run's result is a pure function of its config however
often it is killed and resumed; bad numbers and API misuse are one line before any work."""

from __future__ import annotations

import json

import numpy as np

from rnnlab.engine.model import build
from rnnlab.tasks import get
from rnnlab.train import TrainConfig, fit
from rnnlab.train.checkpoint import CheckpointDir

TASK = dict(T=60, val_size=64)


def _model(rho: float, H: int = 16):
    config = {
        "cell": "rnn",
        "nonlinearity": "relu",
        "input_size": 2,
        "hidden_size": H,
        "output_size": 1,
        "spectral_radius": rho,
    }
    return build(config, seed=0)


def _config(steps: int) -> TrainConfig:
    return TrainConfig(optimizer="sgd", lr=0.01, batch_size=4, steps=steps, eval_every=1)


def _files(root) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def test_a_diverged_run_resumed_ends_as_it_did_uninterrupted(tmp_path):
    """ReLU RNN, ρ(W) = 1.34, SGD 0.01, batch 4: it diverges a few steps in. Resuming it,
    from its final checkpoint or from one taken before the blow-up, gives the same history
    and the same divergence step: the checkpoint of a diverged run holds the RNG as it was
    when the diverging step began, and a resume of a run that ended there redoes nothing."""
    task = get("adding", **TASK)
    whole = fit(_model(1.34), task, _config(200), out=tmp_path / "whole", quiet=True)
    k = whole.diverged_at
    assert whole.status == "diverged" and k is not None and k >= 2
    last = CheckpointDir(tmp_path / "whole").load_last(
        {k: v.shape for k, v in _model(1.34).params.items()}
    )
    assert last is not None and last.step == k
    # the saved RNG draws step k's batch again: the one that blew up
    replay = np.random.default_rng()
    replay.bit_generator.state = last.rng.bit_generator.state
    X, _, _ = task.batch(replay, 4)
    again = np.random.default_rng(0)
    for _ in range(k + 1):
        X_k, _, _ = task.batch(again, 4)
    np.testing.assert_array_equal(X, X_k)

    # killed after its last save: resume ends where it ended, touching nothing
    before = _files(tmp_path / "whole")
    resumed = fit(_model(1.34), task, _config(200), out=tmp_path / "whole", resume=True, quiet=True)
    assert json.dumps(resumed.to_dict()) == json.dumps(whole.to_dict())  # nan included
    assert _files(tmp_path / "whole") == before

    # killed at step k − 1, before the blow-up: the resume diverges at k, as the whole run did
    def run(steps: int, out: str, resume: bool = False):
        # no diagnoses: one at the short run's last step would not be in the whole run
        return fit(_model(1.34), task, _config(steps), out=tmp_path / out, resume=resume,
                   quiet=True, diagnostics=None)  # fmt: skip

    run(k - 1, "part")
    part, plain = run(200, "part", resume=True), run(200, "plain")
    assert part.diverged_at == plain.diverged_at == k
    assert json.dumps(part.to_dict()) == json.dumps(plain.to_dict())


def test_a_run_non_finite_from_step_0_leaves_its_history_and_checkpoint(tmp_path):
    """ρ(W) = 10: the validation loss is already nan at initialisation, so no best checkpoint
    is written at step 0; the run still ends 'diverged' with its history and last params."""
    task = get("adding", **TASK)
    history = fit(_model(10.0, H=64), task, _config(5), out=tmp_path / "run", quiet=True)
    assert not np.isfinite(history.evals[0]["loss"])
    assert history.status == "diverged" and history.diverged_at == 0
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"history.json", "last.safetensors"}
    assert json.loads((tmp_path / "run" / "history.json").read_text())["status"] == "diverged"


def test_a_config_with_inf_or_nan_is_one_line_before_anything_runs():
    """inf and nan passed validation and then failed mid-run; now each is a ConfigError."""
    from rnnlab.experiments.config import ConfigError
    from rnnlab.experiments.prepared import validate

    cases = {
        "train.clip.threshold: got inf; expected a finite number": {
            "train": {"clip": {"mode": "norm", "threshold": float("inf")}}
        },
        "model.init_scale: got inf; expected a finite number": {
            "model": {"init_scale": float("inf")}
        },
        "model.spectral_radius: got inf; expected a finite number": {
            "model": {"spectral_radius": float("inf")}
        },
        "model.forget_bias: got nan; expected a finite number, or unset": {
            "model": {"cell": "lstm", "forget_bias": float("nan")}
        },
    }
    for message, data in cases.items():
        try:
            validate(data)
        except ConfigError as err:
            assert str(err) == message
        else:
            raise AssertionError(f"accepted {data}")


def test_adamw_takes_torch_s_default_weight_decay():
    """torch.optim.AdamW decays by 0.01 unless told otherwise; so does train.optimizer = adamw."""
    from rnnlab.experiments.prepared import validate

    assert validate({"train": {"optimizer": "adamw"}}).train.weight_decay == 0.01
    assert validate({"train": {"optimizer": "adamw", "weight_decay": 0.0}}).train.weight_decay == 0
    assert validate({"train": {"optimizer": "adam"}}).train.weight_decay == 0


def test_python_api_misuse_is_one_line():
    """Each was a ZeroDivisionError, a negative loss, numpy's or pydantic's message."""
    import pytest

    import rnnlab
    from rnnlab.train import TrainConfig

    model = rnnlab.RNN(input_size=3, hidden_size=4, output_size=3)
    ids = np.zeros((5, 2), dtype=int)
    cases = {
        r"^X: got shape \(5, 0\); expected T >= 1 and B >= 1$": lambda: model.loss(
            np.zeros((5, 0), int), np.zeros((5, 0), int)
        ),
        r"^mask: got -1\.0 at \(0, 0\); expected weights >= 0$": lambda: model.loss(
            ids, ids, mask=-np.ones((5, 2), np.float32)
        ),
        r"^seed: got -1; expected an integer >= 0$": lambda: rnnlab.RNN(
            input_size=3, hidden_size=4, output_size=3, seed=-1
        ),
        r"^init_scale: got -1; expected a finite number > 0$": lambda: rnnlab.RNN(
            input_size=3, hidden_size=4, output_size=3, init_scale=-1
        ),
        r"^lr: got 0; expected greater than 0$": lambda: TrainConfig(lr=0),
        r"^path: got bytes; expected a str or Path, or none$": lambda: get("charlm", path=b"x"),
    }
    for pattern, call in cases.items():
        with pytest.raises(ValueError, match=pattern) as info:
            call()
        assert "\n" not in str(info.value)


def test_what_a_review_found_is_one_line_or_fixed():
    """A [model] key called `name` (was a TypeError from make_cell), a typo of a shared field
    (was told 'no cell has it'), thresholds=None (the defaults, as before), a kind's name
    without its φ for the activation statistics (was silently tanh), and an LSTM's
    forget_bias attribute (gone when the cell took it over)."""
    import pytest

    import rnnlab
    from rnnlab.diagnostics import RunInfo, layer_activation_stats, remedies
    from rnnlab.experiments.config import ConfigError, parse, stored
    from rnnlab.experiments.prepared import validate

    for key in ("name", "hiden_size"):
        with pytest.raises(
            ConfigError, match=rf"^model\.{key}: unknown key; expected one of cell, hidden_size"
        ):
            validate({"model": {key: 8}})
    model = rnnlab.RNN(input_size=2, hidden_size=3, output_size=1, dtype="float64")
    X = np.random.default_rng(0).standard_normal((6, 2, 2))
    Y = np.zeros((6, 2, 1))
    d = rnnlab.diagnose(model, X, Y, loss="mse", thresholds=None)
    assert d.thresholds == rnnlab.diagnostics.Thresholds()
    trace = model.loss_and_grads(X, Y, loss="mse").trace
    layer = trace.layers[0]
    with pytest.raises(ValueError, match=r"^nonlinearity: got None; an RNN needs its φ$"):
        layer_activation_stats(0, "rnn", layer.h, layer.caches)
    relu = layer_activation_stats(0, "rnn", layer.h, layer.caches, "relu")
    assert relu.nonlinearity == "relu" and relu.dead_fraction is not None
    lstm = rnnlab.LSTM(input_size=2, hidden_size=3, output_size=1, forget_bias=1)
    assert lstm.forget_bias == 1.0
    assert "relu_identity" not in [
        r.name for r in remedies("vanishing", RunInfo(cell="indrnn"), 1.0)
    ]
    # a checkpoint's config from before cells owned their options still reads
    old = {"model": {"cell": "gru", "hidden_size": 8, "nonlinearity": "tanh", "forget_bias": None}}
    assert parse(stored(old)).model.cell_options == {}
    with pytest.raises(ConfigError, match=r"^model\.nonlinearity: got 'tanh', but only"):
        parse(old)  # a config a user writes is held to the new rule


def test_sample_length_is_bounded_before_any_step():
    """`rnnlab sample --length 10**12` was a MemoryError traceback; it is one line now."""
    import pytest

    import rnnlab

    task = get("charlm", T=5)
    model = rnnlab.LSTM(input_size=task.input_size, hidden_size=4, output_size=task.output_size)
    with pytest.raises(
        ValueError, match=r"^length: got 1000000000000; expected an integer 0 <= length <= 1000000$"
    ):
        task.sample(model, np.random.default_rng(0), "A", 1.0, 10**12)
