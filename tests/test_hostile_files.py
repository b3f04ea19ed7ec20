"""Hostile files: malformed checkpoints, export targets and corrupted stores, each given to
the command line as a user would, asserting what the README promises: exit code 2 (or the
documented one), a single line on stderr, no traceback, nothing written and nothing lost
(the folder's files compared byte for byte before and after).

Checkpoints are forged from a real one with their sha256 recomputed (anyone can), so the
digest never hides what the loader itself must refuse.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import click.testing
import numpy as np
import pytest
import safetensors.numpy
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab._atomic import FileError, _target, atomic_write, output_path
from rnnlab.cli.main import cli
from rnnlab.experiments import snapshots
from rnnlab.experiments.prepared import load_config
from rnnlab.experiments.store import Store, StoreError
from rnnlab.train.checkpoint import (
    MAX_HEADER,
    CheckpointError,
    _digest,
    load_checkpoint,
    read_checkpoint_header,
)

from conftest import old_store

TINY = """
[model]
hidden_size = 4
[task]
name = "adding"
T = 6
val_size = 8
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


# --- running the CLI and comparing folders ----------------------------------------------------


def invoke(*args: object, cwd: Path | None = None) -> click.testing.Result:
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, [str(a) for a in args])
    with runner.isolated_filesystem(temp_dir=cwd):
        return runner.invoke(cli, [str(a) for a in args])


def refused(result: click.testing.Result, *words: str, code: int = 2) -> str:
    """The one line a refused command printed; fails unless it exited `code`, printed one
    line starting `error: ` on stderr and no traceback."""
    stderr = result.stderr
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    for word in words:
        assert word in stderr, (word, stderr)
    return stderr


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under `root`: a file's bytes, a link's target, what else it is."""
    found: dict[str, object] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder, name)
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = ("link", os.readlink(path))
            elif path.is_fifo():
                found[key] = "fifo"
            elif path.is_dir():
                found[key] = "folder"
            else:
                found[key] = path.read_bytes()
    return found


# --- a real store to start from ---------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A store with one finished adding run (float32, H = 4), trained by `rnnlab train`."""
    root = tmp_path_factory.mktemp("hostile")
    config = root / "tiny.toml"
    config.write_text(TINY)
    result = invoke("train", config, "--out", root / "store", "--quiet")
    assert result.exit_code == 0, result.output
    return root / "store", load_config(config).run_id


@pytest.fixture
def store(trained, tmp_path) -> tuple[Path, Path, str]:
    """A copy of the trained store: (store folder, run folder, run id)."""
    src, run_id = trained
    dst = tmp_path / "store"
    shutil.copytree(src, dst, symlinks=True)
    return dst, dst / "runs" / run_id, run_id


def tensors_of(path: Path) -> tuple[dict[str, tuple[str, list[int], bytes]], dict[str, str]]:
    """A checkpoint's tensors as (dtype, shape, raw bytes) and its metadata."""
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__")
    data = blob[8 + n :]
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], data[begin:end])
    return out, meta


