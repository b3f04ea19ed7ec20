"""The results store: schema, exact values, no duplicates, migration, clear errors."""

from __future__ import annotations

import json
import math
import sqlite3
import time

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.experiments import store as store_module
from rnnlab.experiments.store import Store, StoreError, pack_arrays, select, unpack_arrays

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
        assert store.schema_version == len(store_module.MIGRATIONS) == 1
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


def test_a_second_writer_is_refused_while_the_first_holds_the_store(tmp_path):
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


def test_an_older_schema_migrates_on_open_and_keeps_its_runs(tmp_path, monkeypatch):
    filled(tmp_path).close()
    migration = "ALTER TABLE runs ADD COLUMN note TEXT; CREATE INDEX runs_note ON runs (note)"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, migration])
    with Store(tmp_path) as store:
        assert store.schema_version == 2
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


def test_snapshots_are_npz_without_pickle():
    blob = pack_arrays(
        {
            "flow": {"lag": [1, 2, 3], "norm": [1.0, 0.5, 0.25]},
            "notes": None,
            "remedies": [{"name": "clip"}, {"name": "lstm"}],
            "ok": True,
        }
    )
    arrays = unpack_arrays(blob)
    assert sorted(arrays) == ["flow/lag", "flow/norm", "ok", "remedies/0/name", "remedies/1/name"]
    assert arrays["remedies/1/name"] == "lstm" and arrays["ok"]
    assert arrays["flow/norm"].dtype == np.float64 and arrays["flow/lag"].dtype.kind == "i"
    time.sleep(1.1)  # zip members carry a time stamp; ours is fixed
    assert (
        pack_arrays(
            {
                "flow": {"lag": [1, 2, 3], "norm": [1.0, 0.5, 0.25]},
                "notes": None,
                "remedies": [{"name": "clip"}, {"name": "lstm"}],
                "ok": True,
            }
        )
        == blob
    )
    with pytest.raises(ValueError, match="ragged"):
        pack_arrays({"bad": [[1, 2], [3]]})


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


def test_non_finite_numbers_in_a_snapshot_come_back_as_nan():
    arrays = unpack_arrays(pack_arrays({"log_norm": [[0.0, None], [-1.5, 2.0]], "x": None}))
    np.testing.assert_array_equal(arrays["log_norm"], [[0.0, np.nan], [-1.5, 2.0]])
    assert "x" not in arrays
