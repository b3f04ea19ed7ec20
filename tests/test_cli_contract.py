"""The command line's contract as README states it, each option exercised with its output
checked for value: `ls --status/--where/--sort/--limit`, `export --status/--where`,
`diagnose --probe-size`, `run`/`sweep` exiting 1 when a run fails and `--retry-failed`
running it again, every shipped example config trained a few steps, and the torch example
run at a small size."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import math
import tomllib
from pathlib import Path

import click.testing
import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.experiments.prepared import load_config, prepare, train
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import load_sweep

from conftest import need

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

TINY = """
[model]
cell = "{cell}"
hidden_size = {H}
[task]
name = "adding"
T = 6
val_size = 32
[train]
steps = 4
eval_every = 2
checkpoint_every = 2
batch_size = 4
[diagnostics]
every = 2
probe_size = 4
jacobians = 1
"""


def invoke(*args: object) -> click.testing.Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(tmp: Path, cell: str, H: int = 4) -> Path:
    path = tmp / f"{cell}-{H}.toml"
    path.write_text(TINY.format(cell=cell, H=H))
    return path


def break_checkpoint(store: Path, config: Path) -> Path:
    """A run folder whose last.safetensors is not a checkpoint: resuming it raises, so the
    run fails (a CheckpointError, one line, in the store)."""
    folder = store / "runs" / load_config(config).run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "last.safetensors").write_bytes(b"not a checkpoint")
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """Three finished runs (rnn, lstm, gru) and one failed run in one store."""
    root = tmp_path_factory.mktemp("contract")
    out = root / "store"
    ids = {}
    for cell in ("rnn", "lstm", "gru"):
        path = write(root, cell)
        result = invoke("run", path, "--out", out, "--quiet")
        assert result.exit_code == 0, result.output
        ids[cell] = load_config(path).run_id
    failing = write(root, "rnn", H=5)
    break_checkpoint(out, failing)
    assert invoke("run", failing, "--out", out, "--quiet").exit_code == 1
    ids["failed"] = load_config(failing).run_id
    with Store(out) as s:
        final = {r.id: r.final for r in s.runs()}
    return {"out": out, "ids": ids, "final": final}


def listed(output: str, ids: dict) -> list[str]:
    """The run ids in an `ls` table, top to bottom."""
    known = set(ids.values())
    return [word for line in output.splitlines() for word in line.split() if word in known]


def test_run_exits_1_on_a_failed_run_and_retry_failed_runs_it_again(tmp_path):
    config = write(tmp_path, "gru")
    out = tmp_path / "store"
    folder = break_checkpoint(out, config)
    run_id = load_config(config).run_id
    first = invoke("run", config, "--out", out, "--quiet")
    assert first.exit_code == 1
    assert first.stdout.startswith(f"run {run_id}: failed; CheckpointError: ")
    (folder / "last.safetensors").unlink()
    again = invoke("run", config, "--out", out, "--quiet")  # failed stays failed
    assert again.exit_code == 1 and f"run {run_id}: failed (already in the store)" in again.stdout
    retried = invoke("run", config, "--out", out, "--quiet", "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.startswith(f"run {run_id}: done; mse ")
    with Store(out) as s:
        run = s.get(run_id)
    assert (run.status, run.steps_done, run.error) == ("done", 4, None)


def test_sweep_exits_1_when_a_run_fails_and_retry_failed_finishes_it(tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(TINY.format(cell="rnn", H=4) + '\n[sweep]\n"train.seed" = [0, 1]\n')
    out = tmp_path / "store"
    grid = load_sweep(sweep)
    broken = grid.configs[1].run_id
    (out / "runs" / broken).mkdir(parents=True)
    (out / "runs" / broken / "last.safetensors").write_bytes(b"not a checkpoint")
    first = invoke("sweep", sweep, "--workers", 1, "--out", out, "--quiet")
    assert first.exit_code == 1, first.output
    with Store(out) as s:
        assert {r.id: r.status for r in s.runs()} == {
            grid.configs[0].run_id: "done",
            broken: "failed",
        }
        assert s.get(broken).error.startswith("CheckpointError: ")
    (out / "runs" / broken / "last.safetensors").unlink()
    retried = invoke("sweep", sweep, "--workers", 1, "--out", out, "--quiet", "--retry-failed")
    assert retried.exit_code == 0, retried.output
    with Store(out) as s:
        assert {r.status for r in s.runs()} == {"done"}
        assert s.get(broken).attempts == 2


def test_ls_status_where_sort_and_limit(store):
    out, ids, final = store["out"], store["ids"], store["final"]
    everything = invoke("ls", out)
    assert everything.exit_code == 0 and sorted(listed(everything.stdout, ids)) == sorted(
        ids.values()
    )
    done = invoke("ls", out, "--status", "done")
    assert sorted(listed(done.stdout, ids)) == sorted(ids[c] for c in ("rnn", "lstm", "gru"))
    failed = invoke("ls", out, "--status", "failed")
    assert listed(failed.stdout, ids) == [ids["failed"]]
    both = invoke("ls", out, "--status", "failed", "--status", "done")
    assert len(listed(both.stdout, ids)) == 4
    lstm = invoke("ls", out, "--where", "model.cell=lstm")
    assert listed(lstm.stdout, ids) == [ids["lstm"]]
    by_loss = sorted((ids[c] for c in ("rnn", "lstm", "gru")), key=lambda i: final[i]["loss"])
    assert len({final[i]["loss"] for i in by_loss}) == 3  # a real order to check
    sort = invoke("ls", out, "--status", "done", "--sort", "loss")
    assert listed(sort.stdout, ids) == by_loss
    limit = invoke("ls", out, "--status", "done", "--sort", "loss", "--limit", 2)
    assert listed(limit.stdout, ids) == by_loss[:2]
    assert invoke("ls", out, "--limit", 0).exit_code == 2


def test_export_status_and_where(store, tmp_path):
    out, ids, final = store["out"], store["ids"], store["final"]
    path = tmp_path / "done.csv"
    result = invoke("export", out, "--csv", path, "--status", "done")
    assert result.exit_code == 0 and result.stdout == f"3 runs written to {path}\n"
    rows = {r["id"]: r for r in csv.DictReader(path.open())}
    assert set(rows) == {ids[c] for c in ("rnn", "lstm", "gru")}
    for run_id, row in rows.items():
        assert float(row["final.loss"]) == final[run_id]["loss"]  # repr: read back exactly
        assert row["status"] == "done" and row["steps_done"] == "4"
    assert {rows[ids[c]]["model.cell"] for c in ("rnn", "lstm", "gru")} == {"rnn", "lstm", "gru"}
    gru = tmp_path / "gru.csv"
    assert invoke("export", out, "--csv", gru, "--where", "model.cell=gru").exit_code == 0
    assert [r["id"] for r in csv.DictReader(gru.open())] == [ids["gru"]]
    failed = tmp_path / "failed.csv"
    assert invoke("export", out, "--csv", failed, "--status", "failed").exit_code == 0
    (row,) = csv.DictReader(failed.open())
    assert row["id"] == ids["failed"] and row["error"].startswith("CheckpointError: ")
    steps = tmp_path / "steps.csv"
    args = ("export", out, "--csv", steps, "--steps", "--where", "model.cell=lstm")
    assert invoke(*args).exit_code == 0
    values = list(csv.DictReader(steps.open()))
    assert {r["run_id"] for r in values} == {ids["lstm"]}
    evals = {int(r["step"]) for r in values if r["kind"] == "eval" and r["name"] == "loss"}
    assert evals == {0, 2, 4}
    train_steps = {int(r["step"]) for r in values if r["kind"] == "train" and r["name"] == "loss"}
    assert train_steps == {0, 1, 2, 3}


def test_diagnose_probe_size_sets_the_sequences_measured(store):
    run_id = store["ids"]["lstm"]

    default = invoke("diagnose", run_id, "--store", store["out"], "--json")
    three = invoke("diagnose", run_id, "--store", store["out"], "--json", "--probe-size", 3)
    assert default.exit_code == 0 and three.exit_code == 0, three.output
    d4, d3 = json.loads(default.stdout), json.loads(three.stdout)
    assert d4["batch"] == 4  # the config's diagnostics.probe_size
    assert d3["batch"] == 3
    assert d3["flow"]["ratio"] != d4["flow"]["ratio"]  # measured on other sequences
    assert invoke("diagnose", run_id, "--store", store["out"], "--probe-size", 0).exit_code == 2


# --- the shipped examples --------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_config_trains_a_few_steps(path, tmp_path):
    text = tomllib.loads(path.read_text())
    if "sweep" in text:  # a sweep file: its grid, then its first point trained briefly
        grid = load_sweep(path)
        axes = {k: v for k, v in text["sweep"].items() if k != "exclude"}
        points = [dict(zip(axes, p, strict=True)) for p in itertools.product(*axes.values())]
        excluded = [
            p
            for p in points
            if any(all(p[k] == v for k, v in e.items()) for e in text["sweep"].get("exclude", []))
        ]
        assert excluded  # the exclusions name points of the grid
        assert len(grid.configs) == len(points) - len(excluded)
        config = grid.configs[0]
        short = config.model_copy(
            update={"train": config.train.model_copy(update={"steps": 3, "eval_every": 3})}
        )
        history = train(prepare(short), tmp_path / "run", quiet=True)
        assert history.status == "done" and len(history.steps) == 3
        return
    sets = ["train.steps=3", "train.eval_every=3", "train.checkpoint_every=3"]
    args = ["run", path, "--out", tmp_path, "--quiet", *(a for s in sets for a in ("--set", s))]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    config = load_config(path, sets)
    assert result.stdout.startswith(f"run {config.run_id}: done; ")
    assert config.model.cell == text["model"].get("cell", "rnn")
    with Store(tmp_path) as s:
        run = s.get(config.run_id)
    assert (run.status, run.steps_done) == ("done", 3)
    assert math.isfinite(run.final["loss"])


def test_the_torch_example_runs_at_a_small_size(capsys, monkeypatch):
    """examples/torch_lstm_diagnose.py takes no options: loaded as a module, with 20 steps in
    place of 300, its claims about initialisation still hold: the default LSTM vanishes,
    forget_bias = 1 makes it healthy."""
    need("torch")
    spec = importlib.util.spec_from_file_location(
        "torch_example", EXAMPLES / "torch_lstm_diagnose.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "STEPS", 20)
    monkeypatch.setattr(module, "EVERY", 10)
    module.main()
    printed = capsys.readouterr().out
    assert "== a default nn.LSTM on copy (T = 20, dependency 30 steps) ==" in printed
    assert "VANISHING" in printed.split("training with GradientFlowMonitor:")[0]
    assert printed.count("  step 10: ") == 2 and printed.count("  step 20: ") == 2
    remedies = printed.split("== the remedies it suggests, each at initialisation ==")[1]
    forget = next(line for line in remedies.splitlines() if "2. forget_bias = 1" in line)
    assert forget.split()[4] == "healthy"
    assert "== trained with both ==" in printed
