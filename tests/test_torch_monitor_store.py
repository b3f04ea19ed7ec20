"""GradientFlowMonitor and the results store: each diagnosis is in the store when step()
returns, readers show the running run, and close() or an exception sets its status."""

from __future__ import annotations

import csv
import random
import threading
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import need

torch = need("torch")  # under CI=1 a failure, not a skip
nn = torch.nn

import rnnlab.torch as rt  # noqa: E402
from rnnlab.cli.main import cli  # noqa: E402
from rnnlab.diagnostics import Diagnosis  # noqa: E402
from rnnlab.experiments import store as store_module  # noqa: E402
from rnnlab.experiments.store import Store, StoreError  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()  # tiny graphs: one thread is faster on a busy machine
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 5)
        self.readout = nn.Linear(5, 2)

    def forward(self, x):
        return self.readout(self.rnn(x)[0])


def loss_fn(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def batches(n):
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(7, 4, 3, generator=g), torch.randn(7, 4, 2, generator=g)) for _ in range(n)
    ]


def train(n, monitor=None):
    """n steps of Adam with clipping, the monitor (if any) after each."""
    torch.manual_seed(3)
    model = Tagger()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    norms = []
    for batch in batches(n):
        opt.zero_grad()
        loss_fn(model, batch).backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        norms.append(float(norm))
        opt.step()
        if monitor is not None:
            monitor(model).step(batch, grad_norm=norm)
        random.random(), torch.rand(1)  # the loop's own RNG use
    return model, opt, norms


def rng_states():
    return random.getstate(), torch.get_rng_state()


