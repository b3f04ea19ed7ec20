"""One way to name a run (diagnose, sample), numbers in the units they are read in (train, run,
ls, show, diagnose), greedy sampling, `ls --sort` errors, and every command's help."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import _metrics
from rnnlab.cli.main import cli
from rnnlab.experiments.prepared import build, build_task, load_config
from rnnlab.experiments.store import Store
from rnnlab.report.data import resolve
from rnnlab.train import load_checkpoint

ADDING = """
[model]
hidden_size = 16
[task]
name = "adding"
T = 15
[train]
optimizer = "adam"
lr = 3e-3
steps = 20
eval_every = 10
"""
CHARLM = """
[model]
cell = "gru"
hidden_size = 16
[task]
name = "charlm"
T = 20
[train]
steps = 6
eval_every = 3
"""


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """A store with an adding run and a charlm run, trained by `rnnlab train`."""
    root = tmp_path_factory.mktemp("targets")
    out = root / "store"
    found: dict = {"out": out}
    for name, text in (("adding", ADDING), ("charlm", CHARLM)):
        path = root / f"{name}.toml"
        path.write_text(text)
        result = invoke("train", str(path), "--out", str(out), "--quiet")
        assert result.exit_code == 0, result.output
        config = load_config(path)
        found[name] = (path, config, result.stdout)
    return found


def forms(store: dict, name: str) -> list[str]:
    """The three ways to name one run: its folder, a prefix of its id, its checkpoint file."""
    run_id = store[name][1].run_id
    folder = store["out"] / "runs" / run_id
    return [str(folder), run_id[:5], str(folder / "last.safetensors")]


# --- one way to name a run ---------------------------------------------------------------------


def test_diagnose_by_folder_id_prefix_and_file_gives_the_same_diagnosis(store):
    outputs = []
    last = store["out"] / "runs" / store["adding"][1].run_id / "last.safetensors"
    for target in forms(store, "adding"):
        result = invoke("diagnose", target, "--json", "--store", str(store["out"]))
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.stdout))
        assert str(last) in result.stderr and "step 20 of 20" in result.stderr
    assert outputs[0] == outputs[1] == outputs[2]
    # and it is the diagnosis of the trained weights, not of the model at initialisation
    at_init = invoke("diagnose", str(store["adding"][0]), "--json")
    assert json.loads(at_init.stdout)["loss"] != outputs[0]["loss"]


def test_sample_by_folder_id_prefix_and_file_gives_the_same_text(store):
    texts = []
    for target in forms(store, "charlm"):
        args = ["sample", target, "--store", str(store["out"]), "--prime", "ROMEO:"]
        result = invoke(*args, "--length", "50", "--seed", "3")
        assert result.exit_code == 0, result.output
        texts.append(result.stdout)
        assert result.stderr.startswith("checkpoint ") and "step 6 of 6" in result.stderr
    assert texts[0] == texts[1] == texts[2]
    assert texts[0].startswith("ROMEO:") and len(texts[0]) == len("ROMEO:") + 50 + 1


def test_a_store_from_the_current_folder_is_the_default(store, monkeypatch):
    monkeypatch.chdir(store["out"].parent)
    store["out"].rename("results")
    try:
        run_id = store["adding"][1].run_id
        result = invoke("diagnose", run_id[:6], "--json")
        assert result.exit_code == 0, result.output
        assert f"results/runs/{run_id}/last.safetensors" in result.stderr
    finally:
        Path("results").rename(store["out"])


@pytest.fixture
def odd_store(tmp_path) -> Path:
    """A store whose runs share a prefix and have no checkpoint yet (pending)."""
    with Store(tmp_path / "odd", write=True) as s:
        s.add([("abc111", "{}"), ("abc222", "{}")])
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "run.toml").write_text(ADDING)
    return tmp_path


@pytest.mark.parametrize(
    ("command", "target", "why"),
    [
        ("diagnose", "zzzz", "got 'zzzz', no such folder or run id; expected a run folder, "),
        ("diagnose", "abc", "got 'abc', the start of 2 run ids; expected"),
        ("diagnose", "abc1", "got 'abc1', run abc111 (pending), which has no checkpoint"),
        ("diagnose", "{tmp}/odd", "a whole store; expected one run of it: its id with --store"),
        ("diagnose", "{tmp}/empty", "a folder without history.json; expected"),
        ("diagnose", "{tmp}/gone/x", "no such folder; expected"),
        ("diagnose", "{tmp}/gone.safetensors", "no such file; expected"),
        ("diagnose", "{tmp}/notes.txt", "not a checkpoint; expected"),
        ("sample", "{tmp}/gone.toml", "no such file; expected"),
        ("sample", "{tmp}/run.toml", "not a checkpoint; expected"),
        ("sample", "zzzz", "expected a run folder, a run id (or a unique prefix) in the store"),
    ],
)
def test_bad_targets_are_one_line_errors(odd_store, command, target, why):
    target = target.format(tmp=odd_store)
    result = invoke(command, target, "--store", str(odd_store / "odd"))
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: target: got ") and result.output.count("\n") == 1
    assert why in result.output and "Traceback" not in result.output
    if "; expected a run folder" in result.output:  # the forms TARGET takes, for this command
        allowed = "or a CONFIG.toml" if command == "diagnose" else "or a .safetensors checkpoint"
        assert result.output.rstrip().endswith(allowed)


def test_no_store_and_no_folder_say_so(tmp_path):
    result = invoke("sample", "abc", "--store", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert f"got 'abc', not a folder, and there is no store at '{tmp_path}/nowhere'" in (
        result.output
    )


def test_set_applies_to_a_config_only(store):
    result = invoke("diagnose", forms(store, "adding")[2], "--set", "task.T=60")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith("error: --set: got 'task.T=60' for a checkpoint")


def test_sample_needs_a_charlm_run(store):
    result = invoke("sample", forms(store, "adding")[2])
    assert result.exit_code == 2
    assert "a run of task 'adding'; expected a charlm run" in result.output


# --- train records its run in the store ----------------------------------------------------


def test_train_records_in_the_store_and_says_where_to_find_it(store):
    path, config, stdout = store["adding"]
    out = store["out"]
    lines = stdout.splitlines()
    assert lines[0].startswith(f"run {config.run_id}: done; mse ")
    assert lines[1] == f"store {out / 'runs.db'}; checkpoints in {out / 'runs' / config.run_id}"
    assert lines[2] == f"report: rnnlab report {config.run_id} --store {out}"
    assert resolve(config.run_id, out) == ("id", out)  # where that command looks
    with Store(out) as s:
        assert s.get(config.run_id).status == "done"
    assert not (out.parent / "runs").exists()  # no separate runs/<id> folder any more
    again = invoke("train", str(path), "--out", str(out), "--quiet")
    assert again.exit_code == 0
    assert again.stdout.startswith(f"run {config.run_id}: done (already in the store); mse ")
    assert again.stdout.splitlines()[0].split("; ", 1)[1] == lines[0].split("; ", 1)[1]


def test_train_and_run_are_one_command(store):
    path, config, _ = store["adding"]
    result = invoke("run", str(path), "--out", str(store["out"]), "--quiet")
    assert result.stdout.startswith(f"run {config.run_id}: done (already in the store)")
    assert invoke("train", str(path), "--resume").exit_code == 2  # gone: resuming is automatic


def test_the_default_store_needs_no_store_option_in_the_report_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a.toml").write_text(ADDING.replace("steps = 20", "steps = 2"))
    result = invoke("train", "a.toml", "--quiet")
    assert result.exit_code == 0, result.output
    run_id = load_config("a.toml").run_id
    assert result.stdout.splitlines()[1:] == [
        f"store results/runs.db; checkpoints in results/runs/{run_id}",
        f"report: rnnlab report {run_id}",
    ]


# --- numbers in the units they are read in -------------------------------------------------


def final_metrics(store: dict, name: str) -> dict[str, float]:
    with Store(store["out"]) as s:
        return s.get(store[name][1].run_id).final


def test_charlm_prints_its_baseline_in_bits_beside_bits_per_char(store):
    _, config, stdout = store["charlm"]
    task = build_task(config)
    final = final_metrics(store, "charlm")
    summary = stdout.splitlines()[0].split("; ", 1)[1]
    assert summary == (
        f"cross_entropy {final['cross_entropy']:.4g} (baseline {task.baseline:.4g}), "
        f"bits_per_char {final['bits_per_char']:.4g} (baseline {task.baseline_bits:.4g}), "
        f"perplexity {final['perplexity']:.4g} (baseline {math.exp(task.baseline):.4g}), "
        f"accuracy {final['accuracy']:.4g} (characters), solved no"
    )
    assert task.baseline_bits == pytest.approx(4.774, abs=1e-3)  # tiny Shakespeare, in bits
    assert "loss" not in summary.replace("(baseline", "")


def test_adding_shows_mse_once_and_says_what_accuracy_counts(store):
    final = final_metrics(store, "adding")
    assert final["loss"] == final["mse"]  # the same number: shown once
    summary = store["adding"][2].splitlines()[0].split("; ", 1)[1]
    assert summary == (
        f"mse {final['mse']:.4g} (baseline 0.1667), "
        f"accuracy {final['accuracy']:.4g} (sequences within ±0.04), solved no"
    )


def test_ls_and_show_read_solved_as_yes_no_and_accuracy_by_task(store):
    listing = invoke("ls", str(store["out"]), "--where", "task.name=adding")
    assert listing.exit_code == 0, listing.output
    header = next(line for line in listing.output.splitlines() if "status" in line)
    columns = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert columns == [
        "id",
        "status",
        "steps",
        "mse",
        "accuracy (sequences within ±0.04)",
        "solved",
    ]
    row = next(line for line in listing.output.splitlines() if store["adding"][1].run_id in line)
    assert [c.strip() for c in row.strip("│ ").split("│")][-1] == "no"

    everything = invoke("ls", str(store["out"]))
    assert "accuracy (sequences within ±0.04 / characters)" in everything.output

    args = ["show", store["charlm"][1].run_id[:5], str(store["out"])]
    shown = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})  # no header wrapped
    assert shown.exit_code == 0, shown.output
    header = next(line for line in shown.output.splitlines() if "step" in line and "┃" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "step",
        "accuracy (characters)",
        "bits_per_char",
        "cross_entropy",
        "perplexity",
        "solved",
    ]
    rows = [line for line in shown.output.splitlines() if line.startswith("│")]
    assert [r.strip("│ ").split("│")[-1].strip() for r in rows[:3]] == ["no", "no", "no"]


def test_metric_cells():
    assert _metrics.value("solved", 1.0) == "yes" and _metrics.value("solved", 0.0) == "no"
    assert _metrics.value("solved", math.nan) == "nan"  # a diverged run's: not a verdict
    assert _metrics.shown(["loss", "mse", "accuracy"]) == ["mse", "accuracy"]
    assert _metrics.shown(["loss", "grad_norm"]) == ["loss", "grad_norm"]  # a monitored run
    assert _metrics.header("accuracy", [{"task": {"name": "copy"}}]) == (
        "accuracy (recalled symbols)"
    )
    assert _metrics.header("accuracy", [{"task": {"name": "temporal_order"}}]) == (
        "accuracy (sequences)"
    )
    assert _metrics.header("accuracy", [{"model": {}}]) == "accuracy"  # no task known


RELU_CLIPPED = """
[model]
nonlinearity = "relu"
spectral_radius = 2.0
hidden_size = 16
[task]
name = "adding"
T = 60
[train]
clip = { mode = "norm", threshold = 1.0 }
"""


def test_diagnose_marks_the_remedies_in_use(tmp_path):
    path = tmp_path / "relu.toml"
    path.write_text(RELU_CLIPPED)
    remedies = json.loads(invoke("diagnose", str(path), "--json").stdout)["verdict"]["remedies"]
    assert [(r["name"], r["in_use"]) for r in remedies] == [
        ("orthogonal_cell", False),
        ("gated_cell", False),
        ("clip_norm", True),
        ("orthogonal_w", True),
    ]
    table = invoke("diagnose", str(path)).output
    for i, r in enumerate(remedies, 1):
        assert (f"remedy {i} [in use]" in table) is r["in_use"]
        assert f"remedy {i}" in table


# --- sampling ------------------------------------------------------------------------------


def test_temperature_0_is_greedy_and_negative_is_an_error(store):
    last = forms(store, "charlm")[2]
    greedy = [
        invoke("sample", last, "--temperature", "0", "--seed", seed, "--length", "40").stdout
        for seed in ("1", "2")
    ]
    assert greedy[0] == greedy[1]
    ckpt = load_checkpoint(last)
    model, task = build(load_config(store["charlm"][0]))
    model.set_params(ckpt.params)
    ids = list(task.encode("\n"))  # the default prime
    o, state = model.forward(np.array(ids)[:, None], None)
    for _ in range(40):  # by hand: always the most likely character
        ids.append(int(np.argmax(o[-1, 0])))
        o, state = model.forward(np.array(ids[-1:])[:, None], state)
    assert greedy[0] == task.decode(np.array(ids)) + "\n"

    warm = [
        invoke("sample", last, "--temperature", "1.5", "--seed", s, "--length", "40").stdout
        for s in ("1", "2")
    ]
    assert warm[0] != warm[1]

    bad = invoke("sample", last, "--temperature", "-1")
    assert bad.exit_code == 2 and bad.output.count("\n") == 1
    assert bad.output.startswith("error: temperature: got -1.0; expected a number >= 0")


# --- ls --sort -----------------------------------------------------------------------------


def test_ls_sort_rejects_an_unknown_column_in_one_line(store):
    result = invoke("ls", str(store["out"]), "--sort", "bogus")
    assert result.exit_code == 2
    assert result.output == (
        "error: --sort: got 'bogus'; expected id, status, steps, a config field or a final "
        "metric of these runs, e.g. model.cell, task.T or loss\n"
    )


@pytest.mark.parametrize("name", ["train.steps", "steps", "accuracy"])
def test_ls_sort_orders_by_the_column(store, name):
    result = invoke("ls", str(store["out"]), "--sort", name)
    assert result.exit_code == 0, result.output
    order = [line.split("│")[1].strip() for line in result.output.splitlines() if "│" in line]
    with Store(store["out"]) as s:
        runs = s.runs()
    value = {
        "train.steps": lambda r: r.config["train"]["steps"],
        "steps": lambda r: r.steps_done,
        "accuracy": lambda r: r.final["accuracy"],
    }[name]
    assert order == [r.id for r in sorted(runs, key=value)]


# --- help ----------------------------------------------------------------------------------


def test_every_option_has_a_help_line():
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"rnnlab {name} {param.opts[0]} has no help"


@pytest.mark.parametrize("width", [50, 80, 120])
def test_the_command_list_gives_whole_first_sentences(width):
    result = CliRunner().invoke(cli, ["--help"], terminal_width=width)
    listing = result.output.split("Commands:\n", 1)[1]
    assert "..." not in listing
    flat = " ".join(listing.split())
    for name, command in cli.commands.items():
        first = " ".join(command.get_short_help_str(limit=10_000).split())
        assert first.endswith(".") and f"{name} {first}" in flat
