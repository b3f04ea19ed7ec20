"""`rnnlab demo --quick`: six models trained, the table printed, the report written."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.experiments.demo import demo_configs
from rnnlab.experiments.store import Store


def test_quick_demo(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (
        "At initialisation" in result.output and "After training on adding, T = 20" in result.output
    )
    for label, _ in demo_configs(quick=True):
        assert label in result.output
    report = out / "report.html"
    assert f"report: {report}" in result.output and report.stat().st_size > 10_000

    with Store(out) as store:
        status = {c.run_id: store.get(c.run_id).status for _, c in demo_configs(quick=True)}
    labels = dict((label, config.run_id) for label, config in demo_configs(quick=True))
    assert status[labels["ReLU, no clipping"]] == "diverged"  # the explosion, caught
    assert status[labels["ReLU, clipped"]] == "done"  # the threshold tames it
    assert sorted(status.values()) == ["diverged"] + ["done"] * 5
    history = json.loads((out / "runs" / labels["ReLU, no clipping"] / "history.json").read_text())
    assert history["diverged_at"] is not None
    assert "diverged@" in result.output
