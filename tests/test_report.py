"""Reports: figures hold the stored numbers, pages are self-contained, the CLI writes them."""

from __future__ import annotations

import copy
import math
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from rnnlab.cli.main import cli  # noqa: E402
from rnnlab.diagnostics.record import gamma_sigma, top_profile  # noqa: E402
from rnnlab.experiments.config import RunConfig  # noqa: E402
from rnnlab.experiments.prepared import build, validate  # noqa: E402
from rnnlab.experiments.store import Store  # noqa: E402
from rnnlab.maths import plain  # noqa: E402
from rnnlab.report import Run, Sweep, plots  # noqa: E402
from rnnlab.report.data import (  # noqa: E402
    RunData,
    group_labels,
    load_run_folder,
    load_store,
)
from rnnlab.report.html import (  # noqa: E402
    run_figures,
    run_section,
    run_titles,
    summary_rows,
    sweep_figures,
)
from rnnlab.report.story import points  # noqa: E402
from rnnlab.train.history import History  # noqa: E402
from rnnlab.train.loop import fit  # noqa: E402

from conftest import npz_record, old_store  # noqa: E402

BASE: dict[str, Any] = {
    "model": {"cell": "rnn", "hidden_size": 8},
    "task": {"name": "adding", "T": 8, "val_size": 64},
    "train": {
        "optimizer": "adam",
        "lr": 1e-2,
        "batch_size": 16,
        "steps": 30,
        "eval_every": 10,
        "clip": {"mode": "norm", "threshold": 1.0},
    },
    "diagnostics": {"every": 10, "probe_size": 8, "jacobians": 1},
}
# a ReLU RNN with ρ(W) = 3, plain SGD and no clipping: non-finite at step 2
DIVERGING = {
    "model": {"cell": "rnn", "nonlinearity": "relu", "spectral_radius": 3.0},
    "train": {"optimizer": "sgd", "lr": 0.5, "clip": {"mode": "none"}},
}


def config(**sections: dict[str, Any]) -> RunConfig:
    data = copy.deepcopy(BASE)
    for name, values in sections.items():
        data[name] |= values
    return validate(data)


def train_into(cfg: RunConfig, folder: Path) -> History:
    """What `rnnlab train` does: fit with the [diagnostics] callbacks, into a run folder."""
    model, task = build(cfg)
    return fit(
        model,
        task,
        cfg.train,
        out=folder,
        quiet=True,
        run_config=cfg.model_dump(),
        diagnostics=cfg.diagnostics,
    )


def make_store(folder: Path, configs: list[RunConfig]) -> None:
    """A store as a sweep writes it, with each run's diagnostics snapshots."""
    with Store(folder, write=True) as store:
        store.add([(c.run_id, c.canonical_json) for c in configs])
        for c in configs:
            h = train_into(c, store.run_dir(c.run_id))
            final = {k: v for k, v in h.final_metrics.items() if k != "step"}
            store.record(
                c.run_id,
                {
                    "status": h.status,
                    "steps": h.steps,
                    "evals": h.evals,
                    "diagnostics": h.diagnostics,
                    "final": final,
                    "steps_done": h.diverged_at if h.diverged_at else c.train.steps,
                    "diverged_at": h.diverged_at,
                    "skipped": h.skipped,
                    "seconds": 0.5,
                },
            )


