"""Progress anywhere: plain lines when stderr is not a terminal, a rich bar when it is, none
with --quiet; a charlm run's samples; training is the same with progress on or off."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.experiments.prepared import build, validate
from rnnlab.train import fit
from rnnlab.train import progress as progress_module
from rnnlab.train.progress import Progress, sweeping

ADDING = """
[model]
cell = "rnn"
hidden_size = 8

[task]
name = "adding"
T = 5
val_size = 50

[train]
batch_size = 8
steps = 12
eval_every = 6
"""

TRAIN_LINE = re.compile(
    r"^train step (\d+)/12 · loss \S+  ‖g‖ \S+ · \S+ steps/s · ETA (\d+:\d\d:\d\d|\?)$"
)
SAMPLE_LINE = re.compile(r"^train step (\d+) sample: (.+)$")


def charlm(tmp_path: Path) -> dict:
    text = tmp_path / "text.txt"
    text.write_text("To be, or not to be, that is the question:\n" * 60)
    return {
        "model": {"cell": "gru", "hidden_size": 8},
        "task": {"name": "charlm", "path": str(text), "T": 10, "val_size": 16},
        "train": {"batch_size": 4, "steps": 6, "eval_every": 3, "tbptt": {"k1": 10, "k2": 10}},
    }


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def every_update(monkeypatch):
    """A plain line at every update (the default waits INTERVAL seconds between lines)."""
    monkeypatch.setattr(progress_module, "INTERVAL", 0.0)


def lines(text: str, pattern: re.Pattern) -> list[re.Match]:
    return [m for line in text.splitlines() if (m := pattern.match(line))]


def test_train_prints_plain_lines_to_stderr_when_not_a_terminal(tmp_path, every_update):
    config = tmp_path / "run.toml"
    config.write_text(ADDING)
    result = CliRunner().invoke(cli, ["train", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    shown = lines(result.stderr, TRAIN_LINE)
    assert [int(m[1]) for m in shown][-1] == 12  # the last line is the end
    assert len(shown) >= 2 and shown[-1][2] == "0:00:00"
    assert not lines(result.stdout, TRAIN_LINE)  # stdout keeps the results only
    assert result.stdout.startswith("run ")


def test_run_prints_plain_lines_and_quiet_prints_none(tmp_path, every_update):
    config = tmp_path / "run.toml"
    config.write_text(ADDING)
    out = tmp_path / "store"
    result = CliRunner().invoke(cli, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert lines(result.stderr, TRAIN_LINE)
    for command in ("train", "run"):
        quiet = CliRunner().invoke(
            cli,
            [
                command,
                str(config),
                "--out",
                str(tmp_path / command),
                "--quiet",
                "--set",
                "train.seed=1",
            ],
        )
        assert quiet.exit_code == 0, quiet.output
        assert quiet.stderr == "" and "train step" not in quiet.output


def test_a_charlm_run_shows_a_sample_at_each_evaluation(tmp_path, every_update):
    config = tmp_path / "lm.toml"
    c = charlm(tmp_path)
    config.write_text(
        f'[model]\ncell = "gru"\nhidden_size = 8\n[task]\nname = "charlm"\npath = '
        f'"{c["task"]["path"]}"\nT = 10\nval_size = 16\n[train]\nbatch_size = 4\nsteps = 6\n'
        "eval_every = 3\n"
    )
    result = CliRunner().invoke(cli, ["train", str(config), "--out", str(tmp_path / "lm")])
    assert result.exit_code == 0, result.output
    samples = lines(result.stderr, SAMPLE_LINE)
    assert [int(m[1]) for m in samples] == [3, 6]
    assert all(len(ast.literal_eval(m[2])) == 80 for m in samples)  # the text, quoted
    quiet = CliRunner().invoke(
        cli, ["train", str(config), "--out", str(tmp_path / "lm2"), "--quiet"]
    )
    assert quiet.exit_code == 0 and "sample" not in quiet.output


@pytest.mark.parametrize("stream", ["plain", "terminal"])
def test_training_is_identical_with_progress_on_and_off(tmp_path, monkeypatch, stream):
    monkeypatch.setattr(progress_module, "INTERVAL", 0.0)
    config = validate(charlm(tmp_path))
    results = []
    for quiet in (True, False):
        err = Tty() if stream == "terminal" else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        model, task = build(config)
        history = fit(model, task, config.train, quiet=quiet)
        results.append((model.params, history.steps, history.evals, err.getvalue()))
    (params_off, steps_off, evals_off, shown_off), (params_on, steps_on, evals_on, shown) = results
    assert shown_off == ""
    assert "sample: " in shown  # the samples were drawn, above the bar or as lines
    if stream == "plain":
        assert lines(shown, re.compile(r"^train step 6/6 · loss "))
    assert params_on.keys() == params_off.keys()
    for k in params_on:
        np.testing.assert_array_equal(params_on[k], params_off[k])
    assert steps_on == steps_off and evals_on == evals_off


def test_plain_lines_wait_for_the_interval_and_end_with_one_line():
    out = io.StringIO()
    with sweeping(True, out) as bar:
        bar.interval = 1e9  # no line can be due while the test runs
        task = bar.add_task("sweep", total=None, counts="")
        for done in range(4):
            bar.update(task, total=3, completed=done, counts=f"done {done}")
        assert out.getvalue() == ""
        idle = bar.add_task("nothing to run", total=0, counts="")
        bar.update(idle, total=0, completed=0, counts="")
    (line,) = out.getvalue().splitlines()  # the end: one line, none for the empty task
    assert re.match(r"^sweep 3/3 runs · done 3 · elapsed \d+:\d\d:\d\d · ETA 0:00:00$", line)


def test_off_prints_nothing():
    out = Tty()
    with Progress((), lambda task, now: "a line", enabled=False, stream=out) as bar:
        task = bar.add_task("x", total=2)
        bar.update(task, advance=2)
        bar.log("text")
    assert out.getvalue() == ""


def test_a_piped_sweep_prints_its_lines_and_no_worker_prints_any(tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(ADDING + '\n[sweep]\n"train.seed" = [0, 1]\n')
    command = [sys.executable, "-m", "rnnlab", "sweep", str(sweep), "--workers", "2"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    sweep_line = re.compile(
        r"^sweep (\d+)/2 runs · done \d+ · running \d+ · failed 0 · diverged \d+ · "
        r"elapsed \d+:\d\d:\d\d · ETA (\d+:\d\d:\d\d|\?)$"
    )
    shown = lines(result.stderr, sweep_line)
    assert shown and shown[-1][1] == "2" and shown[-1][2] == "0:00:00"
    assert "train step" not in result.stderr + result.stdout  # workers stay quiet
    quiet = subprocess.run(
        [*command, "--out", str(tmp_path / "s2"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