def forge(
    path: Path,
    tensors: dict[str, tuple[str, list[int], bytes]],
    meta: dict[str, str],
    extra_header: dict | None = None,
) -> Path:
    """Write a safetensors file of these tensors and metadata, its digest recomputed."""
    header: dict = {}
    data, offset = b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        data += raw
        offset += len(raw)
    header.update(extra_header or {})
    header["__metadata__"] = {k: v for k, v in meta.items() if k != "sha256"}
    header["__metadata__"]["sha256"] = _digest(header, data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def array(dtype: str, values: np.ndarray) -> tuple[str, list[int], bytes]:
    return dtype, list(values.shape), values.tobytes()


def with_config(meta: dict[str, str], change) -> dict[str, str]:
    config = json.loads(meta["config"])
    change(config)
    return {**meta, "config": json.dumps(config)}


# --- malformed checkpoints: diagnose and sample refuse them, touching nothing ------------------


def _malformed(last: Path) -> dict[str, tuple[bytes | None, str]]:
    """name -> (the file's bytes, a word its error must hold); built from a real checkpoint."""
    blob = last.read_bytes()
    t, meta = tensors_of(last)
    W = np.frombuffer(t["params/W_0"][2], "<f4").reshape(t["params/W_0"][1])
    tmp = last.parent / ".forge.safetensors"
    cases: dict[str, tuple[bytes | None, str]] = {}

    def add(name: str, word: str, tensors=None, metadata=None, extra=None) -> None:
        forge(tmp, t if tensors is None else tensors, meta if metadata is None else metadata, extra)
        cases[name] = (tmp.read_bytes(), word)

    cases["empty"] = (b"", "truncated")
    cases["truncated"] = (blob[: len(blob) // 2], "truncated")
    cases["one byte short"] = (blob[:-1], "truncated")
    cases["garbage"] = (bytes(range(256)) * 4, "header")
    cases["header length 2^40"] = ((1 << 40).to_bytes(8, "little") + blob[8:], "over the limit")
    big = json.dumps({"__metadata__": {"format": "rnnlab.checkpoint", "pad": "x" * MAX_HEADER}})
    cases["header over 1 MiB"] = (len(big).to_bytes(8, "little") + big.encode(), "over the limit")
    deep = {"params/W_0": {"dtype": "F32", "shape": list(W.shape), "data_offsets": [0, W.nbytes]}}
    deep_text = json.dumps(deep)[:-2] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}}"
    cases["header nested 200,000 deep"] = (
        len(deep_text).to_bytes(8, "little") + deep_text.encode() + W.tobytes(),
        "recursion limit",
    )
    add(
        "config nested 200,000 deep",
        "deep",
        metadata={**meta, "config": "[" * 200_000 + "]" * 200_000},
    )
    add(
        "config nested 40 deep",
        "deeper than",
        metadata=with_config(meta, lambda c: c.update(x=json.loads("[" * 40 + "]" * 40))),
    )
    add("config not a table", "config", metadata={**meta, "config": "[1, 2]"})
    add("rng garbage", "rng", metadata={**meta, "rng": '{"bit_generator": "PCG64", "state": 3}'})
    add("rng of an unknown generator", "rng", metadata={**meta, "rng": '{"bit_generator": "Evil"}'})
    add("step negative", "step", metadata={**meta, "step": "-1"})
    add("step float", "step", metadata={**meta, "step": "2.5"})
    add("step of 5000 digits", "step", metadata={**meta, "step": "9" * 5000})
    add(
        "not an rnnlab checkpoint",
        "not an rnnlab checkpoint",
        metadata={k: v for k, v in meta.items() if k != "format"},
    )
    for dtype, values in (
        ("I32", W.astype("<i4")),
        ("BOOL", (W > 0)),
        ("F16", W.astype("<f2")),
        ("F64", W.astype("<f8")),
        ("BF16", (W.view("<u4") >> 16).astype("<u2")),
        ("U8", W.view("<u1")),
    ):
        add(f"params/W_0 as {dtype}", dtype, tensors={**t, "params/W_0": array(dtype, values)})
    add(
        "params/W_0 with a NaN",
        "NaN",
        tensors={**t, "params/W_0": array("F32", np.where(W == W[0, 0], np.nan, W).astype("<f4"))},
    )
    add(
        "params/W_0 of another shape",
        "shape",
        tensors={**t, "params/W_0": array("F32", np.zeros((5, 5), "<f4"))},
    )
    add(
        "params/W_0 missing",
        "missing W_0",
        tensors={k: v for k, v in t.items() if k != "params/W_0"},
    )
    add(
        "params/Z extra",
        "unexpected Z",
        tensors={**t, "params/Z": array("F32", np.zeros(3, "<f4"))},
    )
    add(
        "a tensor outside the groups",
        "unexpected tensor",
        tensors={**t, "evil": array("F32", np.zeros(3, "<f4"))},
    )
    add(
        "opt/step a vector",
        "opt/step",
        tensors={**t, "opt/step": array("I64", np.array([1, 2], "<i8"))},
    )
    add(
        "opt/step negative",
        "opt/step",
        tensors={**t, "opt/step": array("I64", np.array(-1, "<i8"))},
    )
    add("opt/step float", "opt/step", tensors={**t, "opt/step": array("F64", np.array(3.0, "<f8"))})
    add(
        "opt/step past the step",
        "opt/step",
        tensors={**t, "opt/step": array("I64", np.array(10**6, "<i8"))},
    )
    slot = next(k for k in t if k.startswith("opt/") and k.count("/") == 2)
    add(
        "an optimiser slot of another shape",
        slot,
        tensors={**t, slot: array("F32", np.zeros(2, "<f4"))},
    )
    add(
        "config with task.path = /dev/zero",
        "/dev/zero",
        metadata=with_config(
            meta, lambda c: c.__setitem__("task", {"name": "charlm", "path": "/dev/zero", "T": 5})
        ),
    )
    add(
        "config with an unknown key",
        "unknown key",
        metadata=with_config(meta, lambda c: c.__setitem__("evil", 1)),
    )
    add(
        "config with a model key that no field or cell has",
        "model.evil: unknown key",
        metadata=with_config(meta, lambda c: c["model"].__setitem__("evil", 1)),
    )
    add(
        "config with hidden_size -1",
        "hidden_size",
        metadata=with_config(meta, lambda c: c["model"].__setitem__("hidden_size", -1)),
    )
    tmp.unlink()
    return cases


def test_malformed_checkpoints_are_one_line_and_touch_nothing(store, tmp_path):
    """Each malformed checkpoint, as a file argument and as a run's last.safetensors (by run
    folder and by id): diagnose and sample exit 2 with one line naming what is wrong."""
    root, run_dir, run_id = store
    last = run_dir / "last.safetensors"
    cases = _malformed(last)
    assert len(cases) >= 35
    genuine = last.read_bytes()
    for name, (blob, word) in cases.items():
        last.write_bytes(blob)
        before = snapshot(root)
        for args in (
            ("diagnose", last),
            ("sample", last),
            ("diagnose", run_id[:6], "--store", root),
            ("diagnose", run_dir, "--json"),
        ):
            line = refused(invoke(*args), word)
            assert str(last) in line or "target" in line, (name, line)
            assert snapshot(root) == before, (name, args)
    last.write_bytes(genuine)
    assert invoke("diagnose", last).exit_code == 0  # the genuine one still loads


def test_the_report_of_a_run_reads_only_the_checkpoint_s_header(store):
    """`rnnlab report RUN_DIR` reads the config from last.safetensors: a header it cannot
    trust is one line and no report; a config naming /dev/zero as its text is not read (the
    baseline is left out) and the report is written, in seconds."""
    root, run_dir, _ = store
    last = run_dir / "last.safetensors"
    t, meta = tensors_of(last)
    for blob, word in (
        (b"\x00" * 7, "truncated"),
        ((1 << 40).to_bytes(8, "little"), "over the limit"),
    ):
        last.write_bytes(blob)
        changed = snapshot(root)
        refused(invoke("report", run_dir), word)
        assert snapshot(root) == changed  # no report.html, nothing else
    zero = with_config(
        meta, lambda c: c.__setitem__("task", {"name": "charlm", "path": "/dev/zero"})
    )
    forge(last, t, zero)
    changed = snapshot(root)
    result = invoke("report", run_dir)
    assert result.exit_code == 0, result.output
    after = snapshot(root)
    assert set(after) - set(changed) == {f"runs/{run_dir.name}/report.html"}
    assert {k: v for k, v in after.items() if k in changed} == changed


def test_checkpoint_links_and_special_files_are_refused(store, tmp_path):
    """A link to nothing, a link loop, a FIFO (which would block a plain open), /dev/zero and
    a folder, named as the checkpoint or standing in the run folder as last.safetensors."""
    root, run_dir, run_id = store
    last = run_dir / "last.safetensors"
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.safetensors"
    os.symlink(loop, loop)
    dangling = tmp_path / "gone.safetensors"
    os.symlink(tmp_path / "nowhere", dangling)
    folder = tmp_path / "dir.safetensors"
    folder.mkdir()
    before = snapshot(tmp_path)
    for target in (fifo, loop, dangling, folder, "/dev/zero"):
        for command in ("diagnose", "sample"):
            refused(invoke(command, target), "target")
    assert snapshot(tmp_path) == before
    # in the run folder
    last.unlink()
    for make in (
        lambda: os.symlink(last, last),
        lambda: os.symlink(run_dir / "nowhere", last),
        lambda: os.mkfifo(last),
        lambda: os.symlink("/dev/zero", last),
    ):
        make()
        before = snapshot(root)
        refused(invoke("diagnose", run_id, "--store", root), "not a regular file")
        refused(invoke("sample", run_dir), "not a regular file")
        refused(invoke("report", run_dir))
        assert snapshot(root) == before
        last.unlink()
    # the loader itself says what it is
    for path, word in (
        (fifo, "FIFO"),
        (loop, "loop"),
        (dangling, "link to nothing"),
        (folder, "folder"),
    ):
        with pytest.raises(CheckpointError, match=word):
            load_checkpoint(path)


@pytest.mark.parametrize(("key", "value"), [("model.hidden_size", 10**9), ("task.val_size", 10**9)])
def test_a_checkpoint_s_config_with_huge_sizes_is_one_line(store, key, value):
    """The config in a checkpoint decides what is allocated: it passes the same validation
    and budget as a config file. Run in a process with 4 GiB of address space, so a
    regression fails fast instead of filling the machine."""
    root, run_dir, _ = store
    last = run_dir / "last.safetensors"
    t, meta = tensors_of(last)
    section, field = key.split(".")
    forge(last, t, with_config(meta, lambda c: c[section].__setitem__(field, value)))
    before = snapshot(root)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "rnnlab", "diagnose", str(last)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert field in result.stderr
    assert snapshot(root) == before


# --- resuming from a hostile last.safetensors --------------------------------------------------


def _interrupted(root: Path, run_id: str) -> None:
    with Store(root, write=True) as s:
        s.mark_running(run_id)  # as a crash leaves it: the rerun resumes from last


def test_resume_from_a_bad_last_checkpoint_fails_the_run_and_rewrites_nothing(store, tmp_path):
    """Rerunning `rnnlab train` on an interrupted run whose last.safetensors is a link to
    nothing, a loop, a FIFO, stored in another dtype or with a BF16 tensor: the run is
    failed (exit 1, the documented code for a failed run) with a one-line CheckpointError in
    the store; history.json and the checkpoints stay byte for byte, and nothing restarts
    from step 0."""
    root, run_dir, run_id = store
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    last = run_dir / "last.safetensors"
    t, meta = tensors_of(last)
    genuine = last.read_bytes()
    W = np.frombuffer(t["params/W_0"][2], "<f4").reshape(t["params/W_0"][1])
    makers = {
        "loop": (lambda: os.symlink(last, last), "loop"),
        "link to nothing": (lambda: os.symlink(run_dir / "gone", last), "link to nothing"),
        "FIFO": (lambda: os.mkfifo(last), "FIFO"),
        "float64": (
            lambda: forge(last, {**t, "params/W_0": array("F64", W.astype("<f8"))}, meta),
            "F64",
        ),
        "BF16": (
            lambda: forge(
                last, {**t, "params/W_0": array("BF16", (W.view("<u4") >> 16).astype("<u2"))}, meta
            ),
            "BF16",
        ),
        "opt/step float": (
            lambda: forge(last, {**t, "opt/step": array("F64", np.array(2.0))}, meta),
            "opt/step",
        ),
        "no optimiser state": (
            lambda: forge(last, {k: v for k, v in t.items() if not k.startswith("opt/")}, meta),
            "optimiser state",
        ),
    }
    for name, (make, word) in makers.items():
        last.unlink()
        make()
        _interrupted(root, run_id)
        before = snapshot(run_dir)
        result = invoke("train", config, "--out", root, "--quiet")
        assert result.exit_code == 1, (name, result.output)
        assert "Traceback" not in result.output
        first = result.stdout.splitlines()[0]
        assert first.startswith(f"run {run_id}: failed; CheckpointError: ") and word in first, first
        assert snapshot(run_dir) == before, name
        with Store(root) as s:
            assert s.get(run_id).error == first.split("; ", 1)[1]
    last.unlink()
    last.write_bytes(genuine)


# --- export targets ---------------------------------------------------------------------------


def test_export_refuses_targets_it_must_not_replace(store, tmp_path):
    root, run_dir, _ = store
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    to_fifo = tmp_path / "to-fifo.csv"
    os.symlink(fifo, to_fifo)
    dangling = tmp_path / "dangling.csv"
    os.symlink(tmp_path / "nowhere" / "x.csv", dangling)
    loop = tmp_path / "loop.csv"
    os.symlink(loop, loop)
    other_db = tmp_path / "backup.db"
    shutil.copy(root / "runs.db", other_db)
    targets = {
        str(root / "runs.db"): "store",
        str(root / "runs.lock"): "store",
        str(run_dir / "history.json"): "run folder",
        str(run_dir / "last.safetensors"): "run folder",
        str(other_db): "store",
        "": "empty",
        "   ": "empty",
        str(tmp_path): "folder",
        str(root): "folder",
        str(fifo): "FIFO",
        str(to_fifo): "FIFO",
        str(dangling): "link to nothing",
        str(loop): "loop",
        str(tmp_path / "no-such-folder" / "x.csv"): "no existing folder",
        "/proc/self/rnnlab-export.csv": "/proc",
        "/proc/self/status": "/proc",
    }
    before = snapshot(tmp_path)
    for target, word in targets.items():
        for extra in ((), ("--steps",)):
            refused(invoke("export", root, "--csv", target, *extra), word)
            assert snapshot(tmp_path) == before, target
    assert fifo.is_fifo() and os.path.islink(to_fifo)
    # and the same file names for a report's --out
    for target in (root / "runs.db", run_dir / "history.json", fifo, tmp_path):
        refused(invoke("report", root, "--out", target), "--out")
        assert snapshot(tmp_path) == before
    # a good target still works
    result = invoke("export", root, "--csv", tmp_path / "runs.csv")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs.csv").read_text().startswith("id,status")


def test_the_writer_itself_refuses_what_it_must_not_replace(tmp_path):
    """atomic_write (checkpoints, histories, reports, figures, exports) refuses a FIFO, a
    device, a folder, a link to nothing, a loop and a store's own files, and names the path;
    a link to a regular file is written through."""
    store = tmp_path / "store"
    store.mkdir()
    sqlite3.connect(store / "runs.db").execute("CREATE TABLE t (x)").connection.close()
    (store / "runs.lock").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "none", tmp_path / "dangling")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    before = snapshot(tmp_path)
    for name in (
        "fifo",
        "dangling",
        "loop",
        "store",
        "store/runs.db",
        "store/runs.lock",
        "store/runs.db-wal",
    ):
        with pytest.raises(FileError) as e:
            atomic_write(tmp_path / name, b"x")
        assert str(tmp_path / name) in str(e.value) and "\n" not in str(e.value)
        assert isinstance(e.value, OSError) and isinstance(e.value, ValueError)
    # a device, as /dev/stdout is for root: checked, never written (a regression here would
    # replace the machine's /dev/null)
    with pytest.raises(FileError, match="character device"):
        _target(Path("/dev/null"))
    with pytest.raises(FileError, match="character device"):
        output_path("--csv", "/dev/null")
    assert snapshot(tmp_path) == before
    (tmp_path / "real.txt").write_text("old")
    os.symlink(tmp_path / "real.txt", tmp_path / "link.txt")
    atomic_write(tmp_path / "link.txt", b"new")
    assert (tmp_path / "real.txt").read_text() == "new" and os.path.islink(tmp_path / "link.txt")


