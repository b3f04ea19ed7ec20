"""The results store: schema, exact values, no duplicates, migration, clear errors."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.experiments import snapshots as snapshots_module
from rnnlab.experiments import store as store_module
from rnnlab.experiments.select import select
from rnnlab.experiments.store import Store, StoreError

from conftest import npz_snapshot, old_store

CONFIG = {"model": {"cell": "lstm"}, "task": {"name": "adding", "T": 10}, "train": {"seed": 0}}
RESULT = {
    "status": "diverged",
    "steps": [
        {"step": 0, "loss": 0.1 + 0.2, "grad_norm": 1e308, "lr": 1e-3},
        {"step": 1, "loss": math.inf, "grad_norm": math.nan, "lr": 1e-3, "skipped": 1.0},
    ],
    "evals": [{"step": 0, "loss": 1 / 3, "mse": 1 / 3, "solved": 0.0}],
    "diagnostics": [{"step": 0, "lag": [1, 10], "ratio": [0.5, 1e-5], "verdict": "vanishing"}],
    "final": {"loss": 1 / 3, "mse": 1 / 3, "solved": 0.0},
    "steps_done": 1,
    "diverged_at": 1,
    "skipped": 0,
    "seconds": 0.5,
}


def filled(folder) -> Store:
    store = Store(folder, write=True)
    store.add([("abc123", json.dumps(CONFIG)), ("def456", json.dumps(CONFIG | {"x": 1}))])
    store.mark_running("abc123")
    store.record("abc123", RESULT)
    return store


def test_a_new_store_is_versioned_wal_and_marked(tmp_path):
    with Store(tmp_path, write=True) as store:
        assert store.schema_version == len(store_module.MIGRATIONS) == 3
    db = sqlite3.connect(tmp_path / "runs.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA application_id").fetchone() == (store_module.APPLICATION_ID,)


def test_results_read_back_bit_for_bit(tmp_path):
    with filled(tmp_path) as store:
        pass
    with Store(tmp_path) as store:
        run = store.get("abc")  # a unique prefix is enough
        assert (run.status, run.diverged_at, run.steps_done, run.attempts) == ("diverged", 1, 1, 1)
        assert run.config == CONFIG and run.final == RESULT["final"]
        train = store.metrics("abc123")
        assert train["loss"] == [(0, 0.1 + 0.2), (1, math.inf)]
        assert train["grad_norm"][0] == (0, 1e308) and math.isnan(train["grad_norm"][1][1])
        assert train["skipped"] == [(1, 1.0)]  # only where the record had it
        assert store.metrics("abc123", "eval")["loss"] == [(0, 1 / 3)]
        ((step, arrays),) = store.diagnostics("abc123")
        assert step == 0 and arrays["verdict"] == "vanishing"
        np.testing.assert_array_equal(arrays["ratio"], [0.5, 1e-5])
        assert [r.status for r in store.runs()] == ["diverged", "pending"]


def test_duplicates_are_impossible(tmp_path):
    with filled(tmp_path) as store:
        store.add([("abc123", "{}")])  # already there: the row is kept as it is
        store.record("abc123", RESULT)  # recording again replaces, never doubles
        assert store.get("abc123").config == CONFIG
        assert len(store.metrics("abc123")["loss"]) == 2
    db = sqlite3.connect(tmp_path / "runs.db")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO metrics VALUES ('abc123', 'train', 'loss', 0, 1.0)")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO runs (id, config, created_at) VALUES ('abc123', '{}', 0)")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE runs SET status = 'finished' WHERE id = 'abc123'")


def test_a_second_writer_is_refused_while_the_first_holds_the_store(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "LOCK_WAIT", 0.05)
    with Store(tmp_path, write=True):
        with pytest.raises(StoreError, match="runs.db: in use by another rnnlab"):
            Store(tmp_path, write=True)
        with Store(tmp_path) as reader:  # reading is fine meanwhile
            assert reader.runs() == []
    Store(tmp_path, write=True).close()  # released with the first


def test_reading_a_missing_store_creates_nothing(tmp_path):
    with pytest.raises(StoreError, match="no results store here"):
        Store(tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_an_empty_database_reads_as_an_empty_store_and_stays_empty(tmp_path):
    (tmp_path / "runs.db").touch()  # as a writer killed before its first commit leaves it
    with Store(tmp_path) as store:
        assert store.runs() == [] and store.statuses() == {}
    assert (tmp_path / "runs.db").read_bytes() == b""


def test_an_older_schema_migrates_on_open_and_keeps_its_runs(tmp_path, monkeypatch):
    filled(tmp_path).close()
    migration = "ALTER TABLE runs ADD COLUMN note TEXT; CREATE INDEX runs_note ON runs (note)"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, migration])
    before = (tmp_path / "runs.db").read_bytes()
    with Store(tmp_path) as store:  # a reader reads it as it is and writes nothing
        assert store.schema_version == 3
        assert store.get("abc123").status == "diverged"
    assert (tmp_path / "runs.db").read_bytes() == before
    with Store(tmp_path, write=True) as store:  # a writer migrates it
        assert store.schema_version == 4
        assert store.get("abc123").status == "diverged"
    db = sqlite3.connect(tmp_path / "runs.db")
    assert db.execute("SELECT note FROM runs WHERE id = 'abc123'").fetchone() == (None,)


def test_a_newer_schema_is_a_clear_error_and_the_file_is_left_alone(tmp_path):
    filled(tmp_path).close()
    db = sqlite3.connect(tmp_path / "runs.db")
    db.execute("PRAGMA user_version = 7")
    db.close()
    before = (tmp_path / "runs.db").read_bytes()
    for write in (True, False):
        with pytest.raises(StoreError, match=r"runs\.db: schema version 7, written by a newer"):
            Store(tmp_path, write=write)
    assert (tmp_path / "runs.db").read_bytes() == before


def corrupt_pages(path) -> None:
    """Zero the second page onwards (the tables' b-trees), keeping the header page."""
    blob = bytearray(path.read_bytes())
    page = int.from_bytes(blob[16:18], "big")
    blob[page : 3 * page] = b"\x00" * (2 * page)
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("garbage", "corrupted or not an SQLite database"),
        ("pages", "corrupted"),
        ("foreign", "an SQLite file, but not an rnnlab results store"),
    ],
)
def test_a_corrupted_or_foreign_db_is_a_clear_error_naming_the_file(tmp_path, how, message):
    path = tmp_path / "runs.db"
    if how == "garbage":
        path.write_bytes(b"this is not a database, just bytes " * 200)
    elif how == "pages":
        filled(tmp_path).close()
        corrupt_pages(path)
    else:
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=message) as err:
        Store(tmp_path, write=True)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == before  # never silently overwritten

    result = CliRunner().invoke(cli, ["ls", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {path}: ") and result.output.count("\n") == 1


def test_snapshots_are_compact_strict_json():
    snapshot = {
        "flow": {"lag": [1, 2, 3], "norm": [1.0, 0.5, 0.25]},
        "notes": None,
        "remedies": [{"name": "clip"}, {"name": "lstm"}],
        "ok": True,
        "ragged": [[1, 2], [3]],
    }
    text = snapshots_module.dumps(snapshot)
    assert text.startswith('{"flow":{"lag":[1,2,3],') and " " not in text
    assert snapshots_module.loads(text) == snapshot  # None leaves and ragged lists kept
    assert snapshots_module.dumps(snapshot) == text  # the same snapshot, the same text
    with pytest.raises(ValueError, match=r"^diagnostics: .*; expected a JSON-safe record"):
        snapshots_module.dumps({"bad": np.int64(3)})


def test_select_by_config_field_and_final_metric(tmp_path):
    with filled(tmp_path) as store:
        runs = store.runs()
    assert [r.id for r in select(runs, ["model.cell=lstm", "task.T=10"])] == ["abc123", "def456"]
    assert [r.id for r in select(runs, ["solved=0"])] == ["abc123"]
    assert select(runs, ["model.cell=gru"]) == []
    with pytest.raises(ValueError, match="--where: got 'model.cel'"):
        select(runs, ["model.cel=lstm"])
    with pytest.raises(ValueError, match="expected key=value"):
        select(runs, ["lstm"])


def test_non_finite_numbers_in_a_snapshot_are_null():
    snapshot = {"log_norm": [[0.0, None], [-1.5, 2.0]], "x": None}
    assert snapshots_module.loads(snapshots_module.dumps(snapshot)) == snapshot
    with pytest.raises(ValueError, match="not JSON compliant"):  # to_dict writes nan as None
        snapshots_module.dumps({"log_norm": [math.nan]})
    # an .npz snapshot of a store before version 3 kept None in a list as NaN: None again
    blob = npz_snapshot(snapshot)
    assert snapshots_module.read_npz(blob) == {"log_norm": [[0.0, None], [-1.5, 2.0]]}


def test_a_version_1_store_migrates_to_3_keeping_every_row_and_its_order(tmp_path):
    with filled(tmp_path / "new") as store:
        store.add([("0aa", "{}")])  # sorts first by id, last by when it was added
        before = (store.runs(), store.metrics("abc123"), store.metrics("abc123", "eval"))
        snapshots = store.diagnostics("abc123")
    old_store(tmp_path / "new", tmp_path, version=1)  # as rnnlab wrote it then
    db = sqlite3.connect(tmp_path / "runs.db")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = 'def456'")
    db.close()
    image = (tmp_path / "runs.db").read_bytes()
    with Store(tmp_path) as store:  # a reader reads version 1 as it is, and writes nothing
        assert store.schema_version == 1
        assert (store.runs(), store.metrics("abc123"), store.metrics("abc123", "eval")) == before
        assert store.diagnostics("abc123") == snapshots
    assert (tmp_path / "runs.db").read_bytes() == image
    with Store(tmp_path, write=True) as store:  # a writer migrates it, 1 to 3 at once
        assert store.schema_version == 3
        assert (store.runs(), store.metrics("abc123"), store.metrics("abc123", "eval")) == before
        assert [r.id for r in store.runs()] == ["abc123", "def456", "0aa"]
        ((step, arrays),) = store.diagnostics("abc123")
        assert step == snapshots[0][0] == 0 and arrays["verdict"] == "vanishing"
        np.testing.assert_array_equal(arrays["ratio"], snapshots[0][1]["ratio"])
        with store.transaction() as db:
            db.execute("UPDATE runs SET status = 'interrupted' WHERE id = 'def456'")
            db.execute("DELETE FROM runs WHERE id = 'abc123'")  # foreign keys still cascade
            assert db.execute("SELECT count(*) FROM metrics").fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM diagnostics").fetchone() == (0,)
        assert store.get("def456").status == "interrupted"


def test_a_migration_that_fails_leaves_the_store_as_it_was(tmp_path):
    filled(tmp_path / "new").close()
    old_store(tmp_path / "new", tmp_path, version=2)
    db = sqlite3.connect(tmp_path / "runs.db", isolation_level=None)
    db.execute("UPDATE diagnostics SET arrays = x'00ff'")  # a snapshot no reader can read
    db.close()
    image = (tmp_path / "runs.db").read_bytes()
    with pytest.raises(StoreError, match=r"runs\.db: cannot migrate it to schema version 3 \(th"):
        Store(tmp_path, write=True)
    assert (tmp_path / "runs.db").read_bytes() == image  # rolled back
    with Store(tmp_path) as store:
        assert store.schema_version == 2 and store.get("abc123").status == "diverged"


SNAPSHOT = {
    "flow": {"ratio": 1e-5, "profile": [[1.0, 0.25, None]]},
    "verdict": {"label": "vanishing"},
}


def test_a_run_written_as_it_goes_is_read_back_at_each_stage(tmp_path):
    writer = Store(tmp_path, write=True, hold=False)
    writer.start("mon1", json.dumps(CONFIG))
    writer.append(
        "mon1",
        2,
        SNAPSHOT,
        [{"step": 1, "grad_norm": 0.5}, {"step": 2, "grad_norm": 1.5, "ratio": 1e-5}],
    )
    with Store(tmp_path) as reader:  # while the writer is open
        run = reader.get("mon1")
        assert (run.status, run.steps_done, run.final, run.finished_at) == ("running", 2, {}, None)
        assert run.attempts == 1 and run.seconds is not None and run.seconds >= 0
        ((step, record),) = reader.diagnostics("mon1")
        assert step == 2 and record["verdict"]["label"] == "vanishing"
        assert record["flow"]["profile"] == [[1.0, 0.25, None]]  # as appended
        assert reader.metrics("mon1") == {
            "grad_norm": [(1, 0.5), (2, 1.5)],
            "ratio": [(2, 1e-5)],
        }
    writer.append(
        "mon1",
        4,
        SNAPSHOT | {"verdict": {"label": "healthy"}},
        [{"step": 3, "grad_norm": math.nan}],
    )
    writer.finish(
        "mon1", "done", steps=[{"step": 5, "grad_norm": 2.0}], final={"loss": 0.25}, steps_done=5
    )
    writer.close()
    with Store(tmp_path) as reader:
        run = reader.get("mon1")
        assert (run.status, run.error, run.steps_done, run.final) == (
            "done",
            None,
            5,
            {"loss": 0.25},
        )
        assert run.finished_at is not None and run.seconds == pytest.approx(
            run.finished_at - run.started_at
        )
        assert [(s, r["verdict"]["label"]) for s, r in reader.diagnostics("mon1")] == [
            (2, "vanishing"),
            (4, "healthy"),
        ]
        norms = reader.metrics("mon1")["grad_norm"]
        assert norms[:2] == [(1, 0.5), (2, 1.5)] and norms[3] == (5, 2.0)
        assert norms[2][0] == 3 and math.isnan(norms[2][1])


def test_a_run_started_again_starts_afresh_and_only_a_running_run_takes_appends(tmp_path):
    with Store(tmp_path, write=True, hold=False) as store:
        store.start("mon1", "{}")
        store.append("mon1", 1, SNAPSHOT, [{"step": 1, "grad_norm": 1.0}])
        store.finish("mon1", "interrupted", error="KeyboardInterrupt")
        assert store.get("mon1").status == "interrupted"
        with pytest.raises(
            ValueError,
            match=r"^run_id: got 'mon1'; expected a running run of .*\(it is interrupted\)$",
        ):
            store.append("mon1", 2, SNAPSHOT)
        with pytest.raises(ValueError, match=r"run_id: got 'nope'; .*\(it is not in the store\)$"):
            store.finish("nope", "done")
        with pytest.raises(
            ValueError,
            match="^status: got 'finished'; expected done, diverged, failed or interrupted$",
        ):
            store.finish("mon1", "finished")
        assert [s for s, _ in store.diagnostics("mon1")] == [1]  # the refused append left nothing
        store.start("mon1", "{}")
        run = store.get("mon1")
        assert (run.status, run.attempts, run.error, run.steps_done) == ("running", 2, None, None)
        assert store.diagnostics("mon1") == [] and store.metrics("mon1") == {}
        store.append("mon1", 3, SNAPSHOT)
        store.append("mon1", 3, SNAPSHOT | {"verdict": {"label": "healthy"}})  # replaces
        assert [(s, r["verdict"]["label"]) for s, r in store.diagnostics("mon1")] == [
            (3, "healthy")
        ]


def test_start_refuses_the_id_of_another_run_and_a_restart_forgets_the_old_attempt(tmp_path):
    with Store(tmp_path, write=True, hold=False) as store:
        store.start("mon1", '{"a": 1}')
        with store.transaction() as db:  # as an earlier attempt that diverged would leave it
            db.execute("UPDATE runs SET diverged_at = 7, skipped = 2 WHERE id = 'mon1'")
        with pytest.raises(
            StoreError,
            match=r"^run_id: got 'mon1', the id of another run in .*; expected a new id$",
        ):
            store.start("mon1", '{"a": 2}')
        assert store.get("mon1").config == {"a": 1}  # the refusal changed nothing
        store.start("mon1", '{"a": 1}')
        run = store.get("mon1")
        assert (run.diverged_at, run.skipped, run.attempts) == (None, None, 2)


def test_monitor_writers_take_the_lock_per_write_and_wait_for_a_driver(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "LOCK_WAIT", 0.1)
    a = Store(tmp_path, write=True, hold=False)
    b = Store(tmp_path, write=True, hold=False)
    a.start("a", "{}")  # two monitors (two modules, or two processes) take turns
    b.start("b", "{}")
    a.append("a", 1, SNAPSHOT)
    with Store(
        tmp_path, write=True
    ):  # a driver holds the store: a monitor's write waits, then fails
        with pytest.raises(StoreError, match=r"runs\.db: in use by another rnnlab"):
            b.append("b", 1, SNAPSHOT)
    b.append("b", 1, SNAPSHOT)
    assert [s for s, _ in a.diagnostics("b")] == [1]

    monkeypatch.setattr(store_module, "LOCK_WAIT", 5.0)
    opened = []

    def driver():
        with Store(tmp_path, write=True):
            opened.append(time.monotonic())

    with a.transaction():  # a monitor's write in progress: a driver opening waits for it
        thread = threading.Thread(target=driver)
        thread.start()
        time.sleep(0.2)
        assert not opened
    thread.join(timeout=30)  # a deadline: a lock that never frees fails here, not hangs
    assert not thread.is_alive() and len(opened) == 1
    a.close()
    b.close()


KILLED = """
import sys, time
from rnnlab.experiments.store import Store
store = Store(sys.argv[1], write=True, hold=False)
store.start("mon1", '{"monitor": {"every": 2}}')
snapshot = {"ratio": [0.5, 0.125], "label": "vanishing"}
store.append("mon1", 2, snapshot, [{"step": 2, "grad_norm": 0.1 + 0.2}])
snapshot = {"ratio": [0.25, 1e-300], "label": "healthy"}
store.append("mon1", 4, snapshot, [{"step": 4, "grad_norm": 7.5}])
print("appended", flush=True)
time.sleep(60)
"""


def test_appends_survive_sigkill_and_the_run_stays_running(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "appended\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with Store(tmp_path, write=True) as store:  # the kernel released the lock with the process
        run = store.get("mon1")
        assert (run.status, run.steps_done, run.finished_at, run.final) == ("running", 4, None, {})
        assert run.config == {"monitor": {"every": 2}}
        snapshots = store.diagnostics("mon1")
        assert [s for s, _ in snapshots] == [2, 4]
        np.testing.assert_array_equal(snapshots[0][1]["ratio"], [0.5, 0.125])
        np.testing.assert_array_equal(snapshots[1][1]["ratio"], [0.25, 1e-300])
        assert [str(a["label"]) for _, a in snapshots] == ["vanishing", "healthy"]
        assert store.metrics("mon1") == {"grad_norm": [(2, 0.1 + 0.2), (4, 7.5)]}
