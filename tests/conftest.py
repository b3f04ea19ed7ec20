"""Shared test helpers: small float64 problems for every cell, nonlinearity and loss, and a
results store as rnnlab wrote it before snapshots were JSON."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

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


# --- the results store as rnnlab wrote it before schema version 3 -----------------------------
# Versions 1 and 2 kept each diagnostics snapshot as an .npz archive. npz_snapshot is how the
# store packed one then, and npz_record how the report read one back (snapshots.pack_arrays,
# unpack_arrays and report.data.unflatten of rnnlab before version 3, verbatim), so tests can
# build an old store and know what the old code read from it.


def _nan_for_none(value: Any) -> Any:
    if value is None:
        return math.nan
    if isinstance(value, list | tuple):
        return [_nan_for_none(v) for v in value]
    return value


def npz_snapshot(snapshot: dict[str, Any]) -> bytes:
    arrays: dict[str, np.ndarray] = {}

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}" if prefix else str(key), item)
        elif isinstance(value, list | tuple) and any(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                walk(f"{prefix}/{i}", item)
        else:
            try:
                array = np.asarray(value)
                if array.dtype == object:  # a non-finite number arrives as None (JSON-safe)
                    array = np.asarray(_nan_for_none(value), dtype=np.float64)
            except (ValueError, TypeError):  # ragged, or strings mixed with numbers
                array = np.empty(0, dtype=object)
            if array.dtype == object:
                raise ValueError(f"diagnostics: {prefix} holds mixed or ragged values")
            arrays[prefix] = array

    walk("", snapshot)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return buffer.getvalue()


def npz_record(blob: bytes) -> dict[str, Any]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    root: dict[str, Any] = {}
    for path, array in arrays.items():
        *parents, last = path.split("/")
        node = root
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = array.tolist()

    def lists(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        items = {k: lists(v) for k, v in node.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items

    return lists(root)


def old_store(src: Path, dst: Path, version: int) -> None:
    """dst/runs.db: the store at `src` as rnnlab wrote it at schema `version` (1 or 2), with
    the same runs (in the same order) and metrics, and each snapshot an .npz archive."""
    from rnnlab.experiments import store as store_module

    dst.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(dst / "runs.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for script in store_module.MIGRATIONS[:version]:  # the old versions' own SQL
        assert isinstance(script, str)
        db.executescript(script)
    db.execute(f"PRAGMA application_id = {store_module.APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {version}")
    db.execute("ATTACH DATABASE ? AS new", (str(src / "runs.db"),))
    columns = store_module.RUN_COLUMNS
    db.execute(f"INSERT INTO runs (rowid, {columns}) SELECT rowid, {columns} FROM new.runs")
    db.execute("INSERT INTO metrics SELECT * FROM new.metrics")
    rows = db.execute("SELECT run_id, step, record FROM new.diagnostics").fetchall()
    db.executemany(
        "INSERT INTO diagnostics VALUES (?, ?, ?)",
        [(run_id, step, npz_snapshot(json.loads(record))) for run_id, step, record in rows],
    )
    db.execute("DETACH DATABASE new")
    db.close()


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