def test_a_dead_writer_s_temp_file_is_removed_by_the_next_write(tmp_path):
    """A writer killed mid-write leaves `.history.json.<hex>.tmp`; the next write into that
    folder removes it, and any other dead writer's temp file there. A temp file a live writer
    holds (locked) is left alone, and so are files not named as the writer names them."""
    import fcntl

    dead = [tmp_path / f".{name}.{os.urandom(16).hex()}.tmp" for name in ("history.json", "x.csv")]
    live = tmp_path / f".history.json.{'b' * 32}.tmp"
    kept = [live, tmp_path / ".notes.tmp", tmp_path / f".x.{'a' * 31}.tmp"]
    for path in dead + kept:
        path.write_bytes(b"cut short")
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        atomic_write(tmp_path / "history.json", b"{}")
    finally:
        os.close(held)
    assert sorted(tmp_path.iterdir()) == sorted([tmp_path / "history.json", *kept])


def test_a_killed_training_s_temp_file_goes_when_the_run_is_next_written(store, tmp_path):
    """The same through `rnnlab train`: an interrupted run with a dead writer's temp files
    in its folder resumes, and the folder ends with none."""
    root, run_dir, run_id = store
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    for name in ("history.json", "last.safetensors", "best.safetensors"):
        (run_dir / f".{name}.{os.urandom(16).hex()}.tmp").write_bytes(b"cut short")
    _interrupted(root, run_id)
    run = invoke("train", config, "--out", root, "--quiet")
    assert run.exit_code == 0, run.output
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "best.safetensors",
        "history.json",
        "last.safetensors",
    ]