def sweep_configs() -> list[RunConfig]:
    return [
        config(),
        config(model={"cell": "lstm"}, task={"T": 12}),
        config(model=DIVERGING["model"], train=DIVERGING["train"]),
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run") / "tanh"
    train_into(config(), folder)
    return folder


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("store")
    make_store(folder, sweep_configs())
    return folder


@pytest.fixture(scope="module")
def run_obj(run_dir: Path) -> Run:
    return Run(run_dir)


@pytest.fixture(scope="module")
def sweep_obj(store_dir: Path) -> Sweep:
    return Sweep(store_dir)


@pytest.fixture(scope="module")
def run_html(run_obj: Run) -> str:
    return run_obj.html()


@pytest.fixture(scope="module")
def sweep_html(sweep_obj: Sweep) -> str:
    return sweep_obj.html()


EXTERNAL = re.compile(r"""(?:src|href|action|srcset)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def assert_self_contained(html: str) -> None:
    """No attribute fetches anything: every src is a data: URI, no remote href, no CSS
    import or url() outside data:."""
    assert not EXTERNAL.search(html)
    assert not re.search(r"@import|url\(\s*['\"]?(?!data:)", html)
    srcs = re.findall(r"""\ssrc\s*=\s*["']([^"']*)""", html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert "<script src" not in html and "rel='stylesheet'" not in html


# --- data ---------------------------------------------------------------------------------


def test_store_snapshot_reads_back_as_the_history_record(store_dir: Path) -> None:
    run = load_store(store_dir)[0]
    history = History.load(store_dir / "runs" / run.id / "history.json")
    assert [s.step for s in run.diagnostics] == [0, 10, 20, 30]
    # the store keeps the record as JSON: read back typed, it is the history's record exactly
    assert [s.to_dict() for s in run.diagnostics] == history.diagnostics
    assert run.steps == [
        {k: v for k, v in s.items()} for s in history.steps
    ]  # per-step dicts, as fit recorded them
    assert run.baseline == pytest.approx(1 / 6)


def test_a_store_with_npz_snapshots_reads_as_before_and_a_writer_migrates_it(
    store_dir: Path, tmp_path: Path
) -> None:
    """A store of schema version 2, each snapshot an .npz archive as rnnlab wrote it then:
    `report`, `show` and `ls` read it as it is and write nothing, its diagnoses hold what the
    old code read from it and report the same as the store written as JSON; a writer
    migrates it to JSON in place, and every reader reads the same again."""
    old = tmp_path / "old"
    old_store(store_dir, old, version=2)
    image = (old / "runs.db").read_bytes()
    db = sqlite3.connect(old / "runs.db")
    blobs = db.execute("SELECT run_id, step, arrays FROM diagnostics").fetchall()
    db.close()
    # what the old code's report read: the archive unpacked and unflattened
    before = {(run_id, step): {"step": step} | npz_record(blob) for run_id, step, blob in blobs}

    runner = CliRunner()
    read = load_store(old)
    ids = [run.id for run in read]
    shown = [runner.invoke(cli, ["show", run_id, str(old)]) for run_id in ids]
    listed = runner.invoke(cli, ["ls", str(old)])
    assert all(r.exit_code == 0 for r in [*shown, listed]), listed.output
    assert "diagnostics: 4 snapshots at steps 0, 10, 20, 30" in shown[0].output
    assert (old / "runs.db").read_bytes() == image  # a reader wrote nothing
    with Store(old) as store:
        assert store.schema_version == 2

    def comparable(x: Any) -> Any:  # the old form left None leaves out and held NaN in lists
        if isinstance(x, dict):
            return {k: c for k, v in x.items() if (c := comparable(v)) is not None}
        if isinstance(x, list):
            return [comparable(v) for v in x]
        return None if isinstance(x, float) and math.isnan(x) else x

    assert sum(len(run.diagnostics) for run in read) == len(before) == 10
    for run in read:
        assert [comparable(s.to_dict()) for s in run.diagnostics] == [
            comparable(before[run.id, s.step]) for s in run.diagnostics
        ]
    new = load_store(store_dir)  # the same runs, the store written as JSON
    assert [run.id for run in new] == ids and summary_rows(read) == summary_rows(new)
    for a, b in zip(read, new, strict=True):  # every word, number and figure alike
        assert run_section(a, "png") == run_section(b, "png")

    with Store(old, write=True) as store:  # a writer migrates it
        assert store.schema_version == 3
    db = sqlite3.connect(old / "runs.db")
    labels = db.execute("SELECT json_extract(record, '$.verdict.label') FROM diagnostics")
    assert {label for (label,) in labels} <= {"vanishing", "exploding", "stuck", "healthy"}
    db.close()
    migrated = load_store(old)
    assert [[s.to_dict() for s in r.diagnostics] for r in migrated] == [
        [s.to_dict() for s in r.diagnostics] for r in read
    ]
    assert [runner.invoke(cli, ["show", run_id, str(old)]).output for run_id in ids] == [
        r.output for r in shown
    ]
    assert runner.invoke(cli, ["ls", str(old)]).output == listed.output


def test_run_folder_reads_config_and_history(run_dir: Path) -> None:
    run = load_run_folder(run_dir)
    assert run.config["model"]["cell"] == "rnn" and run.T == 8
    assert run.status == "done" and len(run.evals) == 4 and len(run.diagnostics) == 4
    assert run.label == "tanh RNN"


# --- figures hold the stored numbers -------------------------------------------------------


def test_lag_profile_draws_profiles_and_bound(run_dir: Path) -> None:
    records = load_run_folder(run_dir).diagnostics
    fig = plots.lag_profile(records)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    first, last = top_profile(records[0].diagnosis), top_profile(records[-1].diagnosis)
    np.testing.assert_array_equal(lines["initialisation (step 0)"].get_ydata(), first)
    np.testing.assert_array_equal(lines["after training (step 30)"].get_ydata(), last)
    g = gamma_sigma(records[0].diagnosis)
    assert g is not None
    bound = lines[f"bound ({g:.3g})^τ"].get_ydata()
    np.testing.assert_allclose(bound, g ** np.arange(first.size))
    assert np.all(first <= bound * (1 + 1e-5))  # Pascanu: the profile stays under the bound


def test_heatmap_rows_are_steps(run_dir: Path) -> None:
    records = load_run_folder(run_dir).diagnostics
    fig = plots.lag_heatmap(records)
    Z = fig.axes[0].collections[0].get_array().reshape(len(records), -1)
    np.testing.assert_allclose(Z[2], np.log10(top_profile(records[2].diagnosis)))


def test_loss_grad_norm_marks_divergence_and_threshold(store_dir: Path) -> None:
    runs = load_store(store_dir)
    bad = next(r for r in runs if r.status == "diverged")
    fig = plots.loss_curves(runs)
    crosses = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "x"]
    assert [float(x) for ln in crosses for x in ln.get_xdata()] == [bad.diverged_at]
    base = [ln for ln in fig.axes[0].get_lines() if "baseline" in str(ln.get_label())]
    assert base[0].get_ydata()[0] == pytest.approx(1 / 6)
    fig = plots.grad_norm(runs[0].steps, "norm", 1.0)
    raw, smooth, threshold = fig.axes[0].get_lines()[:3]
    norms = np.array([s["grad_norm"] for s in runs[0].steps])
    np.testing.assert_array_equal(raw.get_ydata(), norms)
    assert raw.get_alpha() < 0.5 and smooth.get_alpha() is None  # faint points, solid mean
    span = plots.smoothing_span(norms.size)
    np.testing.assert_allclose(smooth.get_ydata(), 10 ** plots.ema(np.log10(norms), span))
    assert list(threshold.get_ydata()) == [1.0, 1.0]
    fig = plots.grad_norm(bad.steps, "none", None, bad.diverged_at)
    assert any(f"step {bad.diverged_at}" in str(ln.get_label()) for ln in fig.axes[0].lines)


def test_ema_is_debiased_and_skips_gaps() -> None:
    np.testing.assert_allclose(plots.ema(np.full(5, 3.0), 10), 3.0)  # no pull towards 0
    x = np.array([0.0, np.nan, 0.0, 10.0, 10.0])
    out = plots.ema(x, 1)  # span 1: weight 1 on the newest, the value itself
    assert np.isnan(out[1]) and list(out[[0, 2, 3, 4]]) == [0.0, 0.0, 10.0, 10.0]
    slow = plots.ema(np.r_[np.zeros(20), np.ones(20)], 9)
    assert 0 < slow[20] < slow[25] < slow[-1] < 1  # a step, followed with a lag


def test_legends_sit_below_the_axes(store_dir: Path) -> None:
    runs = load_store(store_dir)
    figures = [plots.loss_curves(runs), plots.decay_vs_radius(runs)]
    figures += [plots.grad_norm(runs[0].steps, "norm", 1.0)]
    d = runs[0].diagnostics
    figures += [plots.lag_profile(d), plots.lag_heatmap(d), plots.spectra(d)]
    figures += [plots.activations(d)]
    for fig in figures:
        assert all(ax.get_legend() is None for ax in fig.axes)  # none on the data
        (legend,) = fig.legends
        fig.draw_without_rendering()  # laid out: the legend under the axes and its labels
        box = legend.get_window_extent()
        assert all(box.y1 <= ax.get_tightbbox().y0 + 1 for ax in fig.axes)
        assert box.y0 >= 0 and box.x0 >= 0 and box.x1 <= fig.bbox.x1


def test_sweep_curves_tell_every_varying_axis_apart(tmp_path: Path) -> None:
    configs = [
        config(model={"cell": cell}, task={"T": T}, train={"seed": seed, "steps": 10})
        for cell in ("rnn", "lstm")
        for T in (6, 8)
        for seed in (0, 1)
    ]
    runs = [
        RunData.from_history(c.run_id, c.model_dump(), train_into(c, tmp_path / c.run_id))
        for c in configs
    ]
    fig = plots.loss_curves(runs, labels=group_labels(runs))
    curves = fig.axes[0].get_lines()[: len(runs)]
    seen = {(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in curves}
    assert len(seen) == len(runs)  # colour: the cell, line style: T, marker: the seed
    assert len({ln.get_linestyle() for ln in curves}) == 2
    assert len({ln.get_marker() for ln in curves}) == 2
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"tanh RNN", "LSTM", "T = 6", "T = 8", "seed 0", "seed 1"} <= set(legend)
    titles = run_titles(runs)
    assert len(set(titles)) == len(runs) and "LSTM, T = 8, seed 1" in titles


def test_group_labels_are_short_and_unique() -> None:
    def run(i: int, **sections: dict[str, Any]) -> RunData:
        return RunData(id=f"r{i}", config=config(**sections).model_dump(), status="done")

    demo_like = [
        run(0),
        # the pair the demo compares: told apart by clipping; the cadences follow the pair
        run(1, model=DIVERGING["model"], train=DIVERGING["train"] | {"eval_every": 5},
            diagnostics={"every": 5}),
        run(2, model=DIVERGING["model"], train={"optimizer": "sgd", "lr": 0.5}),
        run(3, model={"cell": "lstm"}),
        run(4, model={"hidden_size": 16}),  # a model field the cell's label does not show
        run(5, model={"hidden_size": 16}, task={"T": 12}),  # only T differs: one group
    ]  # fmt: skip
    assert group_labels(demo_like) == [
        "tanh RNN, H 8",
        "relu RNN, ρ 3, clip none",
        "relu RNN, ρ 3, clip norm 1",
        "LSTM",
        "tanh RNN, H 16",
        "tanh RNN, H 16",
    ]
    titles = run_titles(demo_like)
    assert len(set(titles)) == len(titles) and titles[5] == "tanh RNN, H 16, T = 12"
    # values that print alike still make two labels
    twins = [run(0, train={"lr": 0.1}), run(1, train={"lr": 0.1, "steps": 31})]
    twins[1].config["train"]["lr"] = "0.1"
    assert len(set(group_labels(twins))) == 2


def test_spectra_and_activations(store_dir: Path) -> None:
    lstm = next(r for r in load_store(store_dir) if r.label == "LSTM")
    fig = plots.spectra(lstm.diagnostics)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert "σ_max W" in labels and "ρ W_f" in labels  # stacked W: σ only; gate blocks: both
    fig = plots.activations(lstm.diagnostics)
    assert len(fig.axes) == 2  # the forget gate's histogram below the curves
    gate = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "mean f gate")
    assert list(gate.get_ydata()) == [
        s.diagnosis.activations[0].gate_mean for s in lstm.diagnostics
    ]


def test_phase_diagram_and_decay_vs_radius(store_dir: Path) -> None:
    runs = load_store(store_dir)
    fig = plots.phase_diagram(runs)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(f"{int(r.solved)}/1" for r in runs)
    fig = plots.decay_vs_radius(runs)
    bound, measured = fig.axes[0].get_lines()[:2]
    # two Elman RNNs; the decay per step never exceeds γ·σ_max(W)
    assert len(measured.get_xdata()) == 2
    order = np.argsort(measured.get_xdata())
    assert np.all(np.asarray(measured.get_ydata())[order] <= bound.get_ydata())
    # each a model of its own: markers, no line from one to the next; a segment per run
    assert bound.get_linestyle() == "None" and measured.get_linestyle() == "None"
    (pairs,) = fig.axes[0].collections
    assert len(pairs.get_segments()) == 2


# --- pages ---------------------------------------------------------------------------------


def test_run_page_is_self_contained_with_verdict_and_story(run_html: str, run_dir: Path) -> None:
    assert_self_contained(run_html)
    assert run_html.count("<img ") == 6
    run = load_run_folder(run_dir)
    last = run.diagnostics[-1].diagnosis
    assert f'Verdict: <span class="label">{last.verdict.label}' in run_html
    for remedy in last.verdict.remedies:
        assert remedy.reason.split("(")[0][:30] in run_html.replace("&#x27;", "'")
    for text in ("Why W matters", "The three remedies", "The product of Jacobians"):
        assert text in run_html
    # the argument's formulas are typeset: Π with its limits, 0.8^50 as a superscript
    assert run_html.count("<math") >= 12 and "<msubsup><mo>&#x0220F;</mo>" in run_html
    assert "<msup><mn>0.8</mn><mrow><mn>50</mn></mrow></msup>" in run_html
    assert "$" not in run_html.split("<script>")[0]  # no formula left as source text
    decay = last.flow.decay_factor
    assert f"×{decay:.3g} per step back" in run_html  # the run's own number beside the words


def test_story_numbers(run_dir: Path) -> None:
    run = load_run_folder(run_dir)
    story = {p.title: p.measured for p in points(run)}
    sigma = run.diagnostics[-1].diagnosis.spectra[0].sigma_max
    assert f"{sigma:.3g}" in story["Why W matters"]
    clipped = sum(s["grad_norm"] > 1.0 for s in run.steps)
    assert f"{clipped} of 30 steps clipped" in story["The three remedies"]
    empty = RunData(id="x", config=run.config, status="done", steps=run.steps)
    assert "no diagnoses recorded" in points(empty)[0].measured


def test_sweep_page_has_table_and_sweep_figures(sweep_html: str, store_dir: Path) -> None:
    assert_self_contained(sweep_html)
    runs = load_store(store_dir)
    body = sweep_html.split('id="summary"')[1].split("</tbody>")[0]
    assert body.count("<tr>") == len(runs) + 1  # the header row, then one per run
    assert "Solved fraction" in sweep_html and "decay per step" in sweep_html
    assert sweep_html.count("<details") == len(runs) and sweep_html.count("<details open>") == 1
    rows = {row[0]: row for row in summary_rows(runs)}
    bad = next(r for r in runs if r.status == "diverged")
    assert rows[bad.id][6] == "diverged" and rows[bad.id][9] is False
    # a setting every run shares is said once, not a column: the task, seed and baseline
    head = re.findall(r"<th>([^<]*)</th>", sweep_html.split('id="summary"')[1])
    assert not {"task", "seed", "baseline"} & set(head) and {"T", "clip", "loss"} <= set(head)
    assert "<p>Every run: task adding, seed 0, baseline 0.1667.</p>" in sweep_html
    # each figure says how to read it
    for name, (_, caption) in {**sweep_figures(runs), **run_figures(runs[0])}.items():
        assert 100 < len(plain(caption)) < 420 and caption.count(". ") <= 2, name


def test_notebook_reprs(run_obj: Run, sweep_obj: Sweep) -> None:
    from rnnlab.diagnostics import diagnose

    cfg = config()
    model, task = build(cfg)
    X, Y, mask = (a[:, :8] for a in task.validation)
    d = diagnose(model, X, Y, mask, loss=task.loss, dependency_length=task.dependency_length)
    for html in (d._repr_html_(), run_obj._repr_html_(), sweep_obj._repr_html_()):
        assert html.startswith("<div class='rnnlab-report'>") and "<html" not in html
        assert_self_contained(html)
    assert d.label.upper() in d._repr_html_().upper()


def test_sweep_of_runs_in_memory_with_intro(run_dir: Path) -> None:
    run = load_run_folder(run_dir)
    bare = RunData(id="nodiag", config=run.config, status="done")  # nothing recorded
    page = Sweep.of([bare], "demo", intro="First <b>.\n\nSecond.").html()
    assert_self_contained(page)
    assert "<title>demo</title>" in page
    assert "<p>First &lt;b&gt;.</p><p>Second.</p>" in page.replace("\n", "")
    assert "No diagnoses recorded for this run" in page


def test_layers_import_lazily() -> None:
    code = (
        "import sys, rnnlab.diagnostics; d = 'rnnlab.report' in sys.modules; "
        "import rnnlab.report; print(d, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # diagnostics does not import report; report imports matplotlib only to draw
    assert out.stdout.split() == ["False", "False"]


# --- the command line ----------------------------------------------------------------------


def test_cli_report_run_and_id_with_figures(run_dir: Path, store_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").exists() and str(run_dir / "report.html") in result.output
    run_id = load_store(store_dir)[0].id
    out, figures = tmp_path / "one.html", tmp_path / "figs"
    args = ["report", run_id[:6], "--store", str(store_dir), "--out", str(out)]
    result = runner.invoke(cli, [*args, "--figures", str(figures)])
    assert result.exit_code == 0, result.output
    assert f"Run {run_id}" in out.read_text()
    names = ("lag_profile", "lag_heatmap", "loss", "grad_norm", "spectra", "activations")
    expected = sorted(f"{n}.{e}" for n in names for e in ("png", "svg"))
    assert sorted(p.name for p in figures.iterdir()) == expected
    assert (figures / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (figures / "loss.svg").read_text().lstrip().startswith("<?xml")


def test_cli_report_without_matplotlib_is_one_line(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    result = CliRunner().invoke(cli, ["report", str(run_dir), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.output == (
        "error: report: matplotlib is not installed; expected `pip install 'rnnlab[report]'`\n"
    )
    assert not (tmp_path / "r.html").exists()


def test_cli_report_bad_target_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["report", str(tmp_path / "nothing"), "--store", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: target: got ")


def test_a_second_store_report_reuses_each_ended_runs_section(
    store_dir: Path, tmp_path: Path
) -> None:
    import shutil

    store = tmp_path / "store"
    shutil.copytree(store_dir, store)
    shutil.rmtree(store / ".report-cache", ignore_errors=True)
    first = Sweep(store).html()
    cached = sorted((store / ".report-cache").glob("*.html"))
    runs = load_store(store)
    assert len(cached) == len(runs)  # every run here has ended

    def runs_part(page: str) -> str:  # the sweep's own SVG figures carry random ids
        return page.split("<h2>Runs</h2>")[1]

    assert runs_part(Sweep(store).html()) == runs_part(first)  # the kept sections, as drawn
    cached[0].write_text("<p>KEPT SECTION</p>", encoding="utf-8")
    assert "KEPT SECTION" in Sweep(store).html()  # read back, not redrawn
    import dataclasses

    from rnnlab.report import cache

    run = runs[0]  # a run whose data changed is another section: drawn anew
    changed = dataclasses.replace(run, evals=[*run.evals, {"step": 99, "loss": 0.1}])
    assert cache.key(changed, "png", 3) != cache.key(run, "png", 3) != cache.key(run, "svg", 3)