def test_each_diagnosis_is_in_the_store_while_the_monitor_runs(tmp_path):
    seen = {}

    def monitor(model):
        if "m" not in seen:
            seen["m"] = rt.GradientFlowMonitor(model, every=2, loss_fn=loss_fn, store=tmp_path)
            with Store(tmp_path) as store:  # registered at construction, before any step
                (run,) = store.runs()
                assert (run.id, run.status, run.steps_done) == (seen["m"].run_id, "running", None)
                assert store.diagnostics(run.id) == []
        return Probe(seen["m"], tmp_path, seen)

    random.seed(5)
    plain, plain_opt, _ = train(6)
    plain_rng = rng_states()
    random.seed(5)
    watched, watched_opt, norms = train(6, monitor)
    assert all(
        torch.equal(a, b)
        for a, b in zip(plain.state_dict().values(), watched.state_dict().values(), strict=True)
    )
    for a, b in zip(plain.parameters(), watched.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
    for a, b in zip(plain_opt.state.values(), watched_opt.state.values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    after = rng_states()
    assert after[0] == plain_rng[0] and torch.equal(after[1], plain_rng[1])

    m = seen["m"]
    assert seen["checked"] == [2, 4, 6]
    with Store(tmp_path) as store:  # all diagnoses written, still running until close
        run = store.get(m.run_id)
        assert (run.status, run.steps_done, run.final) == ("running", 6, {})
        assert store.metrics(m.run_id)["grad_norm"] == [(s, norms[s - 1]) for s in range(1, 7)]
    m.close()
    with Store(tmp_path) as store:
        run = store.get(m.run_id)
        assert (run.status, run.error, run.steps_done) == ("done", None, 6)
        assert run.finished_at is not None and run.seconds > 0
        assert [s for s, _ in store.diagnostics(m.run_id)] == [2, 4, 6]


class Probe:
    """Steps the monitor, then reads the store from a second connection, as `rnnlab show`
    would, while the monitor is open."""

    def __init__(self, monitor, folder, seen):
        self.monitor, self.folder, self.seen = monitor, folder, seen

    def step(self, batch, grad_norm):
        d = self.monitor.step(batch, grad_norm=grad_norm)
        if d is None:
            return
        m = self.monitor
        with Store(self.folder) as store:
            run = store.get(m.run_id)
            snapshots = store.diagnostics(m.run_id)
            metrics = store.metrics(m.run_id)
        s = m.steps_seen
        assert run.status == "running" and run.steps_done == s
        assert [step for step, _ in snapshots] == [r["step"] for r in m.records]
        step, record = snapshots[-1]
        assert step == s
        assert record["verdict"]["label"] == d.label
        np.testing.assert_array_equal(
            Diagnosis.from_dict(record).flow.lag.profile, d.flow.lag.profile
        )
        assert record["flow"]["ratio"] == d.flow.ratio
        assert record["loss"] == d.loss
        assert metrics["ratio"][-1] == (s, d.flow.ratio)
        assert metrics["decay_factor"][-1] == (s, d.flow.decay_factor)
        assert metrics["diagnosis_loss"][-1] == (s, d.loss)
        assert metrics["grad_norm"][-1] == (s, m.grad_norms[-1])
        self.seen.setdefault("checked", []).append(s)


def run_until(tmp_path, error, steps=5):
    """Train inside `with GradientFlowMonitor(...)`, raising `error` after `steps` steps."""
    torch.manual_seed(3)
    model = Tagger()
    with pytest.raises(type(error)):
        with rt.GradientFlowMonitor(model, every=2, loss_fn=loss_fn, store=tmp_path) as m:
            for i, batch in enumerate(batches(8), start=1):
                model.zero_grad()
                loss_fn(model, batch).backward()
                m.step(batch, grad_norm=nn.utils.clip_grad_norm_(model.parameters(), 1.0))
                if i == steps:
                    raise error
    return m


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (RuntimeError("loss is nan\nsecond line"), "failed", "RuntimeError: loss is nan"),
        (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt"),
    ],
)
def test_an_exception_leaving_the_with_block_ends_the_run_failed_or_interrupted(
    tmp_path, error, status, message
):
    m = run_until(tmp_path, error)
    with Store(tmp_path) as store:
        run = store.get(m.run_id)
        assert (run.status, run.error, run.steps_done) == (status, message, 5)
        assert [s for s, _ in store.diagnostics(m.run_id)] == [2, 4]
        norms = store.metrics(m.run_id)["grad_norm"]  # step 5's too, after the last diagnosis
        assert norms == [(s, m.grad_norms[s - 1]) for s in range(1, 6)]


def test_a_with_block_that_ends_normally_is_done(tmp_path):
    torch.manual_seed(0)
    model = Tagger()
    with rt.GradientFlowMonitor(model, every=3, loss_fn=loss_fn, store=tmp_path) as m:
        for batch in batches(4):
            m.step(batch, grad_norm=torch.tensor(0.5))
    with Store(tmp_path) as store:
        run = store.get(m.run_id)
        assert (run.status, run.error, run.steps_done) == ("done", None, 4)
        assert store.metrics(m.run_id)["grad_norm"] == [(s, 0.5) for s in range(1, 5)]
        ((step, record),) = store.diagnostics(m.run_id)
        assert step == 3 and record["verdict"]["label"] == m.records[0]["verdict"]["label"]
    m.close()  # twice: nothing more


def test_a_monitor_made_in_one_thread_steps_in_another(tmp_path):
    torch.manual_seed(0)
    m = rt.GradientFlowMonitor(Tagger(), every=1, loss_fn=loss_fn, store=tmp_path)
    errors = []

    def loop():
        try:
            m.step(batches(1)[0])
        except Exception as err:  # a thread's exception would not fail the test
            errors.append(err)

    worker = threading.Thread(target=loop)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the monitor's step did not return within 120 s"
    assert errors == []
    with Store(tmp_path) as store:
        assert [s for s, _ in store.diagnostics(m.run_id)] == [1]
    m.close()
    with Store(tmp_path) as store:
        assert store.get(m.run_id).status == "done"


def test_a_store_a_sweep_holds_keeps_the_snapshots_until_it_is_free(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "LOCK_WAIT", 0.05)
    torch.manual_seed(0)
    m = rt.GradientFlowMonitor(Tagger(), every=1, loss_fn=loss_fn, store=tmp_path)
    data = batches(3)
    with Store(tmp_path, write=True):  # a driver holds the store for a while
        with pytest.warns(UserWarning, match="in use by another rnnlab.*keeps its snapshots"):
            m.step(data[0])
        assert m._store.lock_wait == 0  # later diagnoses do not make training wait
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once only
            m.step(data[1])
        with Store(tmp_path) as store:
            assert store.diagnostics(m.run_id) == []
    m.step(data[2])  # free again: the two held back and this one
    assert m._store.lock_wait == store_module.LOCK_WAIT
    with Store(tmp_path) as store:
        assert [s for s, _ in store.diagnostics(m.run_id)] == [1, 2, 3]
        assert store.metrics(m.run_id)["ratio"] == [
            (r["step"], r["flow"]["ratio"]) for r in m.records
        ]
    with Store(tmp_path, write=True):
        with pytest.raises(StoreError, match="in use"):
            m.close()  # held at the end: loud, and the records stay in memory
    assert len(m.records) == 3
    with Store(tmp_path) as store:  # what was written stays, the run unfinished
        assert store.get(m.run_id).status == "running"
        assert [s for s, _ in store.diagnostics(m.run_id)] == [1, 2, 3]


def test_readers_show_a_running_monitored_run(tmp_path):
    torch.manual_seed(0)
    m = rt.GradientFlowMonitor(Tagger(), every=2, loss_fn=loss_fn, store=tmp_path)
    for batch in batches(4):
        m.step(batch, grad_norm=1.0)
    runner = CliRunner()
    result = runner.invoke(cli, ["ls", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert m.run_id in result.output and "running" in result.output
    result = runner.invoke(cli, ["show", m.run_id[:6], str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"run {m.run_id}  running" in result.output
    assert "finished -" in result.output and "steps 4" in result.output
    assert "diagnostics: 2 snapshots at steps 2, 4" in result.output
    out = tmp_path / "runs.csv"
    result = runner.invoke(cli, ["export", str(tmp_path), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(out.open())
    assert (row["id"], row["status"], row["steps_done"]) == (m.run_id, "running", "4")
    assert not any(k.startswith("final.") for k in row)
    report = tmp_path / "report.html"
    args = ["report", m.run_id, "--store", str(tmp_path), "--out", str(report)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    page = report.read_text()
    assert "Status: <b>running</b>" in page and m.records[-1]["verdict"]["label"] in page
    assert "in a PyTorch Tagger, diagnosed by GradientFlowMonitor every 2 steps" in page
    assert "T = None" not in page  # not described as a run rnnlab trained
    m.close()


def test_a_tensorboard_writer_that_fails_leaves_no_run_behind(tmp_path, monkeypatch):
    from rnnlab.torch import monitor as monitor_module

    def broken(tensorboard):
        raise OSError("no space left")

    monkeypatch.setattr(monitor_module, "_writer", broken)
    with pytest.raises(OSError, match="no space left"):
        rt.GradientFlowMonitor(
            Tagger(), every=1, loss_fn=loss_fn, store=tmp_path, tensorboard=tmp_path / "tb"
        )
    assert not (tmp_path / "runs.db").exists()  # no run left "running" forever
