"""The results store: one SQLite file, `runs.db`, in a store folder; checkpoints in runs/<id>/.

Schema (version 3; `PRAGMA user_version` holds the version, `application_id` marks the file):

    runs         id TEXT PRIMARY KEY (the config hash), config (canonical JSON), status
                 (pending | running | done | failed | diverged | interrupted), error (one line),
                 created_at / started_at / finished_at (Unix seconds), attempts, steps_done,
                 diverged_at, skipped, seconds (the last attempt's wall time in its worker),
                 final (JSON of the last evaluation's metrics)
    metrics      (run_id, kind 'train' | 'eval', name, step) PRIMARY KEY, value REAL;
                 SQLite stores no NaN, so a NULL value is a NaN (a missing value has no row)
    diagnostics  (run_id, step) PRIMARY KEY, record TEXT: the snapshot's record as compact JSON
                 ({"step", **Diagnosis.to_dict()} without the step; see snapshots.py)

The primary keys make a duplicate row impossible. One process writes at a time: a writer
holds an exclusive lock on `runs.lock` (see Store). The driver of a sweep (or `rnnlab run`)
holds it while the store is open; a GradientFlowMonitor holds it for each write only.
A writer opening an older schema migrates it, in one transaction; a reader (ls, show,
report, export) never writes and reads an older schema as it is: versions 1 and 2 differ
from 3 in how a snapshot is kept (an .npz archive, read back by snapshots.read_npz). A newer
schema, a file that is not an rnnlab store or a corrupted one raises StoreError naming the
file, and the file is left as it is.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab._atomic import DB_NAME, LOCK_NAME, RUNS_DIR
from rnnlab.experiments import snapshots

APPLICATION_ID = 0x524E4E4C  # "RNNL": tells an rnnlab store from any other SQLite file
STATUSES = ("pending", "running", "done", "failed", "diverged", "interrupted")
FINISHED = ("done", "diverged")  # a diverged run is a result, like a done one
# how long a writer waits for runs.lock: a monitor holds it for one transaction (milliseconds),
# a sweep for the whole sweep
LOCK_WAIT = 1.0


def _snapshots_as_json(db: sqlite3.Connection) -> None:
    """Version 3: each snapshot as its record in JSON, where an .npz archive was."""
    db.execute(
        """
        CREATE TABLE diagnostics_v3 (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            record TEXT NOT NULL,
            PRIMARY KEY (run_id, step)
        ) STRICT, WITHOUT ROWID
        """
    )
    for run_id, step, blob in db.execute("SELECT run_id, step, arrays FROM diagnostics"):
        try:
            record = snapshots.dumps(snapshots.read_npz(blob))
        except ValueError as err:
            raise ValueError(f"the snapshot of run {run_id} at step {step}: {err}") from None
        db.execute("INSERT INTO diagnostics_v3 VALUES (?, ?, ?)", (run_id, step, record))
    db.execute("DROP TABLE diagnostics")
    db.execute("ALTER TABLE diagnostics_v3 RENAME TO diagnostics")


# MIGRATIONS[v] takes a store from schema version v to v + 1: an SQL script, or a function
# of the open transaction where the rows themselves change form; a new version appends one.
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'running', 'done', 'failed', 'diverged')),
        error TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        steps_done INTEGER,
        diverged_at INTEGER,
        skipped INTEGER,
        seconds REAL,
        final TEXT
    ) STRICT;
    CREATE TABLE metrics (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('train', 'eval')),
        name TEXT NOT NULL,
        step INTEGER NOT NULL,
        value REAL,
        PRIMARY KEY (run_id, kind, name, step)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE diagnostics (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        arrays BLOB NOT NULL,
        PRIMARY KEY (run_id, step)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX runs_status ON runs (status);
    """,
    # 'interrupted' (a monitored run stopped by Ctrl-C): SQLite changes a CHECK constraint
    # only by rebuilding the table; rowid is copied, as runs() orders by it
    """
    CREATE TABLE runs_v2 (
        id TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'running', 'done', 'failed', 'diverged', 'interrupted')),
        error TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        steps_done INTEGER,
        diverged_at INTEGER,
        skipped INTEGER,
        seconds REAL,
        final TEXT
    ) STRICT;
    INSERT INTO runs_v2 (rowid, id, config, status, error, created_at, started_at, finished_at,
        attempts, steps_done, diverged_at, skipped, seconds, final)
        SELECT rowid, id, config, status, error, created_at, started_at, finished_at,
        attempts, steps_done, diverged_at, skipped, seconds, final FROM runs;
    DROP TABLE runs;
    ALTER TABLE runs_v2 RENAME TO runs;
    CREATE INDEX runs_status ON runs (status);
    """,
    _snapshots_as_json,
]
JSON_SNAPSHOTS = 3  # the first version that keeps snapshots as JSON


