"""fit: the exploding gradient caught, clipping taming it, truncated BPTT, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnlab
from rnnlab.tasks import get
from rnnlab.train import ClipConfig, History, TBPTTConfig, TrainConfig, fit, load_checkpoint
from rnnlab.train.tbptt import Carry, tbptt_step


def exploding_relu(seed: int = 0) -> rnnlab.RNN:
    """A ReLU RNN with W = 3·I: ‖Π J_j‖ grows like 3^lag wherever units are active."""
    return rnnlab.RNN(
        input_size=2,
        hidden_size=32,
        output_size=1,
        nonlinearity="relu",
        init="identity",
        init_scale=3.0,
        seed=seed,
    )


def test_exploding_relu_without_clipping_diverges(tmp_path):
    model = exploding_relu()
    config = TrainConfig(optimizer="sgd", lr=0.01, steps=500, eval_every=100)
    history = fit(model, get("adding", T=20), config, out=tmp_path, quiet=True)
    assert history.status == "diverged"
    step = history.diverged_at
    assert step is not None and 0 < step < 500
    assert history.steps[-1]["step"] == step and history.steps[-1]["skipped"] == 1.0
    assert history.last_finite_norm == history.steps[-2]["grad_norm"] > 1e6  # it exploded first
    assert all(np.isfinite(v).all() for v in model.params.values())  # last finite params kept
    for name in ("last.safetensors", "best.safetensors"):
        ckpt = load_checkpoint(tmp_path / name)
        assert all(np.isfinite(v).all() for v in ckpt.params.values())
    assert load_checkpoint(tmp_path / "last.safetensors").step == step
    saved = History.load(tmp_path / "history.json")
    assert saved.status == "diverged" and saved.diverged_at == step


def test_the_same_run_with_norm_clipping_stays_finite():
    model = exploding_relu()
    config = TrainConfig(
        optimizer="sgd",
        lr=0.01,
        steps=500,
        eval_every=100,
        clip=ClipConfig(mode="norm", threshold=1.0),
    )
    history = fit(model, get("adding", T=20), config, quiet=True)
    assert history.status == "done" and len(history.steps) == 500
    norms, clipped = history.series("grad_norm"), history.series("clipped_norm")
    assert np.all(np.isfinite(norms)) and norms[0] > 1e9  # the explosion is recorded...
    np.testing.assert_allclose(clipped[norms > 1], 1.0, rtol=1e-6)  # ...and clipped
    assert np.all(np.isfinite(history.series("loss")))


def test_skip_drops_nonfinite_updates_and_counts_them(tmp_path, monkeypatch):
    from rnnlab.train.checkpoint import CheckpointDir

    saved_steps = []
    save_last = CheckpointDir.save_last

    def spy(self, params, opt_state, step, *args, **kwargs):
        saved_steps.append(step)
        return save_last(self, params, opt_state, step, *args, **kwargs)

    monkeypatch.setattr(CheckpointDir, "save_last", spy)
    model = exploding_relu()
    config = TrainConfig(
        optimizer="sgd",
        lr=0.01,
        steps=30,
        eval_every=1,
        checkpoint_every=1,
        on_nonfinite="skip",
    )
    called = []
    callback = lambda step, model, history: called.append(step)  # noqa: E731
    history = fit(model, get("adding", T=20), config, [callback], out=tmp_path, quiet=True)
    assert history.status == "done"
    skipped = [int(r["step"]) + 1 for r in history.steps if r.get("skipped")]
    assert history.skipped == len(skipped) > 0
    assert all(np.isfinite(v).all() for v in model.params.values())
    # a skipped step still gets its callbacks, evaluation and checkpoint: the cadence holds
    assert called == list(range(31))
    assert [e["step"] for e in history.evals] == list(range(31))
    assert set(skipped) < set(saved_steps) and set(range(1, 31)) <= set(saved_steps)
    ckpt = load_checkpoint(tmp_path / "last.safetensors")
    assert ckpt.step == 30
    for k, v in ckpt.params.items():
        np.testing.assert_array_equal(v, model.params[k])


def test_every_step_is_recorded():
    model = rnnlab.GRU(input_size=2, hidden_size=8, output_size=1, seed=1)
    config = TrainConfig(
        steps=20,
        eval_every=10,
        schedule="cosine",
        lr=1e-2,
        clip=ClipConfig(mode="value", threshold=0.01),
    )
    history = fit(model, get("adding", T=8), config, quiet=True)
    r = history.steps[0]
    assert {"loss", "lr", "grad_norm", "clipped_norm", "update_ratio"} <= set(r)
    assert {f"grad_norm/{k}" for k in model.params} <= set(r)
    assert r["lr"] == 1e-2 and history.steps[-1]["lr"] < 1e-3  # cosine decays
    assert r["clipped_norm"] < r["grad_norm"]  # value clipping at 0.01 bites
    np.testing.assert_allclose(
        np.sqrt(sum(r[f"grad_norm/{k}"] ** 2 for k in model.params)), r["grad_norm"], rtol=1e-12
    )
    assert [e["step"] for e in history.evals] == [0, 10, 20]


class Interrupt(Exception):
    pass


def _interrupt_at(step: int):
    def callback(done, model, history):
        if done == step + 1:
            raise Interrupt

    return callback


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resume_is_bit_identical(tmp_path, dtype):
    """200 steps straight equal 100 + resume + 100, params and every metric."""
    task = get("adding", T=12, dtype=dtype)
    config = TrainConfig(steps=200, eval_every=50, checkpoint_every=100, lr=3e-3)

    def model():
        return rnnlab.LSTM(input_size=2, hidden_size=8, output_size=1, dtype=dtype, seed=3)

    straight = model()
    h_straight = fit(straight, task, config, out=tmp_path / "a", quiet=True)
    with pytest.raises(Interrupt):
        fit(model(), task, config, out=tmp_path / "b", quiet=True, callbacks=[_interrupt_at(100)])
    resumed = model()
    h_resumed = fit(resumed, task, config, out=tmp_path / "b", resume=True, quiet=True)
    for k, v in straight.params.items():
        assert resumed.params[k].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(resumed.params[k], v)
    assert json.dumps(h_resumed.to_dict()) == json.dumps(h_straight.to_dict())
    again = model()
    fit(again, task, config, quiet=True)  # same config and seed: the same run
    for k, v in straight.params.items():
        np.testing.assert_array_equal(again.params[k], v)


def test_tbptt_with_k1_equal_k2_on_one_chunk_is_full_bptt():
    task = get("charlm", T=20, dtype="float64")
    model = rnnlab.LSTM(
        input_size=task.input_size, hidden_size=6, output_size=task.output_size, dtype="float64"
    )
    X, Y, mask = task.chunk(0, 3)
    full = model.loss_and_grads(X, Y, mask=mask)
    result, _ = tbptt_step(model, Carry(h0=None), X, Y, mask, k2=20, loss="cross_entropy")
    assert result.loss == full.loss
    for k in full.grads:
        np.testing.assert_array_equal(result.grads[k], full.grads[k])


def test_tbptt_window_backpropagates_k2_steps_and_carries_the_state():
    """BPTT(k1=4, k2=10): the third update's loss is on its 4 new steps, its gradient flows
    back 10 steps into the window that starts from the carried state."""
    task = get("charlm", T=4, dtype="float64")
    model = rnnlab.RNN(
        input_size=task.input_size, hidden_size=5, output_size=task.output_size, dtype="float64"
    )
    chunks = [task.chunk(i, 2) for i in range(3)]
    carry = Carry(h0=None)
    for X, Y, mask in chunks:
        result, carry = tbptt_step(model, carry, X, Y, mask, k2=10, loss="cross_entropy")
    X_all = np.concatenate([c.X for c in chunks])  # 12 steps; the window is the last 10
    Y_all = np.concatenate([c.Y for c in chunks])
    _, h2 = model.forward(X_all[:2])
    mask = np.zeros((10, 2))
    mask[-4:] = 1
    expected = model.loss_and_grads(X_all[2:], Y_all[2:], mask=mask, h0=h2)
    assert result.loss == pytest.approx(expected.loss, rel=1e-13)
    for k in expected.grads:
        np.testing.assert_allclose(result.grads[k], expected.grads[k], rtol=1e-12, atol=1e-15)
    _, h6 = model.forward(X_all[:6])  # the next window, 4 steps later, repeats 6 of these
    np.testing.assert_allclose(carry.h0, h6, rtol=1e-13)
    np.testing.assert_array_equal(carry.X, X_all[6:])


def test_tbptt_run_resumes_bit_identically(tmp_path):
    task = get("charlm", T=10)
    config = TrainConfig(
        steps=40, eval_every=20, checkpoint_every=20, batch_size=4, tbptt=TBPTTConfig(k1=10, k2=15)
    )

    def model():
        return rnnlab.GRU(
            input_size=task.input_size, hidden_size=8, output_size=task.output_size, seed=0
        )

    straight = model()
    fit(straight, task, config, out=tmp_path / "a", quiet=True)
    with pytest.raises(Interrupt):
        fit(model(), task, config, out=tmp_path / "b", quiet=True, callbacks=[_interrupt_at(20)])
    resumed = model()
    fit(resumed, task, config, out=tmp_path / "b", resume=True, quiet=True)
    for k, v in straight.params.items():
        np.testing.assert_array_equal(resumed.params[k], v)


def test_tbptt_needs_a_stream_task_and_k1_equal_to_T():
    model = rnnlab.RNN(input_size=2, hidden_size=4, output_size=1)
    with pytest.raises(ValueError, match=r"train.tbptt: got a setting for task 'adding'"):
        fit(model, get("adding", T=10), TrainConfig(tbptt=TBPTTConfig(k1=10, k2=10)), quiet=True)
    lm = get("charlm", T=10)
    model = rnnlab.RNN(input_size=lm.input_size, hidden_size=4, output_size=lm.output_size)
    with pytest.raises(ValueError, match=r"train.tbptt.k1: got 5; expected the task's T = 10"):
        fit(model, lm, TrainConfig(tbptt=TBPTTConfig(k1=5, k2=10)), quiet=True)


def test_diagnostics_are_recorded_and_resume_exactly(tmp_path):
    from rnnlab.train import DiagnosticsConfig

    task = get("adding", T=12, dtype="float64")
    config = TrainConfig(steps=60, eval_every=30, checkpoint_every=30, lr=3e-3)
    diagnostics = DiagnosticsConfig(every=20, probe_size=8, jacobians=1)

    def run(out, interrupt=None, resume=False):
        model = rnnlab.RNN(input_size=2, hidden_size=8, output_size=1, dtype="float64", seed=3)
        cbs = [_interrupt_at(interrupt)] if interrupt else []
        return fit(model, task, config, cbs, out, resume, quiet=True, diagnostics=diagnostics)

    straight = run(tmp_path / "a")
    assert [d["step"] for d in straight.diagnostics] == [0, 20, 40, 60]  # 0: at initialisation
    assert straight.diagnostics[1]["verdict"]["history"]["steps"] == 20  # saw every norm so far
    evidence = straight.diagnostics[2]["verdict"]["evidence"]  # step 40 sees step 30's eval
    assert any(e.startswith("validation loss") and "at step 30 " in e for e in evidence)

    def fresh():
        return rnnlab.RNN(input_size=2, hidden_size=8, output_size=1, dtype="float64", seed=3)

    default = fit(fresh(), task, config, quiet=True)
    assert [d["step"] for d in default.diagnostics] == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60]
    off = fit(fresh(), task, config, quiet=True, diagnostics=None)
    assert off.diagnostics == []
    with pytest.raises(Interrupt):
        run(tmp_path / "b", interrupt=45)
    resumed = run(tmp_path / "b", resume=True)
    assert json.dumps(resumed.to_dict()) == json.dumps(straight.to_dict())


def test_a_runs_diagnoses_take_their_options_from_its_diagnostics_config():
    from rnnlab.diagnostics import DiagnosisOptions, RunInfo
    from rnnlab.train import DiagnosticsConfig, RecordDiagnostics

    task = get("adding", T=12, dtype="float64")
    model = rnnlab.RNN(input_size=2, hidden_size=8, output_size=1, dtype="float64", seed=3)
    config = TrainConfig(steps=10, clip=ClipConfig(mode="norm", threshold=1.0))
    diagnostics = DiagnosticsConfig(every=5, probe_size=4, jacobians=3)
    run = RunInfo.from_model(model, clip_mode="norm", clip_threshold=1.0)
    want = DiagnosisOptions(dependency_length=task.dependency_length, jacobian_sequences=3, run=run)
    assert diagnostics.options(task, run) == want
    record = RecordDiagnostics(model, task, config, diagnostics)
    assert record.probe.options == want and record.probe.every == 5
    history = History()
    for step in (4, 5):
        record(step, model, history)
    (d,) = history.diagnostics
    assert d["step"] == 5 and d["flow"]["ratio_lag"] == task.dependency_length
    assert len(d["jacobians"][0]["sequences"]) == 3 and d["run"]["clip_mode"] == "norm"


def test_history_truncated_to_a_step_is_the_history_of_that_step():
    """What an exact resume restores: steps, evals, skip count and the last finite norm as
    they were after `step` steps, whatever was recorded later."""
    steps = [
        {"step": 0, "grad_norm": 1.0},
        {"step": 1, "grad_norm": 2.0},
        {"step": 2, "grad_norm": float("inf"), "skipped": 1.0},
        {"step": 3, "grad_norm": 5.0},
    ]
    history = History(
        steps=steps,
        evals=[{"step": 0}, {"step": 2}, {"step": 4}],
        skipped=1,
        last_finite_norm=5.0,
    )
    at3 = history.truncate(3)
    assert at3.steps == steps[:3] and [e["step"] for e in at3.evals] == [0, 2]
    assert at3.skipped == 1 and at3.last_finite_norm == 2.0
    at0 = history.truncate(0)
    assert at0.steps == [] and at0.skipped == 0 and at0.last_finite_norm is None
