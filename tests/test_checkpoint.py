"""Checkpoints: bit-exact round trips, clear errors on corruption, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rnnlab.train import (
    CheckpointDir,
    CheckpointError,
    load_checkpoint,
    make_optimizer,
    save_checkpoint,
)

CONFIG = {"cell": "rnn", "hidden": 8, "lr": 0.01, "clip": {"mode": "norm", "threshold": 1.0}}


def _state(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = {
        "U": rng.standard_normal((8, 3)).astype(dtype),
        "W": rng.standard_normal((8, 8)).astype(dtype),
        "b": rng.standard_normal(8).astype(dtype),
    }
    opt = make_optimizer("adam", weight_decay=0.01)
    opt_state = opt.init(params)
    for _ in range(3):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        params, opt_state = opt.update(params, grads, opt_state, 1e-3)
    rng.standard_normal(17)  # move the rng away from its seed state
    return params, opt_state, rng


def _save(path, dtype=np.float64, **kw):
    params, opt_state, rng = _state(dtype)
    save_checkpoint(path, params, opt_state, 42, rng, CONFIG, **kw)
    return params, opt_state, rng


def _header(path: Path) -> tuple[int, dict]:
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    return n, json.loads(blob[8 : 8 + n])


def _one_line_naming(e: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    path = tmp_path / "ck.safetensors"
    params, opt_state, rng = _save(path, dtype, extra_metadata={"note": "hello"})
    ck = load_checkpoint(path, expected_shapes={k: v.shape for k, v in params.items()})
    assert ck.step == 42 and ck.config == CONFIG and ck.metadata == {"note": "hello"}
    for saved, loaded in ((params, ck.params), (opt_state, ck.opt_state)):
        assert saved.keys() == loaded.keys()
        for k in saved:
            assert loaded[k].dtype == saved[k].dtype and loaded[k].shape == saved[k].shape
            assert loaded[k].tobytes() == saved[k].tobytes()
    # the restored Generator continues exactly where the saved one stood
    assert ck.rng.bit_generator.state == rng.bit_generator.state
    np.testing.assert_array_equal(ck.rng.standard_normal(1000), rng.standard_normal(1000))
    np.testing.assert_array_equal(ck.rng.integers(0, 2**63, 100), rng.integers(0, 2**63, 100))


@pytest.mark.parametrize("bit_generator", ["PCG64DXSM", "Philox", "SFC64", "MT19937"])
def test_other_bit_generators_round_trip(tmp_path, bit_generator):
    rng = np.random.Generator(getattr(np.random, bit_generator)(7))
    rng.random(5)
    rng.integers(0, 10, dtype=np.uint32)  # leaves a buffered half-word in some generators
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {"W": np.ones(2)}, {}, 0, rng, {})
    ck = load_checkpoint(path)
    np.testing.assert_array_equal(ck.rng.random(100), rng.random(100))


def test_resumed_optimizer_continues_identically(tmp_path):
    params, opt_state, rng = _state()
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, params, opt_state, 3, rng, CONFIG)
    ck = load_checkpoint(path)
    opt = make_optimizer("adam", weight_decay=0.01)
    for _ in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        params, opt_state = opt.update(params, grads, opt_state, 1e-3)
    p2, s2, rng2 = ck.params, ck.opt_state, ck.rng
    for _ in range(5):
        grads = {k: rng2.standard_normal(v.shape) for k, v in p2.items()}
        p2, s2 = opt.update(p2, grads, s2, 1e-3)
    for k in params:
        assert params[k].tobytes() == p2[k].tobytes()


def test_layout(tmp_path):
    path = tmp_path / "ck.safetensors"
    _save(path)
    _, header = _header(path)
    meta = header.pop("__metadata__")
    assert {"format", "version", "step", "rng", "config", "sha256"} <= set(meta)
    assert meta["format"] == "rnnlab.checkpoint" and meta["step"] == "42"
    assert json.loads(meta["config"]) == CONFIG
    assert "params/W" in header and "opt/step" in header and "opt/exp_avg/W" in header
    assert header["opt/step"]["shape"] == [] and header["opt/step"]["dtype"] == "I64"


# --- the four corruptions -------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1, -200])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / "ck.safetensors"
    _save(path)
    blob = path.read_bytes()
    path.write_bytes(blob[:keep] if keep >= 0 else blob[: len(blob) + keep])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert "truncated" in _one_line_naming(e, path)


def test_flipped_header_bytes_are_caught(tmp_path):
    path = tmp_path / "ck.safetensors"
    _save(path)
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    # every byte of the length prefix, then every 3rd byte of the JSON (a full sweep passes
    # too, but takes seconds)
    for i in [*range(8), *range(8, 8 + n, 3)]:
        for mask in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= mask
            path.write_bytes(bytes(bad))
            with pytest.raises(CheckpointError) as e:
                load_checkpoint(path)
            _one_line_naming(e, path)


def test_flipped_data_bytes_are_caught(tmp_path):
    path = tmp_path / "ck.safetensors"
    _save(path)
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    for i in range(8 + n, len(blob), 37):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        path.write_bytes(bytes(bad))
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(path)
        _one_line_naming(e, path)


def test_wrong_shapes(tmp_path):
    path = tmp_path / "ck.safetensors"
    params, _, _ = _save(path)
    shapes = {k: v.shape for k, v in params.items()}
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, expected_shapes={**shapes, "W": (8, 9)})
    msg = _one_line_naming(e, path)
    assert "params/W" in msg and "(8, 8)" in msg and "(8, 9)" in msg
    with pytest.raises(CheckpointError, match="expected"):
        load_checkpoint(path, expected_shapes={**shapes, "V": (2, 8)})


def test_optimizer_state_shape_must_follow_params(tmp_path):
    path = tmp_path / "ck.safetensors"
    params, opt_state, rng = _state()
    opt_state["exp_avg/W"] = np.zeros((3, 3))
    save_checkpoint(path, params, opt_state, 1, rng, {})
    with pytest.raises(CheckpointError, match="opt/exp_avg/W"):
        load_checkpoint(path)


def test_nan_values_in_file(tmp_path):
    path = tmp_path / "ck.safetensors"
    _save(path)
    n, header = _header(path)
    start = 8 + n + header["params/W"]["data_offsets"][0]
    bad = bytearray(path.read_bytes())
    bad[start + 8 * 5 : start + 8 * 6] = np.array([np.nan]).tobytes()
    path.write_bytes(bytes(bad))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = _one_line_naming(e, path)
    assert "params/W" in msg and "1 NaN" in msg


def test_missing_file_and_foreign_file(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "nope.safetensors")
    import safetensors.numpy

    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(safetensors.numpy.save({"W": np.ones(2)}))
    with pytest.raises(CheckpointError, match="not an rnnlab checkpoint"):
        load_checkpoint(foreign)


# --- refusing to save -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_refuses_non_finite(tmp_path, bad):
    params, opt_state, rng = _state()
    path = tmp_path / "ck.safetensors"
    params["W"] = params["W"].copy()
    params["W"][0, 0] = bad
    with pytest.raises(CheckpointError, match="params\\['W'\\]"):
        save_checkpoint(path, params, opt_state, 1, rng, {})
    params, opt_state, rng = _state()
    opt_state["exp_avg/b"] = np.full(8, bad)
    with pytest.raises(CheckpointError, match="opt_state"):
        save_checkpoint(path, params, opt_state, 1, rng, {})
    assert not path.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"config": {"x": object()}}, "config"),
        ({"config": {"x": float("nan")}}, "config"),
        ({"step": -1}, "step"),
        ({"rng": np.random.RandomState(0)}, "rng"),
        ({"extra_metadata": {"step": "3"}}, "extra_metadata"),
        ({"extra_metadata": {"note": 3}}, "extra_metadata"),
    ],
)
def test_refuses_bad_arguments(tmp_path, kwargs, word):
    params, opt_state, rng = _state()
    args = {"params": params, "opt_state": opt_state, "step": 1, "rng": rng, "config": {}}
    with pytest.raises(CheckpointError, match=word):
        save_checkpoint(tmp_path / "ck.safetensors", **{**args, **kwargs})


# --- atomicity ------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", ["replace", "fsync", "write"])
def test_failed_write_keeps_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch, fail_at):
    path = tmp_path / "ck.safetensors"
    params, opt_state, rng = _save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if fail_at == "write":
        real_fdopen = os.fdopen

        class HalfWrite:  # a disk that fills up halfway through the file
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                boom()

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: HalfWrite(real_fdopen(*a, **k)))
    else:
        monkeypatch.setattr(os, fail_at, boom)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, params, opt_state, 43, rng, CONFIG)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.safetensors"]
    assert load_checkpoint(path).step == 42


def test_overwrite_replaces_whole_file(tmp_path):
    path = tmp_path / "ck.safetensors"
    _save(path)
    params, opt_state, rng = _state(seed=1)
    save_checkpoint(path, params, opt_state, 99, rng, {"other": True})
    ck = load_checkpoint(path)
    assert ck.step == 99 and ck.config == {"other": True}
    assert os.listdir(tmp_path) == ["ck.safetensors"]


# --- a run directory ------------------------------------------------------------------------


def test_checkpoint_dir_last_and_best(tmp_path):
    run = CheckpointDir(tmp_path / "run" / "checkpoints")
    assert run.load_last() is None and run.load_best() is None
    params, opt_state, rng = _state()
    run.save_last(params, opt_state, 10, rng, CONFIG)
    run.save_best(0.25, params, opt_state, 8, rng, CONFIG, extra_metadata={"metric_name": "bpc"})
    last, best = run.load_last(), run.load_best()
    assert last is not None and best is not None
    assert last.step == 10 and last.path == run.last_path
    assert best.step == 8 and float(best.metadata["metric"]) == 0.25
    assert best.metadata["metric_name"] == "bpc"
    assert sorted(os.listdir(run.root)) == ["best.safetensors", "last.safetensors"]
    with pytest.raises(CheckpointError, match="metric"):
        run.save_best(float("nan"), params, opt_state, 9, rng, CONFIG)
