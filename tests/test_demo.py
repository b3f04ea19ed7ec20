"""`rnnlab demo --quick`: seven models trained, the tables printed, the report written; every
verdict in them comes from a diagnosis, and a second demo reuses the runs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.experiments.demo import CLIPPED, QUICK, UNCLIPPED, demo_configs
from rnnlab.experiments.store import Store


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    result = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    configs = dict(demo_configs(quick=True))
    histories = {
        label: json.loads((out / "runs" / c.run_id / "history.json").read_text())
        for label, c in configs.items()
    }
    return out, result.output, configs, histories


def _table_rows(output: str) -> dict[str, list[str]]:
    """The 'After training' table's cells by model label."""
    table = output.split("After training")[1]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 7:
            rows[cells[0]] = cells
    return rows


def test_quick_demo_runs_and_stores_every_model(quick):
    out, output, configs, _ = quick
    assert "At initialisation" in output and f"After training on adding, T = {QUICK[0]}" in output
    report = out / "report.html"
    assert f"report: {report}" in output
    with Store(out) as store:
        status = {label: store.get(c.run_id).status for label, c in configs.items()}
    assert status.pop(UNCLIPPED) == "diverged"  # the explosion, caught at its step
    assert set(status.values()) == {"done"}  # the threshold tames the same run


def test_every_verdict_in_the_table_is_the_last_diagnosis(quick):
    _, output, _, histories = quick
    rows = _table_rows(output)
    assert set(rows) == set(histories)
    for label, history in histories.items():
        last = history["diagnostics"][-1]
        assert rows[label][3] == last["verdict"]["label"]
        assert rows[label][4] == f"×{last['flow']['decay_factor']:.2f}"
        assert rows[label][5] == str(last["flow"]["horizon"])
        w = next(s for s in last["spectra"] if s["block"] == "W")
        assert rows[label][6] == f"{w['sigma_max']:.3g}"
        mse = history["evals"][-1]["mse"]
        if history["status"] != "diverged":
            assert rows[label][1] == f"{mse:.4f}"
        assert rows[label][2] == ("yes" if history["evals"][-1]["solved"] else "no")


def test_the_blow_up_is_measured_where_it_happens(quick):
    _, output, _, histories = quick
    h = histories[UNCLIPPED]
    k = h["diverged_at"]
    assert 20 < k < QUICK[1]  # the norm grows over tens of steps first, not in one jump
    last = h["diagnostics"][-1]
    assert last["step"] == k and last["verdict"]["label"] == "exploding"
    stats = last["verdict"]["history"]
    assert stats["first_nonfinite"] == k and stats["growth"] > 1.2
    assert len(h["diagnostics"]) >= 5  # every 10 steps until the blow-up: figures with data
    assert f"diverged@{k}" in output
    norms = [s["grad_norm"] for s in h["steps"][10:k]]
    assert norms[-1] > 1e6 * norms[0]  # visible, geometric growth before the overflow
    twin = histories[CLIPPED]  # the threshold keeps every step finite
    assert twin["status"] == "done" and not any(s.get("skipped") for s in twin["steps"])
    assert twin["diagnostics"][-1]["verdict"]["history"]["nonfinite_steps"] == 0


def test_the_tanh_rnn_stays_at_the_baseline_and_its_gradient_vanishes(quick):
    """The article's point, measured: the tanh RNN ends within 10 % of 1/6, unsolved, and
    its gradient from the dependency length back is under a thousandth of the local one."""
    _, _, _, histories = quick
    h = histories["tanh RNN"]
    assert abs(h["evals"][-1]["mse"] - 1 / 6) < 0.1 / 6 and not h["evals"][-1]["solved"]
    last = h["diagnostics"][-1]
    assert last["verdict"]["label"] == "vanishing" and last["flow"]["ratio"] < 1e-3


def test_no_run_at_its_baseline_reads_healthy(quick):
    _, _, _, histories = quick
    for label, h in histories.items():
        last = h["diagnostics"][-1]
        if h["evals"][-1]["loss"] >= 0.9 / 6:
            assert last["verdict"]["label"] in ("stuck", "vanishing", "exploding"), label


def test_the_articles_case_is_in_the_report(quick):
    out, _, _, histories = quick
    first = histories["tanh RNN, σ_max 0.8"]["diagnostics"][0]
    w = next(s for s in first["spectra"] if s["block"] == "W")
    assert w["sigma_max"] == pytest.approx(0.8, rel=1e-6)
    ratio = first["flow"]["lag"]["profile"][-1][50]
    assert ratio < 0.8**50  # the bound holds, measured at τ = 50
    page = (out / "report.html").read_text()
    # the bound at τ = 50 typeset (0.8 to the 50th), its value and the measured ratio beside
    assert "<msup><mn>0.8</mn><mrow><mn>50</mn></mrow></msup>" in page
    assert "≈ 1.43e-05; measured" in page and f"{ratio:.3g}" in page
    assert "RNN梯度消失与梯度爆炸的原因" in page
    h = histories[UNCLIPPED]
    growth = h["diagnostics"][-1]["verdict"]["history"]["growth"]
    assert (
        f"it diverged at step {h['diverged_at']} after its pre-clip norm grew ×{growth:.3g}" in page
    )


def test_a_second_demo_reuses_its_runs(quick):
    out, _, configs, _ = quick
    again = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out), "--quiet"])
    assert again.exit_code == 0, again.output
    assert "rendering the report of 7 runs" in again.output
    with Store(out) as store:
        assert all(store.get(c.run_id).attempts == 1 for c in configs.values())