def test_output_path_names_the_argument_value_and_what_is_allowed(tmp_path):
    with pytest.raises(FileError) as e:
        output_path("--csv", "")
    assert str(e.value).startswith("--csv: got '', an empty path; expected a file")
    assert output_path("--csv", tmp_path / "new.csv") == tmp_path / "new.csv"


# --- stores -------------------------------------------------------------------------------------


def _store_cases(root: Path, run_id: str) -> dict[str, tuple[object, str | None]]:
    """name -> (how to corrupt runs.db, the word its refusal holds, or None: read as empty)."""

    def zero(db: Path) -> None:
        db.write_bytes(b"")

    def garbage(db: Path) -> None:
        db.write_bytes(os.urandom(4096))

    def empty_sqlite(db: Path) -> None:
        db.unlink()
        c = sqlite3.connect(db)
        c.execute("CREATE TABLE t (x)")
        c.execute("DROP TABLE t")
        c.close()

    def foreign(db: Path) -> None:
        db.unlink()
        c = sqlite3.connect(db)
        c.execute("CREATE TABLE runs (x)")
        c.close()

    def newer(db: Path) -> None:
        c = sqlite3.connect(db)
        c.execute("PRAGMA user_version = 99")
        c.close()

    def half(db: Path) -> None:
        blob = db.read_bytes()
        db.write_bytes(blob[: len(blob) // 2])

    def bad_config(db: Path) -> None:
        c = sqlite3.connect(db)
        c.execute(
            "UPDATE runs SET config = ? WHERE id = ?", ("[" * 100_000 + "]" * 100_000, run_id)
        )
        c.commit()
        c.close()

    return {
        "0-byte": (zero, None),
        "empty SQLite": (empty_sqlite, "not an rnnlab results store"),
        "garbage": (garbage, "runs.db"),
        "foreign SQLite": (foreign, "not an rnnlab results store"),
        "newer schema": (newer, "schema version 99"),
        "truncated": (half, "runs.db"),
        "a config nested 100,000 deep": (bad_config, "config"),
    }


def test_corrupted_stores_are_one_line_and_readers_write_nothing(store, tmp_path):
    """ls, show, export, report and diagnose on each corrupted runs.db: one line, exit 2,
    the store's files as they were; a 0-byte runs.db (what a writer killed before its first
    commit leaves) reads as an empty store and stays 0 bytes (a reader writes no schema into
    it); an SQLite file without rnnlab's mark, even one with no table, is not a store."""
    root, _, run_id = store
    genuine = (root / "runs.db").read_bytes()
    csv = tmp_path / "out.csv"
    for name, (corrupt, word) in _store_cases(root, run_id).items():
        (root / "runs.db").write_bytes(genuine)
        corrupt(root / "runs.db")
        before = snapshot(root)
        if word is None:
            listed = invoke("ls", root)
            assert listed.exit_code == 0 and "0 of 0 runs" in listed.stdout, (name, listed.output)
            refused(invoke("show", run_id[:6], root), "no run")
            exported = invoke("export", root, "--csv", csv)
            assert exported.exit_code == 0 and "0 runs" in exported.stdout, exported.output
            csv.unlink()
        else:
            for args in (
                ("ls", root),
                ("show", run_id[:6], root),
                ("export", root, "--csv", csv),
                ("report", root),
                ("diagnose", run_id[:6], "--store", root),
            ):
                refused(invoke(*args), word)
            assert not csv.exists()
        assert snapshot(root) == before, name


def test_a_writer_adopts_only_a_0_byte_runs_db(store, tmp_path):
    """`rnnlab train` into a store whose runs.db is an SQLite file without rnnlab's mark (even
    empty), garbage or a newer schema: one line, exit 2, the file as it was (a writer takes
    runs.lock, an empty lock file, before it reads runs.db). A 0-byte runs.db is adopted."""
    root, _, run_id = store
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    genuine = (root / "runs.db").read_bytes()
    for name, (corrupt, word) in _store_cases(root, run_id).items():
        (root / "runs.db").write_bytes(genuine)
        corrupt(root / "runs.db")
        before = snapshot(root)
        if word is None:
            continue
        refused(invoke("train", config, "--out", root, "--quiet"), word)
        assert snapshot(root) == before, name
    (root / "runs.db").write_bytes(genuine)
    lock = root / "runs.lock"
    lock.unlink()
    for make, remove in (
        (lock.mkdir, lock.rmdir),
        (lambda: os.mkfifo(lock), lock.unlink),
        (lambda: os.symlink(lock, lock), lock.unlink),
    ):
        make()
        before = snapshot(root)
        refused(invoke("train", config, "--out", root, "--quiet"), "runs.lock")
        assert snapshot(root) == before
        remove()
    (root / "runs.db").write_bytes(b"")
    trained = invoke("train", config, "--out", root, "--quiet")
    assert trained.exit_code == 0 and "done" in trained.stdout, trained.output


def _wal_store(root: Path, run_id: str) -> None:
    """A store whose writer was killed (SIGKILL-like, os._exit) after committing an update
    that is still only in the WAL."""
    code = (
        "import os, sys\n"
        "from rnnlab.experiments.store import Store\n"
        "s = Store(sys.argv[1], write=True)\n"
        "s._db.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "s.mark_running(sys.argv[2])\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(root), run_id], check=True, timeout=60)


def test_a_store_with_a_wal_is_read_without_writing_it(store):
    """A writer killed with transactions only in its WAL, whole or with its last frame cut:
    ls reads what was committed, and neither runs.db nor the WAL changes (the -shm file is
    SQLite's shared-memory index, rebuilt by any reader)."""
    root, _, run_id = store
    _wal_store(root, run_id)
    wal = root / "runs.db-wal"
    assert wal.stat().st_size > 0
    for cut in (0, 100):
        if cut:
            wal.write_bytes(wal.read_bytes()[:-cut])
        before = {k: v for k, v in snapshot(root).items() if not k.endswith("-shm")}
        listed = invoke("ls", root)
        assert listed.exit_code == 0, listed.output
        assert ("running" in listed.stdout) == (cut == 0)  # a cut commit frame is not committed
        shown = invoke("show", run_id[:6], root)
        assert shown.exit_code == 0, shown.output
        after = {k: v for k, v in snapshot(root).items() if not k.endswith("-shm")}
        assert after == before


def _deflate_bomb(size: int) -> bytes:
    """An .npz whose one array is `size` bytes of zeros: a few hundred KiB at rest."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("flow/lag/profile.npy", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f8", "fortran_order": False, "shape": (size // 8,)}
            )
            member.write(header.getvalue())
            chunk = b"\x00" * (1 << 22)
            for _ in range(size // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def _forged_npy() -> bytes:
    """An .npz whose .npy header claims 2^40 floats and holds 8 bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        npy = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            npy, {"descr": "<f8", "fortran_order": False, "shape": (1 << 40,)}
        )
        archive.writestr("flow/lag/profile.npy", npy.getvalue() + b"\x00" * 8)
    return buffer.getvalue()


