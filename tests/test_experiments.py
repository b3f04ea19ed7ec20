"""Sweeps end to end: local and Ray agree bit for bit, SIGKILL at any moment loses nothing,
a failing run is recorded and the others finish."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.experiments.executors import LocalExecutor, RayExecutor
from rnnlab.experiments.prepared import build, validate
from rnnlab.experiments.runner import run_one
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import load_sweep, run_sweep
from rnnlab.train import fit

from conftest import deadline, need

# 12 tiny runs; with sgd at lr 100 every cell diverges within a few steps, so the store also
# holds diverged runs and the NaN and inf of the steps where they diverged. Diagnostics
# snapshots every 10 steps go into the store too.
SWEEP = """
[model]
hidden_size = 4

[task]
name = "adding"
T = 5
val_size = 50

[train]
optimizer = "sgd"
batch_size = 8
steps = 20
eval_every = 10
checkpoint_every = 5

[diagnostics]
every = 10
probe_size = 8

[sweep]
"model.cell" = ["rnn", "lstm", "gru"]
"train.seed" = [0, 1]
"train.lr" = [0.05, 100.0]
"""
STEPS = 20


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "sweep.toml"
    path.write_text(SWEEP)
    return path


def dump(folder: Path) -> dict:
    """Everything a run's results are, without timestamps or attempt counts; floats as hex,
    so the comparison is bit for bit."""
    db = sqlite3.connect(f"file:{folder / 'runs.db'}?mode=ro", uri=True)

    def exact(row: tuple) -> tuple:
        return tuple(v.hex() if isinstance(v, float) else v for v in row)

    runs = db.execute(
        "SELECT id, config, status, error, steps_done, diverged_at, skipped, final FROM runs "
        "ORDER BY id"
    ).fetchall()
    final = [(r[0], {k: v.hex() for k, v in json.loads(r[-1]).items()}) for r in runs]
    metrics = db.execute("SELECT * FROM metrics ORDER BY run_id, kind, name, step").fetchall()
    diagnostics = db.execute("SELECT * FROM diagnostics ORDER BY run_id, step").fetchall()
    db.close()
    return {
        "runs": [r[:-1] for r in runs],
        "final": final,
        "metrics": [exact(m) for m in metrics],
        "diagnostics": diagnostics,
    }


@pytest.fixture(scope="module")
def reference(sweep_file, tmp_path_factory) -> Path:
    """The uninterrupted sweep: a local pool of 2 workers."""
    folder = tmp_path_factory.mktemp("reference")
    grid = load_sweep(sweep_file)
    executor = LocalExecutor(2)
    try:
        with Store(folder, write=True) as store:
            counts = run_sweep(grid.configs, store, executor)
    finally:
        executor.close()
    assert (counts.done, counts.diverged, counts.failed) == (6, 6, 0)
    return folder


def test_the_reference_store_holds_every_run_once(reference):
    with Store(reference) as store:
        runs = store.runs()
        assert len(runs) == 12 and all(r.attempts == 1 for r in runs)
        for run in runs:
            losses = store.metrics(run.id)["loss"]
            if run.status == "done":
                assert [s for s, _ in losses] == list(range(STEPS)) and run.steps_done == STEPS
                assert [s for s, _ in store.diagnostics(run.id)] == [0, 10, 20]
            else:  # the non-finite step is recorded, and where it happened
                assert run.diverged_at == run.steps_done == losses[-1][0] < STEPS
            assert store.metrics(run.id, "eval")["loss"][0][0] == 0


def test_a_run_is_a_pure_function_of_its_config(tmp_path, reference):
    with Store(reference) as store:
        run = store.runs(status=["done"])[0]
        stored = store.metrics(run.id)
    result = json.loads(run_one(json.dumps(run.config), str(tmp_path / "again")))
    assert result["status"] == "done" and result["final"] == run.final
    assert [r["loss"] for r in result["steps"]] == [v for _, v in stored["loss"]]


def test_run_one_resumes_from_the_checkpoint_in_its_folder(tmp_path):
    config = validate(tomllib.loads(SWEEP.split("[sweep]")[0]) | {})
    text = config.canonical_json
    fresh = json.loads(run_one(text, str(tmp_path / "fresh")))

    def crash_at_7(step, model, history):  # the last checkpoint is then step 5's
        if step == 7:
            raise KeyboardInterrupt

    model, task = build(config)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            task,
            config.train,
            [crash_at_7],
            out=cut,
            run_config=config.model_dump(),
            diagnostics=config.diagnostics,
        )
    history = json.loads((cut / "history.json").read_text())
    history["steps"][2]["loss"] = 123.0  # a mark: resuming keeps steps 0-4 from the folder
    (cut / "history.json").write_text(json.dumps(history))

    resumed = json.loads(run_one(text, str(cut)))
    assert resumed["steps"][2]["loss"] == 123.0
    resumed["steps"][2]["loss"] = fresh["steps"][2]["loss"]
    assert resumed == fresh | {"seconds": resumed["seconds"]}  # the rest bit for bit


def test_a_raising_config_is_a_failed_result_with_one_line():
    config = {
        "model": {"hidden_size": 4},
        "task": {"name": "adding", "T": 5},
        "train": {"steps": 2, "tbptt": {"k1": 5, "k2": 5}},
    }
    result = json.loads(run_one(json.dumps(config), "/nonexistent/never/written"))
    assert result["status"] == "failed" and "\n" not in result["error"]
    assert result["error"].split(": ")[0] in ("ValueError", "ConfigError")
    assert "tbptt" in result["error"]


# --- executors -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ray_session():
    """One Ray instance for the whole test session: starting Ray takes seconds."""
    ray = need("ray", "pip install 'rnnlab[ray]'")
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_store_as_the_local_pool(ray_session, sweep_file, reference, tmp_path):
    executor = RayExecutor(workers=None, address=None)  # joins the session's instance
    assert executor.slots == 2
    executor.close()
    assert ray_session.is_initialized()  # not ours to shut down
    # the command line on that instance; --workers 2 keeps two runs in flight
    args = ["sweep", str(sweep_file), "--executor", "ray", "--workers", "2", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "done 6 · running 0 · failed 0 · diverged 6" in result.output
    assert dump(tmp_path) == dump(reference)


def test_a_failing_run_is_recorded_and_the_others_finish(sweep_file, reference, tmp_path):
    grid = load_sweep(sweep_file)
    broken = grid.configs[3].run_id
    (tmp_path / "runs" / broken).mkdir(parents=True)
    (tmp_path / "runs" / broken / "last.safetensors").write_bytes(b"not a checkpoint")
    executor = LocalExecutor(2)
    try:
        with Store(tmp_path, write=True) as store:
            counts = run_sweep(grid.configs, store, executor)
            assert (counts.done + counts.diverged, counts.failed) == (11, 1)
            run = store.get(broken)
            assert run.status == "failed" and run.error.startswith("CheckpointError: ")
            assert "last.safetensors" in run.error and "\n" not in run.error
            assert store.metrics(broken) == {}

            (tmp_path / "runs" / broken / "last.safetensors").unlink()
            assert run_sweep(grid.configs, store, executor).total == 0  # failed stays failed
            again = run_sweep(grid.configs, store, executor, retry_failed=True)
            assert again.total == 1 and store.get(broken).error is None
    finally:
        executor.close()
    assert dump(tmp_path) == dump(reference)


# --- crash safety --------------------------------------------------------------------------


def group_alive(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (Linux /proc; zombies do not count)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(entry.name))
    return alive


def checkpoints(out: Path) -> set[Path]:
    return set((out / "runs").glob("*/last.safetensors"))


def statuses(out: Path) -> list[str]:
    if not (out / "runs.db").exists():
        return []
    try:
        db = sqlite3.connect(f"file:{out / 'runs.db'}?mode=ro", uri=True)
        rows = [s for (s,) in db.execute("SELECT status FROM runs")]
        db.close()
        return rows
    except sqlite3.Error:  # mid-creation
        return []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigkill_at_several_points_then_rerun_equals_the_uninterrupted_sweep(
    sweep_file, reference, tmp_path
):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "rnnlab",
        "sweep",
        str(sweep_file),
        "--workers",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]
    seen = set()
    kill_points = [
        ("the store exists", lambda: (out / "runs.db").exists(), "group"),
        ("a new checkpoint", lambda: bool(checkpoints(out) - seen), "driver"),
        (
            "half the runs finished",
            lambda: sum(s in ("done", "diverged") for s in statuses(out)) >= 6,
            "group",
        ),
        ("a new checkpoint", lambda: bool(checkpoints(out) - seen), "group"),
    ]
    interrupted_mid_run = 0
    for _what, ready, target in kill_points:
        seen = checkpoints(out)
        proc = subprocess.Popen(
            command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        until = time.monotonic() + 120
        while not ready() and proc.poll() is None and time.monotonic() < until:
            time.sleep(0.002)
        assert proc.poll() is None, f"the sweep ended before {_what}: {proc.stderr.read()}"
        if target == "driver":  # the workers must notice and exit by themselves
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
        until = time.monotonic() + 10
        while group_alive(proc.pid) and time.monotonic() < until:
            time.sleep(0.05)
        assert group_alive(proc.pid) == [], "a worker outlived its driver"
        with Store(out) as store:
            for run in store.runs(status=["running"]):
                ckpt = store.run_dir(run.id) / "last.safetensors"
                interrupted_mid_run += ckpt.exists()

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "already finished" in result.stdout
    assert interrupted_mid_run >= 1  # some run really did resume from a checkpoint
    assert dump(out) == dump(reference)
    with Store(out) as store:
        assert max(r.attempts for r in store.runs()) >= 2


def test_a_worker_that_dies_fails_its_run_only(tmp_path, reference):
    with Store(reference) as store:
        run = store.runs(status=["done"])[0]
    config = json.dumps(run.config)
    slow = json.dumps(run.config | {"train": run.config["train"] | {"steps": 100_000}})
    executor = LocalExecutor(2)
    try:
        executor.submit("slow", slow, str(tmp_path / "a"))
        executor.submit(run.id, config, str(tmp_path / "b"))
        until = time.monotonic() + 120
        while not (tmp_path / "a" / "last.safetensors").exists():
            assert time.monotonic() < until, "the slow run wrote no checkpoint in 120 s"
            time.sleep(0.01)
        (victim,) = [w for w, run_id in executor._busy.items() if run_id == "slow"]
        os.kill(victim.process.pid, signal.SIGKILL)  # as the out-of-memory killer would
        with deadline(120, "result from the pool"):
            results = dict(executor.next_result() for _ in range(2))
        assert json.loads(results["slow"]) == {
            "status": "failed",
            "error": "worker process died (exit code -9; killed or out of memory)",
        }
        assert json.loads(results[run.id])["final"] == run.final  # its neighbour finished
        executor.submit(run.id, config, str(tmp_path / "c"))  # and the pool goes on
        with deadline(120, "result from the pool"):
            assert json.loads(executor.next_result()[1])["final"] == run.final
    finally:
        executor.close()


def test_closing_the_pool_stops_running_runs_at_once(tmp_path, reference):
    with Store(reference) as store:
        run = store.runs(status=["done"])[0]
    slow = json.dumps(run.config | {"train": run.config["train"] | {"steps": 100_000}})
    executor = LocalExecutor(2)
    executor.submit("slow", slow, str(tmp_path / "a"))
    until = time.monotonic() + 120
    while not (tmp_path / "a" / "last.safetensors").exists():
        assert time.monotonic() < until, "the slow run wrote no checkpoint in 120 s"
        time.sleep(0.01)
    workers = [w.process for w in executor._busy]
    start = time.monotonic()
    executor.close()  # what Ctrl-C in the driver leads to
    assert time.monotonic() - start < 5 and not any(p.is_alive() for p in workers)
