"""The command line: demo, train (bad input, crash and resume, corrupted checkpoints), sample.

`rnnlab train` records its run in a store (`--out`, default results): runs.db, and the run's
checkpoints in runs/<id>/."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.engine.blas import num_threads
from rnnlab.experiments.demo import LAGS, story_at_init
from rnnlab.experiments.prepared import build, load_config
from rnnlab.experiments.store import Store
from rnnlab.train import fit, load_checkpoint

CONFIG = """
[model]
cell = "rnn"
hidden_size = 16

[task]
name = "adding"
T = 15

[train]
optimizer = "adam"
lr = 3e-3
batch_size = 16
steps = {steps}
eval_every = 50
checkpoint_every = {every}
clip = {{ mode = "norm", threshold = 1.0 }}
"""


def write_config(tmp_path: Path, steps: int = 40, every: int = 20) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(CONFIG.format(steps=steps, every=every))
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnlab", *args], capture_output=True, text=True, timeout=300
    )


def test_the_story_at_init_at_initialisation():
    rows = {row.name: row for row in story_at_init()}
    tanh08 = rows["tanh RNN, σ_max 0.8"]
    assert tanh08.sigma_max == pytest.approx(0.8)
    assert tanh08.bound[50] == pytest.approx(0.8**50)  # the article's 1.43e-5
    for lag in LAGS:  # the bound holds at every lag shown
        assert tanh08.profile[lag] <= tanh08.bound[lag]
    assert rows["tanh RNN, ρ(W) = 2"].profile[50] > 1e3  # exploding: it grows going back
    assert rows["LSTM"].bound is None
    assert rows["tanh RNN"].profile[100] < rows["tanh RNN"].profile[10] < 1  # vanishing


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrate=1", "train.lrate: unknown key; expected one of optimizer, lr"),
        ("train.lr='fast'", "train.lr: got 'fast'; expected a valid number"),
        ("model.hidden_size=-4", "model.hidden_size: got -4; expected greater than 0"),
        ("train.optimizer='lbfgs'", "train.optimizer: got 'lbfgs'; expected one of 'sgd'"),
        ("train.clip.mode='norms'", "train.clip.mode: got 'norms'; expected one of 'norm'"),
        ("task.T=0", "task.T: got 0; expected an integer >= 2"),
    ],
)
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, override, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["train", str(write_config(tmp_path)), "--out", str(out), "--set", override]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {result.output.strip()[7:]}"
    assert message in result.output and result.output.count("\n") == 1
    assert not out.exists()


def test_a_bad_thread_count_in_the_environment_exits_2(tmp_path):
    # diagnose computes with RNNLAB_NUM_THREADS threads (train, like run and sweep, with one)
    result = CliRunner().invoke(
        cli, ["diagnose", str(write_config(tmp_path)), "--json"], env={"RNNLAB_NUM_THREADS": "two"}
    )
    assert result.exit_code == 2
    assert result.output == "error: RNNLAB_NUM_THREADS: got 'two'; expected an integer >= 1\n"


def test_missing_config_and_no_traceback(tmp_path):
    result = run("train", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: config: got")
    assert "Traceback" not in result.stderr


def run_dir(config_path: Path, store: Path) -> Path:
    return store / "runs" / load_config(config_path).run_id


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL as soon as the first checkpoint is on disk, then the same command again: the
    run resumes from that checkpoint and ends bit for bit as an uninterrupted run. 300 steps
    (checkpoints every 10) take under a second here, so a run that finished before the kill
    landed is tried again in a fresh store (at most 5 times) rather than passing untested."""
    steps = 300
    config_path = write_config(tmp_path, steps=steps, every=10)
    for attempt in range(5):
        out = tmp_path / f"killed-{attempt}"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rnnlab",
                "train",
                str(config_path),
                "--out",
                str(out),
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        last = run_dir(config_path, out) / "last.safetensors"
        deadline = time.monotonic() + 120
        while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert last.exists(), "no checkpoint within 120 s"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at = load_checkpoint(last).step
        if killed_at < steps:
            break
    assert 0 < killed_at < steps  # really interrupted mid-run

    result = run("train", str(config_path), "--out", str(out), "--quiet")  # the same command
    assert result.returncode == 0, result.stderr
    config = load_config(config_path)
    assert result.stdout.startswith(f"run {config.run_id}: done; mse ")
    with Store(out) as store:
        recorded = store.get(config.run_id)
    assert (recorded.status, recorded.steps_done, recorded.attempts) == ("done", steps, 2)
    model, task = build(config)
    with num_threads(1):  # as every run in a store computes
        fit(model, task, config.train, quiet=True)
    resumed = load_checkpoint(last)
    assert resumed.step == steps
    for k, v in model.params.items():
        np.testing.assert_array_equal(resumed.params[k], v)