def _old_store(root: Path, run_id: str, blob: bytes) -> None:
    """runs.db at schema version 2 (snapshots as .npz), holding `blob` as a snapshot."""

    new = root.parent / "v3"
    shutil.move(root, new)
    old_store(new, root, version=2)
    shutil.move(new / "runs", root / "runs")
    c = sqlite3.connect(root / "runs.db")
    c.execute("INSERT OR REPLACE INTO diagnostics VALUES (?, ?, ?)", (run_id, 999, blob))
    c.commit()
    c.close()


@pytest.mark.parametrize("what", ["deflate bomb", "forged .npy header", "not a zip"])
def test_old_snapshots_are_read_bounded(store, what):
    """A schema-2 store's .npz snapshot that unpacks to 128 MiB (over the 64 MiB cap), claims
    2^40 floats, or is no archive: show lists its steps without unpacking anything; report
    and the migration a writer would run are one line, and the store is left as it was."""
    root, _, run_id = store
    blob = {
        "deflate bomb": lambda: _deflate_bomb(128 << 20),
        "forged .npy header": _forged_npy,
        "not a zip": lambda: b"PK\x03\x04" + os.urandom(100),
    }[what]()
    assert len(blob) < 1 << 20
    _old_store(root, run_id, blob)
    before = snapshot(root)
    shown = invoke("show", run_id[:6], root)
    assert shown.exit_code == 0 and "999" in shown.stdout, shown.output
    refused(invoke("report", root), "snapshot", "step 999")
    with pytest.raises(StoreError, match="cannot migrate") as e:
        Store(root, write=True)
    assert "\n" not in str(e.value)
    assert {k: v for k, v in snapshot(root).items() if k != "runs.lock"} == {
        k: v for k, v in before.items() if k != "runs.lock"
    }


