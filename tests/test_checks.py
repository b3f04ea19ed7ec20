"""One validator per kind of argument, one source per vocabulary: the shared checks' messages,
and every layer reading the same names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from rnnlab import tasks
from rnnlab.checks import check_dtype, check_int, check_number, check_one_of, check_positive
from rnnlab.diagnostics import verdict
from rnnlab.engine import activations, init, losses
from rnnlab.engine.checks import check_loss, check_positive_int
from rnnlab.experiments.config import ConfigError, parse
from rnnlab.train import clip, optim, schedules
from rnnlab.train.clip import CLIP_MODES as CLIPPING_MODES
from rnnlab.train.config import ClipConfig, TrainConfig
from rnnlab.vocab import CLIP_MODES, DTYPES, ClipMode

SRC = Path(__file__).parent.parent / "src" / "rnnlab"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_int("T", 1, 2), "T: got 1; expected an integer >= 2"),
        (lambda: check_int("T", True, 0), "T: got True; expected an integer >= 0"),
        (lambda: check_int("T", 2.0, 0), "T: got 2.0; expected an integer >= 0"),
        (lambda: check_int("T", 5, 2, 4), "T: got 5; expected an integer 2 <= T <= 4"),
        (
            lambda: check_int("T", 0, 1, why=" (a lag)"),
            "T: got 0; expected an integer >= 1 (a lag)",
        ),
        (
            lambda: check_int("n", 0, 1, expected="a positive integer"),
            "n: got 0; expected a positive integer",
        ),
        (lambda: check_positive("lr", 0), "lr: got 0; expected a finite number > 0"),
        (lambda: check_positive("lr", float("inf")), "lr: got inf; expected a finite number > 0"),
        (lambda: check_positive("lr", True), "lr: got True; expected a finite number > 0"),
        (
            lambda: check_positive("x", float("nan"), finite=False),
            "x: got nan; expected a number > 0",
        ),
        (
            lambda: check_number("g", 2, lambda v: 0 < v <= 1, "a number in (0, 1]"),
            "g: got 2; expected a number in (0, 1]",
        ),
        (
            lambda: check_number("g", "1", lambda v: True, "a number"),
            "g: got '1'; expected a number",
        ),
        (
            lambda: check_one_of("mode", "max", CLIP_MODES),
            "mode: got 'max'; expected one of norm, value, none",
        ),
        (
            lambda: check_dtype("float16"),
            "dtype: got 'float16'; expected one of float32, float64",
        ),
    ],
)
def test_shared_checks_say_argument_given_and_allowed_on_one_line(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


def test_shared_checks_return_the_checked_value():
    assert check_int("n", np.int64(3), 1) == 3 and type(check_int("n", np.int64(3), 1)) is int
    assert check_positive("x", np.float32(0.5)) == 0.5
    assert check_positive("x", float("inf"), finite=False) == float("inf")
    assert check_one_of("mode", "norm", CLIP_MODES) == "norm"
    assert check_dtype(np.dtype("float64")) == np.float64 and check_dtype("float32") == np.float32


def test_no_layer_writes_its_own_integer_or_number_check():
    """`isinstance(x, bool) or not isinstance(x, ...)` lives in rnnlab/checks.py only."""
    pattern = re.compile(r"isinstance\(\w+, bool\)\s*or not isinstance\(")
    found = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "checks.py" or path.parent != SRC
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_each_vocabulary_is_one_literal_read_everywhere():
    # clip modes: below the diagnostics, which name them in RunInfo, and train, which clips
    assert get_args(ClipMode) == CLIP_MODES == CLIPPING_MODES == verdict.CLIP_MODES
    assert ClipConfig.model_fields["mode"].annotation is ClipMode
    # optimisers and schedules: train's own, typed once, the config's fields those types
    assert TrainConfig.model_fields["optimizer"].annotation is optim.OptimizerName
    assert TrainConfig.model_fields["schedule"].annotation is schedules.ScheduleName
    assert optim.OPTIMIZER_NAMES == get_args(optim.OptimizerName) == tuple(optim.OPTIMIZERS)
    assert schedules.SCHEDULES == get_args(schedules.ScheduleName)
    # the engine's: each implementation table covers its vocabulary exactly
    assert losses.LOSSES == get_args(losses.Loss) == tuple(losses.LOSS_FNS)
    assert activations.NONLINEARITIES == get_args(activations.Nonlinearity)
    assert tuple(activations.PHI) == activations.NONLINEARITIES
    for table in (activations.DPHI, activations.GAMMA):  # and the φ's some cells build in
        assert tuple(table) == activations.NONLINEARITIES + activations.BUILT_IN
    assert init.INITS == get_args(init.Init)
    assert DTYPES == ("float32", "float64")


VOCABULARY_ERRORS = {
    "mode: got 'max'; expected one of norm, value, none": lambda: clip({}, "max"),
    "clip_mode: got 'max'; expected one of norm, value, none": (
        lambda: verdict.RunInfo(cell="rnn", clip_mode="max")
    ),
    "optimizer: got 'lbfgs'; expected one of sgd, adagrad, rmsprop, adam, adamw": (
        lambda: optim.make_optimizer("lbfgs")
    ),
    "schedule: got 'linear'; expected one of constant, step, cosine": (
        lambda: schedules.make_schedule("linear", 1e-3)
    ),
    "loss: got 'hinge'; expected one of cross_entropy, mse": lambda: check_loss("hinge"),
    "nonlinearity: got 'gelu'; expected one of tanh, relu, sigmoid, identity": (
        lambda: activations.check_nonlinearity("gelu")
    ),
    "init: got 'he'; expected one of pytorch, glorot, normal, orthogonal, identity, chrono": (
        lambda: init.Scheme(init="he")  # type: ignore[arg-type]
    ),
    "hidden_size: got 0; expected a positive integer": lambda: check_positive_int("hidden_size", 0),
    "dtype: got 'float16'; expected one of float32, float64": (
        lambda: tasks.get("copy", dtype="float16")
    ),
}  # fmt: skip


@pytest.mark.parametrize(("message", "call"), VOCABULARY_ERRORS.items())
def test_each_layer_names_its_vocabulary_from_the_one_source(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


def test_a_config_field_typed_by_a_vocabulary_still_names_its_toml_path():
    with pytest.raises(ConfigError) as err:
        parse({"train": {"clip": {"mode": "norms"}}})
    assert (
        str(err.value) == "train.clip.mode: got 'norms'; expected one of 'norm', 'value' or 'none'"
    )