def _corrupt(path: Path, how: str) -> None:
    blob = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "header":
        blob[20:28] = b"\xff" * 8
        path.write_bytes(bytes(blob))
    elif how == "nan":  # a NaN written into the data of params/W_0 (float32)
        header_len = int.from_bytes(blob[:8], "little")
        begin, _ = json.loads(blob[8 : 8 + header_len])["params/W_0"]["data_offsets"]
        start = 8 + header_len + begin
        blob[start : start + 4] = np.array([np.nan], np.float32).tobytes()
        path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    ("how", "message"),
    [("truncated", "last.safetensors: "), ("header", "last.safetensors: "), ("nan", "NaN")],
)
def test_corrupted_checkpoints_are_one_line_errors(tmp_path, how, message):
    config_path = write_config(tmp_path, steps=20, every=10)
    out = tmp_path / "store"
    train = ["train", str(config_path), "--out", str(out), "--quiet"]
    assert CliRunner().invoke(cli, train).exit_code == 0
    run_id = load_config(config_path).run_id
    with Store(out, write=True) as store:
        store.mark_running(run_id)  # as a crash leaves it: the rerun resumes from last
    last = run_dir(config_path, out) / "last.safetensors"
    _corrupt(last, how)

    diagnosed = run("diagnose", str(last))  # the checkpoint itself: a user error
    assert diagnosed.returncode == 2, diagnosed.stderr
    assert "Traceback" not in diagnosed.stderr
    assert diagnosed.stderr.startswith("error: ") and diagnosed.stderr.count("\n") == 1
    assert message in diagnosed.stderr

    resumed = run(*train)  # resuming from it: the run fails, its error kept in the store
    assert resumed.returncode == 1, resumed.stderr
    assert "Traceback" not in resumed.stderr + resumed.stdout
    first = resumed.stdout.splitlines()[0]
    assert first.startswith(f"run {run_id}: failed; CheckpointError: ") and message in first
    with Store(out) as store:
        failed = store.get(run_id)
    assert failed.status == "failed" and failed.error == first.split("; ", 1)[1]


def test_sample_from_a_charlm_checkpoint(tmp_path):
    config_path = tmp_path / "lm.toml"
    config_path.write_text(
        '[model]\ncell = "gru"\nhidden_size = 16\n[task]\nname = "charlm"\nT = 20\n'
        "[train]\nsteps = 5\neval_every = 5\n"
    )
    out = tmp_path / "lm"
    assert (
        CliRunner().invoke(cli, ["train", str(config_path), "--out", str(out), "--quiet"]).exit_code
        == 0
    )
    last = run_dir(config_path, out) / "last.safetensors"
    args = ["sample", str(last), "--prime", "ROMEO:", "--length", "40"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    # the prime, then exactly 40 characters (any of which may be a newline), then a newline
    assert first.stdout.startswith("ROMEO:") and len(first.stdout) == 6 + 40 + 1
    assert first.stdout.endswith("\n")
    assert first.stderr == f"checkpoint {last} (step 5 of 5)\n"
    assert CliRunner().invoke(cli, args).stdout == first.stdout  # seeded: --seed 0
    other = CliRunner().invoke(cli, [*args, "--seed", "1"]).stdout
    assert len(other) == 47 and other != first.stdout  # another seed, other draws
    for length in ("0", "7"):
        text = CliRunner().invoke(cli, ["sample", str(last), "--length", length]).stdout
        assert len(text) == 1 + int(length) + 1  # the default prime is a newline
    hot, cold = (CliRunner().invoke(cli, [*args, "--temperature", t]).stdout for t in ("5", "0.05"))
    assert len(hot) == len(cold) == 47 and hot != cold


def test_diagnose_a_config_and_a_checkpoint(tmp_path):
    config_path = write_config(tmp_path, steps=20, every=10)
    result = CliRunner().invoke(cli, ["diagnose", str(config_path), "--json", "--set", "task.T=60"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["verdict"]["label"] == "vanishing"  # tanh RNN at initialisation, lag 30
    assert d["flow"]["ratio"] < 1e-3 and d["flow"]["ratio_lag"] == 30
    assert result.stderr == f"config {config_path}: the model at initialisation\n"
    out = tmp_path / "run"
    assert (
        CliRunner().invoke(cli, ["train", str(config_path), "--out", str(out), "--quiet"]).exit_code
        == 0
    )
    last = run_dir(config_path, out) / "last.safetensors"
    table = CliRunner().invoke(cli, ["diagnose", str(last)])
    assert table.exit_code == 0 and "Diagnosis:" in table.output and "remedy 1" in table.output
    assert table.output.startswith(f"checkpoint {last} (step 20 of 20)\n")
    bad = CliRunner().invoke(cli, ["diagnose", str(tmp_path / "missing.safetensors")])
    assert bad.exit_code == 2 and bad.output.startswith("error: target: got ")