def test_json_snapshots_over_the_cap_or_too_deep_are_not_read(store):
    """A schema-3 snapshot nested 100,000 deep, or over the 64 MiB cap (never fetched)."""
    root, _, run_id = store

    def sql(statement: str, *args: object) -> None:
        c = sqlite3.connect(root / "runs.db")
        c.execute(statement, args)
        c.commit()
        c.close()

    for step, record in (
        (997, "[" * 100_000 + "]" * 100_000),
        (998, " " * (snapshots.MAX_BYTES + 1)),
    ):
        sql("INSERT INTO diagnostics VALUES (?, ?, ?)", run_id, step, record)
        before = snapshot(root)
        refused(invoke("report", root), f"step {step}")
        assert snapshot(root) == before
        sql("DELETE FROM diagnostics WHERE step = ?", step)


def test_history_files_that_are_not_histories(store):
    """history.json deep, not a table, of the wrong shape, or a FIFO: report and diagnose
    say so in one line and write nothing."""
    root, run_dir, _ = store
    history = run_dir / "history.json"
    for text, word in (
        ("[" * 100_000 + "]" * 100_000, "history"),
        ("[]", "history"),
        ('{"steps": 3}', "steps"),
        ('{"steps": [{"loss": 1}]}', "steps"),
        ('{"status": "exploded"}', "status"),
        ('{"evil": 1}', "history"),
    ):
        history.write_text(text)
        before = snapshot(root)
        refused(invoke("report", run_dir), word)
        refused(invoke("diagnose", run_dir), word)
        assert snapshot(root) == before
    history.unlink()
    os.mkfifo(history)
    before = snapshot(root)
    refused(invoke("diagnose", run_dir), "history")
    assert snapshot(root) == before


