"""Shared test helpers: small float64 problems for every cell, nonlinearity and loss."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import rnnlab
from rnnlab.engine.model import SequenceModel

CELLS = [
    ("rnn", "tanh"),
    ("rnn", "relu"),
    ("rnn", "sigmoid"),
    ("rnn", "identity"),
    ("lstm", None),
    ("gru", None),
]


def make_model(cell: str, nonlinearity: str | None, **kwargs) -> SequenceModel:
    if cell == "rnn":
        return rnnlab.RNN(nonlinearity=nonlinearity or "tanh", **kwargs)
    return {"lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[cell](**kwargs)


def make_problem(rng: np.random.Generator, model: SequenceModel, T: int, B: int, loss: str):
    """X, Y, mask, h0 for `loss` in {"ce_all", "ce_last", "mse"}."""
    D, K, L, H = model.input_size, model.output_size, model.num_layers, model.hidden_size
    X = rng.standard_normal((T, B, D))
    mask = None
    if loss == "mse":
        Y = rng.standard_normal((T, B, K))
    else:
        Y = rng.integers(0, K, (T, B))
    if loss == "ce_last":
        mask = np.zeros((T, B))
        mask[-1] = 1
    h0 = rng.standard_normal((L, B, H)) * 0.5
    if len(model.cell.state_names) == 2:
        h0 = (h0, rng.standard_normal((L, B, H)) * 0.5)
    return X, Y, mask, h0


def engine_loss(loss: str) -> str:
    return "mse" if loss == "mse" else "cross_entropy"


def preactivations(model: SequenceModel, X: np.ndarray, h0) -> list[np.ndarray]:
    """a_t = U x_t + W h_{t−1} + b per layer of an RNN, recomputed from the forward trace."""
    trace = model.loss_and_grads(
        X, np.zeros(X.shape[:2], dtype=int), mask=np.zeros(X.shape[:2]), h0=h0
    ).trace
    out, inputs = [], X
    for layer, lt in enumerate(trace.layers):
        p = model.layer_params(layer)
        out.append(inputs @ p["U"].T + lt.h[:-1] @ p["W"].T + p["b"])
        inputs = lt.h[1:]
    return out


# --- optional dependencies: a skip that says why, and under CI=1 (.ci/run) a failure -------

# what `make test` installs, so its absence in CI is a broken set-up, never a reason to skip
INSTALLED_IN_CI = (
    "torch",
    "ray",
    "matplotlib",
    "latex2mathml",
    "nbclient",
    "nbformat",
    "ipykernel",
    "playwright",
)


def need(module: str, hint: str = "pip install 'rnnlab[dev]'"):
    """`import module`, or skip the test saying what is missing; under CI=1 (set by
    .ci/run) the test fails instead, so a missing dependency is never a silent skip."""
    import importlib
    import os

    import pytest

    try:
        return importlib.import_module(module)
    except ImportError as e:
        reason = f"{module} is not installed ({hint}): {e}"
        if os.environ.get("CI") == "1":
            pytest.fail(f"{reason}; CI=1, where every optional dependency must be present")
        pytest.skip(reason, allow_module_level=True)


def _missing_in_ci(report) -> str | None:
    """The skip reason of a report skipped by `pytest.importorskip` of a module CI installs,
    when CI=1; else None."""
    import os

    if os.environ.get("CI") != "1" or not report.skipped:
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if "could not import" in reason and any(f"'{m}'" in reason for m in INSTALLED_IN_CI):
        return reason
    return None


def _fail_instead(report) -> None:
    reason = _missing_in_ci(report)
    if reason is not None:
        report.outcome = "failed"
        report.longrepr = f"{reason}; CI=1, where every optional dependency must be present"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=1, a bare importorskip of a module CI installs (in a file that does not use
    `need`, such as test_report.py) fails the test instead of skipping it."""
    outcome = yield
    _fail_instead(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a module-level importorskip, which skips the whole file at collection."""
    outcome = yield
    _fail_instead(outcome.get_result())


@contextlib.contextmanager
def deadline(seconds: float, what: str):
    """Fail with `what` if the block has not finished within `seconds`: a deadline for a
    blocking call that takes no timeout of its own (a pool's next_result). SIGALRM, so the
    main thread only; the alarm is cleared on the way out."""
    import signal

    def expired(signum, frame):
        pytest.fail(f"no {what} within {seconds:g} s", pytrace=False)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