RUN_COLUMNS = (
    "id, config, status, error, created_at, started_at, finished_at, attempts, steps_done, "
    "diverged_at, skipped, seconds, final"
)


class StoreError(ValueError):
    """A store that cannot be opened or trusted; the message is one line naming the file."""


@dataclass(frozen=True)
class Run:
    """One row of the runs table (the fields are RUN_COLUMNS, in order)."""

    id: str
    config: dict[str, Any]
    status: str
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    steps_done: int | None
    diverged_at: int | None
    skipped: int | None
    seconds: float | None
    final: dict[str, float]


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _none_to_nan(value: float | None) -> float:
    return math.nan if value is None else value


class Store:
    """A results store folder: `runs.db`, and each run's checkpoints in `runs/<id>/`.

    Store(folder) opens an existing store to read: it never creates one, nor writes to one
    (an older schema is read as it is), and never waits for a writer (WAL). Store(folder,
    write=True) creates the folder and database if needed, migrates an older schema and
    writes; one process writes at a time, holding an exclusive lock on runs.lock:

    - hold=True (the sweep driver, `rnnlab run`): the lock is taken on opening and kept until
      close, because the driver reads which runs are left and then runs them;
    - hold=False (GradientFlowMonitor): the lock is taken around each write transaction only
      (start, append, finish), for milliseconds. Monitors writing one store, from one process
      or several, take turns; their run ids differ, so no two write the same rows. While a
      driver holds the store, a monitor's write waits `lock_wait` seconds (LOCK_WAIT; the
      monitor sets 0 after a refusal), then raises StoreError (the monitor keeps the
      snapshot and writes it later).

    A writer that opens waits up to LOCK_WAIT for the lock, so a monitor's write in progress
    does not refuse a driver. The kernel drops the lock when its process dies."""

    def __init__(
        self, folder: str | os.PathLike[str], write: bool = False, *, hold: bool = True
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self._lock_fd: int | None = None
        self._guest = write and not hold  # takes the lock per transaction
        self.lock_wait = LOCK_WAIT  # seconds a write waits for runs.lock before refusing
        if not write and not self.path.exists():
            raise StoreError(
                f"{self.path}: no results store here; expected a folder written by "
                "`rnnlab sweep` or `rnnlab run`"
            )
        if write:
            self.folder.mkdir(parents=True, exist_ok=True)
            if hold:
                self._lock()
        # A reader of a store whose WAL holds transactions (a writer is running, or was
        # killed) opens it read-only: closing the last read-write connection would move the
        # WAL into runs.db, and a reader writes nothing. Without a WAL, read-write: SQLite
        # then removes the -wal and -shm files it makes for the read, where a read-only
        # connection would leave them behind.
        target: str | Path = self.path
        if not write and os.path.exists(f"{self.path}-wal"):
            target = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            # a monitor may be made in one thread and stepped in another (never both at once)
            self._db = sqlite3.connect(
                target,
                isolation_level=None,
                timeout=30,
                check_same_thread=not self._guest,
                uri=isinstance(target, str),
            )
        except sqlite3.Error as err:
            self._unlock()
            raise StoreError(f"{self.path}: cannot open the results store ({err})") from None
        try:
            self._open(write)
        except sqlite3.DatabaseError as err:
            self.close()
            raise StoreError(
                f"{self.path}: corrupted or not an SQLite database ({err}); it was left as "
                "it is — move it away to start a new store"
            ) from None
        except StoreError:
            self.close()
            raise

    # --- opening ---------------------------------------------------------------------------

    def _lock(self) -> None:
        try:
            # O_NONBLOCK: a FIFO standing in for the lock file must not hang the writer
            fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o666)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise StoreError(
                    f"{self.folder / LOCK_NAME}: not a regular file; expected the store's lock "
                    "file (move it away)"
                )
        except OSError as err:
            raise StoreError(
                f"{self.folder / LOCK_NAME}: cannot open the store's lock file "
                f"({err.strerror or err})"
            ) from None
        deadline = time.monotonic() + self.lock_wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreError(
                            f"{self.path}: in use by another rnnlab sweep or run (one writer "
                            "per store); wait for it to finish or choose another --out (store=)"
                        ) from None
                    time.sleep(0.01)
        except BaseException:  # refused, or interrupted while waiting: no fd (or lock) leaks
            os.close(fd)
            raise
        self._lock_fd = fd  # the kernel drops the lock when this process dies, even by SIGKILL

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _open(self, write: bool) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        app = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        # Only a 0-byte runs.db (no pages) is what a writer killed before its first commit
        # leaves (a rolled-back first transaction leaves no page): read as an empty store,
        # and adopted by a writer. An SQLite file with pages but no rnnlab mark is not ours,
        # even with no table in it.
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        if (app != APPLICATION_ID and (tables or pages)) or (
            app == APPLICATION_ID and version == 0
        ):
            raise StoreError(f"{self.path}: an SQLite file, but not an rnnlab results store")
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {version}, written by a newer rnnlab; this one "
                f"reads versions 1 to {len(MIGRATIONS)} (upgrade rnnlab to open it)"
            )
        check = db.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            detail = " ".join(str(check[0][0]).split())  # SQLite's report may span lines
            raise StoreError(
                f"{self.path}: corrupted ({detail}); it was left as it is — move it "
                "away to start a new store"
            )
        if not write and not tables:
            # a writer that stopped before its first commit left an empty file: read it as
            # the empty store it was about to be, without writing to it
            db.close()
            db = self._db = sqlite3.connect(":memory:", isolation_level=None)
            self._migrate()
        elif write and version < len(MIGRATIONS):
            self._migrate()
        # on only now: a migration that rebuilds runs would cascade its DROP into the rows
        # that reference it
        db.execute("PRAGMA foreign_keys = ON")
        if write:  # persistent: a reader finds it set and changes nothing
            db.execute("PRAGMA journal_mode = WAL")

    def _migrate(self) -> None:
        with self.transaction() as db:
            # read again under the write lock: another process may have migrated meanwhile
            version = db.execute("PRAGMA user_version").fetchone()[0]
            # rows rewritten in a new form leave the old ones' pages free
            rewritten = version > 0 and any(callable(m) for m in MIGRATIONS[version:])
            for migration in MIGRATIONS[version:]:
                if callable(migration):
                    try:
                        migration(db)
                    except ValueError as err:  # rolled back: the store is left as it was
                        raise StoreError(
                            f"{self.path}: cannot migrate it to schema version "
                            f"{len(MIGRATIONS)} ({err}); it was left as it is"
                        ) from None
                    continue
                for statement in migration.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        if rewritten:  # give those pages back; VACUUM is atomic too
            if self._guest:
                self._lock()
            try:
                self._db.execute("VACUUM")
            finally:
                if self._guest:
                    self._unlock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: a crash inside leaves the store as it was before. With hold=False
        the writer's lock is taken for the transaction's length."""
        if self._guest:
            self._lock()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        finally:
            if self._guest:
                self._unlock()

    def close(self) -> None:
        self._db.close()
        self._unlock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def run_dir(self, run_id: str) -> Path:
        return self.folder / RUNS_DIR / run_id

    # --- writing (the driver only) ---------------------------------------------------------

    def add(self, configs: Iterable[tuple[str, str]]) -> None:
        """Add (id, config JSON) pairs as pending; ids already in the store keep their row."""
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO runs (id, config, created_at) VALUES (?, ?, ?)",
                [(run_id, config, now) for run_id, config in configs],
            )

    def mark_running(self, run_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = 'running', started_at = ?, attempts = attempts + 1, "
                "error = NULL WHERE id = ?",
                (time.time(), run_id),
            )

    def record(self, run_id: str, result: dict[str, Any]) -> None:
        """Store a worker's result (see rnnlab.experiments.runner.run_one) in one transaction.

        Earlier metrics of the run are replaced, so recording twice leaves one copy."""
        status = result["status"]
        if status not in ("done", "diverged", "failed"):
            raise ValueError(f"status: got {status!r}; expected done, diverged or failed")
        train = _metric_rows(run_id, "train", result.get("steps", []))
        evals = _metric_rows(run_id, "eval", result.get("evals", []))
        records = [
            (run_id, int(r["step"]), snapshots.dumps({k: v for k, v in r.items() if k != "step"}))
            for r in result.get("diagnostics", [])
        ]
        with self.transaction() as db:
            db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM diagnostics WHERE run_id = ?", (run_id,))
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", train + evals)
            db.executemany("INSERT INTO diagnostics VALUES (?, ?, ?)", records)
            db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, steps_done = ?, "
                "diverged_at = ?, skipped = ?, seconds = ?, final = ? WHERE id = ?",
                (
                    status,
                    result.get("error"),
                    time.time(),
                    result.get("steps_done"),
                    result.get("diverged_at"),
                    result.get("skipped"),
                    result.get("seconds"),
                    json.dumps(result.get("final") or {}),
                    run_id,
                ),
            )

    # --- a run written as it goes (GradientFlowMonitor) ------------------------------------

    def start(self, run_id: str, config: str) -> None:
        """Add the run `run_id` (config JSON) as running. An existing run of that id and
        config starts afresh (its metrics, snapshots and last outcome are dropped, as
        record() would replace them); one with another config is refused (StoreError)."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None and row[0] != config:
                raise StoreError(
                    f"run_id: got {run_id!r}, the id of another run in {self.path} (a "
                    "different config); expected a new id"
                )
            db.execute(
                "INSERT OR IGNORE INTO runs (id, config, created_at) VALUES (?, ?, ?)",
                (run_id, config, now),
            )
            db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM diagnostics WHERE run_id = ?", (run_id,))
            db.execute(
                "UPDATE runs SET status = 'running', started_at = ?, attempts = attempts + 1, "
                "error = NULL, finished_at = NULL, steps_done = NULL, diverged_at = NULL, "
                "skipped = NULL, seconds = NULL, final = NULL WHERE id = ?",
                (now, run_id),
            )

    def append(
        self,
        run_id: str,
        step: int,
        snapshot: dict[str, Any],
        steps: Sequence[dict[str, float]] = (),
    ) -> None:
        """Add one diagnostics snapshot at `step` (a JSON-safe record, as Diagnosis.to_dict()
        gives) and training metrics ({"step": s, name: value, ...} per step) to the running
        run `run_id`, in one transaction: committed when this returns, so a crash after it,
        even SIGKILL, keeps them. A snapshot or metric at a step already stored replaces it."""
        record = snapshots.dumps(snapshot)  # before the transaction: the lock is held for less
        with self.transaction() as db:
            self._still_running(db, run_id, max([step, *(int(r["step"]) for r in steps)]))
            db.execute(
                "INSERT OR REPLACE INTO diagnostics VALUES (?, ?, ?)", (run_id, step, record)
            )
            db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)",
                _metric_rows(run_id, "train", steps),
            )

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        steps: Sequence[dict[str, float]] = (),
        final: dict[str, float] | None = None,
        steps_done: int | None = None,
    ) -> None:
        """End the running run `run_id`: status done, diverged, failed or interrupted, a
        one-line error, the training metrics not appended yet, the final metrics."""
        if status not in ("done", "diverged", "failed", "interrupted"):
            raise ValueError(
                f"status: got {status!r}; expected done, diverged, failed or interrupted"
            )
        with self.transaction() as db:
            self._still_running(db, run_id, steps_done)
            db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)",
                _metric_rows(run_id, "train", steps),
            )
            now = time.time()
            db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, "
                "seconds = ? - started_at, final = ? WHERE id = ?",
                (status, error, now, now, json.dumps(final or {}), run_id),
            )

    def _still_running(self, db: sqlite3.Connection, run_id: str, steps_done: int | None) -> None:
        """Raise unless `run_id` is running; note its progress (steps done, seconds so far)."""
        cursor = db.execute(
            "UPDATE runs SET steps_done = max(coalesce(steps_done, 0), coalesce(?, 0)), "
            "seconds = ? - started_at WHERE id = ? AND status = 'running'",
            (steps_done, time.time(), run_id),
        )
        if cursor.rowcount != 1:
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            what = "it is not in the store" if row is None else f"it is {row[0]}"
            raise ValueError(
                f"run_id: got {run_id!r}; expected a running run of {self.path} ({what})"
            )

    # --- reading ---------------------------------------------------------------------------

    def runs(self, ids: Sequence[str] | None = None, status: Sequence[str] = ()) -> list[Run]:
        """Runs in the order they were added; only `ids` and only a status in `status`."""
        query, args = f"SELECT {RUN_COLUMNS} FROM runs", []
        where = []
        if status:
            where.append(f"status IN ({', '.join('?' * len(status))})")
            args += list(status)
        if ids is not None:
            where.append(f"id IN ({', '.join('?' * len(ids))})")
            args += list(ids)
        if where:
            query += " WHERE " + " AND ".join(where)
        rows = self._db.execute(query + " ORDER BY rowid", args).fetchall()
        return [self._run(row) for row in rows]

    def _run(self, row: tuple[Any, ...]) -> Run:
        fields = list(row)
        fields[1] = self._json(fields[0], "config", fields[1])
        fields[-1] = self._json(fields[0], "final", fields[-1]) if fields[-1] else {}
        return Run(*fields)

    def _json(self, run_id: str, column: str, text: Any) -> dict[str, Any]:
        """A JSON column of run `run_id`; StoreError (naming the file) if it is not a table."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise StoreError(
                f"{self.path}: corrupted: the {column} of run {run_id} is not a JSON table; "
                "it was left as it is"
            )
        return value

    def get(self, run_id: str) -> Run:
        """The run whose id is `run_id` or starts with it (a unique prefix, as in git)."""
        rows = self._db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
            (run_id, run_id + "\uffff"),
        ).fetchall()
        if len(rows) != 1:
            what = "no run" if not rows else "more than one run"
            raise StoreError(
                f"run id: got {run_id!r}; {what} in {self.path} has it (see `rnnlab ls`)"
            )
        return self._run(rows[0])

    def statuses(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT id, status FROM runs").fetchall())

    def metrics(self, run_id: str, kind: str = "train") -> dict[str, list[tuple[int, float]]]:
        """{name: [(step, value), ...]} in step order; NaN where SQLite holds NULL."""
        out: dict[str, list[tuple[int, float]]] = {}
        for name, step, value in self._db.execute(
            "SELECT name, step, value FROM metrics WHERE run_id = ? AND kind = ? "
            "ORDER BY name, step",
            (run_id, kind),
        ):
            out.setdefault(name, []).append((step, _none_to_nan(value)))
        return out

    def metric_rows(self, run_ids: Sequence[str]) -> Iterator[tuple[str, str, int, str, float]]:
        """(run_id, kind, step, name, value) for every metric of `run_ids`."""
        for run_id in run_ids:
            for kind, step, name, value in self._db.execute(
                "SELECT kind, step, name, value FROM metrics WHERE run_id = ? "
                "ORDER BY kind, step, name",
                (run_id,),
            ):
                yield run_id, kind, step, name, _none_to_nan(value)

    def diagnostics(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        """(step, record) for each snapshot of `run_id`, in step order: the record as it was
        appended (JSON-safe), from a store of any schema version."""
        db = self._db
        own = not db.in_transaction
        if own:  # one read: a writer migrating meanwhile cannot change the form under it
            db.execute("BEGIN")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            column, read = (
                ("record", snapshots.loads)
                if version >= JSON_SNAPSHOTS
                else ("arrays", snapshots.read_npz)  # not migrated: a reader writes nothing
            )
            # a snapshot over the cap is not even fetched
            rows = db.execute(
                f"SELECT step, length(CAST({column} AS BLOB)), CASE WHEN "
                f"length(CAST({column} AS BLOB)) <= ? THEN {column} END FROM diagnostics "
                "WHERE run_id = ? ORDER BY step",
                (snapshots.MAX_BYTES, run_id),
            ).fetchall()
        finally:
            if own:
                db.execute("COMMIT")
        records = []
        for step, size, value in rows:
            try:
                if value is None:
                    raise ValueError(f"{size} bytes, over the limit of {snapshots.MAX_BYTES}")
                records.append((step, read(value)))
            except (ValueError, TypeError) as err:
                raise StoreError(
                    f"{self.path}: corrupted: the snapshot of run {run_id} at step {step}: "
                    f"{err}; it was left as it is"
                ) from None
        return records

    def diagnostic_steps(self, run_id: str) -> list[int]:
        """The steps of the snapshots of `run_id`, in order, without reading them."""
        rows = self._db.execute(
            "SELECT step FROM diagnostics WHERE run_id = ? ORDER BY step", (run_id,)
        )
        return [step for (step,) in rows]


def _metric_rows(
    run_id: str, kind: str, records: Sequence[dict[str, float]]
) -> list[tuple[Any, ...]]:
    """Metrics rows of records {"step": s, name: value, ...}; NULL for NaN."""
    return [
        (run_id, kind, name, int(r["step"]), _nan_to_none(float(v)))
        for r in records
        for name, v in r.items()
        if name != "step"
    ]