def test_charlm_texts_that_are_not_files(tmp_path):
    """A charlm task's path is read only if it is a regular file within the cap."""
    from rnnlab.tasks.charlm import MAX_TEXT_BYTES, CharLMTask

    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(MAX_TEXT_BYTES + 1)  # sparse: nothing is written to disk
    for path, word in (
        ("/dev/zero", "character device"),
        (fifo, "FIFO"),
        (tmp_path, "folder"),
        (big, "over the limit"),
    ):
        with pytest.raises(ValueError, match=word) as e:
            CharLMTask(path=path)
        assert str(e.value).startswith("path: got ") and "\n" not in str(e.value)


# --- fuzzing the loader -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def genuine(trained) -> bytes:
    root, run_id = trained
    return (root / "runs" / run_id / "last.safetensors").read_bytes()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_damage_to_a_checkpoint_is_refused_in_one_line_or_changes_nothing(
    genuine, tmp_path, data
):
    """Flip, overwrite, cut or extend bytes anywhere (header, data): the loader raises
    CheckpointError (one line naming the file), never anything else, and what it returns,
    if anything, is what was saved."""
    blob = bytearray(genuine)
    how = data.draw(st.sampled_from(["flip", "overwrite", "cut", "extend"]))
    if how == "flip":
        for i in data.draw(st.lists(st.integers(0, len(blob) - 1), min_size=1, max_size=4)):
            blob[i] ^= data.draw(st.integers(1, 255))
    elif how == "overwrite":
        start = data.draw(st.integers(0, len(blob) - 1))
        blob[start : start + 8] = data.draw(st.binary(min_size=1, max_size=8))
    elif how == "cut":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        blob += data.draw(st.binary(min_size=1, max_size=64))
    path = tmp_path / f"fuzz-{os.getpid()}.safetensors"
    path.write_bytes(bytes(blob))
    original = safetensors.numpy.load(genuine)
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as err:
        assert str(path) in str(err) and "\n" not in str(err)
    else:
        loaded = {f"params/{k}": v for k, v in ckpt.params.items()}
        loaded |= {f"opt/{k}": v for k, v in ckpt.opt_state.items()}
        assert loaded.keys() == original.keys()
        for k, v in original.items():
            assert loaded[k].dtype == v.dtype and loaded[k].tobytes() == v.tobytes()
    try:
        read_checkpoint_header(path)
    except CheckpointError as err:
        assert "\n" not in str(err)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=2048))
def test_any_bytes_as_runs_db_are_a_store_error_or_an_empty_store(tmp_path, blob):
    folder = tmp_path / f"s{os.getpid()}"
    folder.mkdir(exist_ok=True)
    (folder / "runs.db").write_bytes(blob)
    try:
        with Store(folder) as s:
            assert s.runs() == []
    except StoreError as err:
        assert "\n" not in str(err) and "runs.db" in str(err)
    assert (folder / "runs.db").read_bytes() == blob
    assert sorted(p.name for p in folder.iterdir()) == ["runs.db"]


def test_a_checkpoint_written_before_cells_owned_their_options_still_loads(store):
    """Checkpoints from before the registry carry nonlinearity and forget_bias for every
    cell (ignored where the cell had none): `diagnose` reads them as they are."""
    _, run_dir, _ = store
    last = run_dir / "last.safetensors"
    tensors, meta = tensors_of(last)

    def old_schema(config: dict) -> None:
        config["model"] |= {"forget_bias": None}  # an RNN's config carried the LSTM's option

    forge(last, tensors, with_config(meta, old_schema))
    result = invoke("diagnose", last)
    assert result.exit_code == 0, result.output
    assert "Diagnosis:" in result.output
