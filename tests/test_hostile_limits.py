"""Hostile sizes and hangs: huge numbers in a config, files that never end or nest without
end, grids of a million points, a Ray address where nothing answers. Each is one line on
stderr, exit code 2, no traceback, nothing written, and it comes at once, before any work."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.cli.main import cli
from rnnlab.experiments import executors, sweep
from rnnlab.experiments.config import MAX_DEPTH, ConfigError, parse
from rnnlab.experiments.limits import (
    MEMORY_LIMIT_ENV,
    Limit,
    check_budget,
    estimate,
    parse_size,
    size,
    sizes,
)
from rnnlab.experiments.prepared import build_task, prepare
from rnnlab.experiments.sweep import expand

LIMIT = "8GiB"  # the tests' machine: the same verdicts wherever they run

BASE = """\
[model]
cell = "lstm"
hidden_size = 16
[task]
name = "adding"
T = 10
val_size = 32
[train]
steps = 5
batch_size = 4
"""


@pytest.fixture(autouse=True)
def _limit(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, LIMIT)


def _toml(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value).lower()


def with_values(text: str, **sections: dict[str, object]) -> str:
    """BASE with some fields set (or added), section by section."""
    data = tomllib.loads(text)
    for section, fields in sections.items():
        data.setdefault(section, {}).update(fields)
    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items())
        for name, table in data.items()
    )


def snapshot(folder: Path) -> dict[str, tuple[int, int]] | None:
    """Every file under `folder` with its size and mtime; None if it does not exist."""
    if not folder.exists():
        return None
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def refused(args: list[str], out: Path, before: object = None) -> str:
    """Run the CLI in-process; assert exit 2, one line on stderr, no traceback, nothing
    written under `out`; return the line."""
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert snapshot(out) == before  # absent, or as it was
    return result.stderr.removeprefix("error: ").rstrip("\n")


def config_file(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- a run's memory, checked before anything is built --------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"model": {"hidden_size": 30000}},
            "model.hidden_size: got 30000; the run would need ~",
        ),
        ({"model": {"hidden_size": 10**9}}, "model.hidden_size: got 1000000000; the run would"),
        ({"model": {"num_layers": 10**6}}, "model.num_layers: got 1000000; the run would need"),
        ({"task": {"T": 10**9}}, "task.T: got 1000000000; the run would need"),
        ({"task": {"T": 10**400}}, "task.T: got 1000000000000"),  # a TOML int of 401 digits
        ({"task": {"val_size": 10**9}}, "task.val_size: got 1000000000; the run would need"),
        ({"train": {"batch_size": 10**9}}, "train.batch_size: got 1000000000; the run would"),
        ({"train": {"steps": 10**12}}, "train.steps: got 1000000000000; the run would need"),
        (
            {"model": {"hidden_size": 4000}, "diagnostics": {"jacobians": 32, "probe_size": 32}},
            "the run would need",
        ),
        (
            {"task": {"name": "copy", "T": 10**8, "val_size": 100}},
            "task.T: got 100000000; the run would need",
        ),
    ],
)
def test_a_run_over_the_memory_limit_is_one_line_naming_the_setting(tmp_path, fields, message):
    path = config_file(tmp_path, with_values(BASE, **fields))
    start = time.perf_counter()
    line = refused(["run", str(path)], tmp_path / "out")
    assert time.perf_counter() - start < 30  # not after minutes of work
    assert message in line
    assert f"over the 8 GiB memory limit ({MEMORY_LIMIT_ENV}={LIMIT})" in line


def test_the_error_says_the_largest_value_that_fits(tmp_path):
    line = refused(
        ["run", str(config_file(tmp_path, with_values(BASE, model={"hidden_size": 30000})))],
        tmp_path / "out",
    )
    fits = int(line.rsplit("hidden_size <= ", 1)[1].split()[0])
    config = parse(tomllib.loads(with_values(BASE, model={"hidden_size": fits})))
    limit = Limit(8 << 30, "test")
    check_budget(config, build_task(config), limit)  # fits
    bigger = parse(tomllib.loads(with_values(BASE, model={"hidden_size": fits + 1})))
    with pytest.raises(ConfigError):
        check_budget(bigger, build_task(bigger), limit)


def test_a_float_size_is_refused_by_the_schema(tmp_path):
    path = config_file(tmp_path, BASE.replace("hidden_size = 16", "hidden_size = 1e9"))
    line = refused(["run", str(path)], tmp_path / "out")
    assert line == "model.hidden_size: got 1000000000.0; expected a valid integer"


def test_an_existing_store_is_left_as_it_was(tmp_path):
    out = tmp_path / "store"
    path = config_file(tmp_path, BASE)
    assert CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--quiet"]).exit_code == 0
    before = snapshot(out)
    huge = config_file(tmp_path, with_values(BASE, model={"hidden_size": 30000}), "huge.toml")
    refused(["run", str(huge)], out, before)
    refused(["run", str(path), "--set", "task.val_size=1000000000"], out, before)


def test_over_the_limit_from_the_api_before_anything_is_built():
    config = parse(tomllib.loads(with_values(BASE, model={"hidden_size": 10**9})))
    with pytest.raises(ConfigError, match=r"^model\.hidden_size: got 1000000000; the run"):
        prepare(config)  # a model of 10^18 weights was never allocated


def test_the_limit_comes_from_the_environment(tmp_path, monkeypatch):
    path = config_file(tmp_path, with_values(BASE, model={"hidden_size": 512}))
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "64MiB")
    assert "over the 64 MiB memory limit" in refused(["run", str(path)], tmp_path / "out")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    line = refused(["run", str(path)], tmp_path / "out")
    assert line == (
        f"{MEMORY_LIMIT_ENV}: got 'lots'; expected a size such as 8GiB, 500MB or a number "
        "of bytes, or none"
    )
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "none")  # no limit: the estimate is not checked
    config = parse(tomllib.loads(with_values(BASE, model={"hidden_size": 30000})))
    from rnnlab.experiments.limits import memory_limit

    assert memory_limit().bytes is None
    check_budget(config, build_task(config))


def test_without_the_variable_the_limit_is_most_of_the_machine(monkeypatch):
    from rnnlab.experiments import limits

    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    monkeypatch.setattr(limits, "machine_memory", lambda: 10 << 30)
    limit = limits.memory_limit()
    assert limit.bytes == 8 << 30 and limit.source.startswith("80% of this machine's 10 GiB")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8GiB", 8 << 30), ("500MB", 500 * 10**6), ("1.5e9", 1_500_000_000), (" 2 tib ", 2 << 40)],
)
def test_sizes_in_the_variable(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "-1GiB", "8 parsecs", "0", "nan", "1e999"])
def test_bad_sizes_in_the_variable(text):
    with pytest.raises(ConfigError, match=f"^{MEMORY_LIMIT_ENV}: got"):
        parse_size(text)


def test_sizes_read_in_their_units():
    assert [size(n) for n in (512 << 20, int(7.2 * 2**30), 54 << 30, 3 << 40)] == [
        "512 MiB",
        "7.2 GiB",
        "54 GiB",
        "3 TiB",
    ]
    assert size(10**400) == "9.1e+387 TiB"  # beyond a float: the order of magnitude


SETTINGS = {
    "model.hidden_size": st.integers(1, 10**6),
    "model.num_layers": st.integers(1, 10**4),
    "task.T": st.integers(2, 10**9),
    "task.val_size": st.integers(1, 10**9),
    "train.batch_size": st.integers(1, 10**9),
    "train.steps": st.integers(1, 10**10),
}


# the autouse fixture sets one environment variable, the same for every example
ONE_FIXTURE = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=40, deadline=None, suppress_health_check=ONE_FIXTURE)
@given(
    values=st.fixed_dictionaries({}, optional=SETTINGS),
    cell=st.sampled_from(["rnn", "lstm", "gru", "indrnn"]),
    task=st.sampled_from(["adding", "copy", "temporal_order"]),
)
def test_the_budget_names_a_setting_and_what_fits(values, cell, task):
    """Whatever the sizes: within the limit, or one line naming a setting that was given
    (or the hidden size), and the value it suggests fits while one more does not."""
    data = tomllib.loads(BASE)
    data["model"]["cell"], data["task"]["name"] = cell, task
    for key, value in values.items():
        section, name = key.split(".")
        data[section][name] = value
    if task == "temporal_order":
        data["task"]["T"] = max(10, data["task"]["T"])
    limit = Limit(8 << 30, "test")
    config = parse(data)
    task_ = build_task(config)
    try:
        parts = check_budget(config, task_, limit)
    except ConfigError as err:
        line = str(err)
        assert "\n" not in line
        setting = line.split(":", 1)[0]
        assert setting in values or setting == "model.hidden_size"
        if " <= " in line:
            section, name = setting.split(".")
            fits = int(line.rsplit(f"{name} <= ", 1)[1].split()[0])
            for value, ok in ((fits, True), (fits + 1, False)):
                data[section][name] = value
                again = parse(data)
                try:
                    task_ = build_task(again)
                except ConfigError:  # fits the budget but not the task (T >= 2): no matter
                    assert ok
                    continue
                try:
                    check_budget(again, task_, limit)
                    assert ok
                except ConfigError:
                    assert not ok
    else:
        assert sum(parts.values()) <= limit.bytes  # type: ignore[operator]


@settings(max_examples=30, deadline=None, suppress_health_check=ONE_FIXTURE)
@given(
    field=st.sampled_from(["H", "L", "T", "V", "B", "P", "J", "steps"]),
    value=st.integers(1, 10**6),
)
def test_the_estimate_grows_with_every_size(field, value):
    config = parse(tomllib.loads(BASE))
    s = sizes(config, build_task(config))
    small = sum(estimate(dataclasses.replace(s, **{field: value})).values())
    large = sum(estimate(dataclasses.replace(s, **{field: value + 1})).values())
    assert large >= small


# --- files that never end, nest without end, or are not files -----------------------------


def test_a_text_that_is_not_a_regular_file(tmp_path):
    for path, what in (("/dev/zero", "not a regular file"), (str(tmp_path), "a folder")):
        fields = {"name": "charlm", "path": path, "T": 10}
        config = config_file(tmp_path, with_values(BASE, task=fields), "charlm.toml")
        line = refused(["run", str(config)], tmp_path / "out")
        assert line == f"task.path: got {path!r}, {what}; expected a UTF-8 text file"


def test_a_text_too_large_to_read(tmp_path):
    text = tmp_path / "huge.txt"
    try:
        with text.open("wb") as f:
            f.truncate(300 << 30)  # sparse: 300 GiB that take no disk
    except OSError:
        pytest.skip("this filesystem has no sparse files")
    fields = {"name": "charlm", "path": str(text), "T": 10}
    line = refused(["run", str(config_file(tmp_path, with_values(BASE, task=fields)))],
                   tmp_path / "out")  # fmt: skip
    assert line.startswith(f"task.path: got {str(text)!r} (300 GiB); reading it would need ~")
    assert "over the 8 GiB memory limit" in line


def test_a_config_that_never_ends(tmp_path):
    line = refused(["run", "/dev/zero"], tmp_path / "out")
    assert line == (
        "config: got '/dev/zero', larger than 16 MiB; expected a TOML file (a config is kilobytes)"
    )


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 5000 + "1" + "]" * 5000 + "\n",  # tomllib recurses: RecursionError
        "a = " + "{ a = " * 5000 + "1" + " }" * 5000 + "\n",
        "[" + ".".join(["a"] * 5000) + "]\nx = 1\n",  # read without recursing: too deep after
        "[" + ".".join(["a"] * (MAX_DEPTH + 1)) + "]\nx = 1\n",
    ],
)
def test_a_toml_nested_5000_deep(tmp_path, command, text):
    path = config_file(tmp_path, text, "deep.toml")
    line = refused([command, str(path)], tmp_path / "out")
    kind = "config" if command == "run" else "sweep"
    assert line.startswith(f"{kind}: {path} nests tables or arrays ")
    assert line.endswith(f"; expected at most {MAX_DEPTH} levels")


def test_deep_overrides(tmp_path):
    path = config_file(tmp_path, BASE)
    deep_value = "model.x=" + "[" * 3000 + "]" * 3000
    deep_key = "model." + ".".join(["a"] * 3000) + "=1"
    assert "nested too deeply" in refused(["run", str(path), "--set", deep_value], tmp_path / "o")
    line = refused(["run", str(path), "--set", deep_key], tmp_path / "o")
    assert line == (
        f"config: got data that nests tables or arrays more than {MAX_DEPTH} deep; "
        f"expected at most {MAX_DEPTH} levels"
    )


def test_the_real_command_on_a_deep_and_a_huge_config(tmp_path):
    """The same through `python -m rnnlab`, with the real entry point and its stack."""
    deep = config_file(tmp_path, "a = " + "[" * 5000 + "]" * 5000 + "\n", "deep.toml")
    huge = config_file(tmp_path, with_values(BASE, model={"hidden_size": 30000}), "huge.toml")
    for path in (deep, huge):
        out = tmp_path / "out"
        done = subprocess.run(
            [sys.executable, "-m", "rnnlab", "run", str(path), "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, MEMORY_LIMIT_ENV: LIMIT},
        )
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert not out.exists()


# --- sweeps: a point over the limit, a grid too large, distinct values in linear time --------

SWEEP_BASE = BASE.replace('cell = "lstm"\n', "")


def test_a_sweep_point_over_the_limit_writes_nothing(tmp_path):
    text = SWEEP_BASE + '[sweep]\n"model.hidden_size" = [8, 30000]\n'
    line = refused(["sweep", str(config_file(tmp_path, text))], tmp_path / "out")
    assert line.startswith("model.hidden_size: got 30000; the run would need ~")
    assert line.endswith("(in sweep point model.hidden_size=30000)")


def test_a_million_point_sweep_is_refused_at_once(tmp_path):
    axes = '"train.seed" = [{}]\n"task.T" = [{}]\n"train.lr" = [{}]\n'.format(
        ", ".join(map(str, range(100))),
        ", ".join(map(str, range(2, 102))),
        ", ".join(f"{i + 1}e-4" for i in range(100)),
    )
    path = config_file(tmp_path, SWEEP_BASE + "[sweep]\n" + axes)
    start = time.perf_counter()
    line = refused(["sweep", str(path)], tmp_path / "out")
    assert time.perf_counter() - start < 30
    assert line == (
        "sweep: got 1000000 points (train.seed 100 × task.T 100 × train.lr 100); expected at "
        "most 10000 (rnnlab sweep --max-points N allows more)"
    )


def test_max_points_sets_the_limit(tmp_path):
    text = SWEEP_BASE + '[sweep]\n"train.seed" = [0, 1, 2]\n"task.T" = [5, 6]\n'
    path = config_file(tmp_path, text)
    line = refused(["sweep", str(path), "--max-points", "5"], tmp_path / "out")
    assert line.startswith("sweep: got 6 points (train.seed 3 × task.T 2); expected at most 5")
    assert len(sweep.load_sweep(path, max_points=6).configs) == 6
    data = tomllib.loads(text)
    with pytest.raises(ConfigError, match="expected at most 5"):
        expand(data, max_points=5)


def test_3000_distinct_values_expand_and_a_repeat_is_named():
    data = tomllib.loads(SWEEP_BASE)
    data["sweep"] = {"train.seed": list(range(3000))}
    grid = expand(data)  # the check is a set of canonical JSON strings: linear
    assert [p["train.seed"] for p in grid.points] == list(range(3000))
    assert [c.train.seed for c in grid.configs] == list(range(3000))
    data["sweep"] = {"train.seed": [*range(3000), 1234]}
    with pytest.raises(ConfigError) as err:
        expand(data)
    assert str(err.value) == (
        "sweep.train.seed: got [0, 1, 2, …] (3001 values); expected distinct values "
        "(1234 is there twice)"
    )


SCALARS = st.one_of(
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 1)),
    st.booleans(),
    st.sampled_from(["a", "b", "1"]),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["mode", "threshold"]), st.integers(0, 1), max_size=2),
)


def _toml_equal(a: object, b: object) -> bool:
    """TOML's equality: the same type and value, all the way down (1 ≠ 1.0 ≠ true)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_toml_equal, a, b))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_toml_equal(a[k], b[k]) for k in a)  # type: ignore
    if isinstance(a, float):
        return repr(a) == repr(b)  # -0.0 is not 0.0: the run ids differ
    return a == b


@settings(suppress_health_check=ONE_FIXTURE)
@given(a=SCALARS, b=SCALARS)
def test_canonical_json_is_toml_equality(a, b):
    assert (sweep._canonical(a) == sweep._canonical(b)) == _toml_equal(a, b)


@settings(max_examples=40, deadline=None, suppress_health_check=ONE_FIXTURE)
@given(seeds=st.lists(st.integers(0, 30), min_size=1, max_size=12))
def test_an_axis_is_refused_exactly_when_a_value_repeats(seeds):
    data = tomllib.loads(SWEEP_BASE)
    data["sweep"] = {"train.seed": seeds}
    if len(set(seeds)) == len(seeds):
        assert [c.train.seed for c in expand(data).configs] == seeds
    else:
        with pytest.raises(ConfigError, match="expected distinct values"):
            expand(data)


def test_exclude_matches_toml_values_exactly():
    data = tomllib.loads(SWEEP_BASE)
    data["sweep"] = {
        "train.seed": [0, 1, 2],
        "task.T": [5, 6],
        "exclude": [{"train.seed": 1, "task.T": 6}, {"train.seed": 2}],
    }
    assert expand(data).points == [
        {"train.seed": 0, "task.T": 5},
        {"train.seed": 0, "task.T": 6},
        {"train.seed": 1, "task.T": 5},
    ]
    data["sweep"]["exclude"] = [{"train.seed": 1.0}]  # a float is not the int 1
    with pytest.raises(ConfigError, match=r"^sweep\.exclude\.train\.seed: got 1\.0; expected one"):
        expand(data)


# --- Ray: a bounded wait to join a cluster ----------------------------------------------------


def _sweep_file(tmp_path: Path) -> Path:
    return config_file(tmp_path, SWEEP_BASE + '[sweep]\n"train.seed" = [0, 1]\n', "sweep.toml")


def test_ray_at_an_address_where_nothing_answers(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install 'rnnlab[ray]')")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    for address in ("127.0.0.1:1", f"127.0.0.1:{port}"):
        args = ["sweep", str(_sweep_file(tmp_path)), "--executor", "ray", "--address", address]
        line = refused(args, tmp_path / "out")
        assert line.startswith(f"--address: got {address!r}; nothing answers there (")
        assert line.endswith("expected the address of a running Ray cluster's head "
                             "(ray start --head prints it)")  # fmt: skip
    assert time.perf_counter() - start < 30  # at once, not Ray's minutes of retries


@pytest.fixture
def silent_port():
    """A port that accepts connections and never says a word (not a Ray cluster)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_ray_join_that_hangs_is_cut_at_the_deadline(tmp_path, monkeypatch, silent_port):
    """Real Ray, joining a port that answers but is not Ray: ray.init would retry for
    minutes; the join runs in a child that is killed at the deadline."""
    pytest.importorskip("ray", reason="ray is not installed (pip install 'rnnlab[ray]')")
    monkeypatch.setattr(executors, "RAY_CONNECT_TIMEOUT", 3.0)
    address = f"127.0.0.1:{silent_port}"
    start = time.perf_counter()
    line = refused(
        ["sweep", str(_sweep_file(tmp_path)), "--executor", "ray", "--address", address],
        tmp_path / "out",
    )
    assert time.perf_counter() - start < 25
    assert line == (
        f"--address: got {address!r}; no Ray cluster answered within 3 s; expected the "
        "address of a running Ray cluster's head (ray start --head prints it)"
    )


def test_the_deadline_holds_and_the_child_is_killed(monkeypatch, silent_port):
    """Whatever the join does (here it sleeps), the wait ends at the deadline, the child
    (and its group) is gone, and ray is never initialised in this process."""
    children: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        children.append(real_popen(*args, **kwargs))
        return children[-1]

    monkeypatch.setattr(executors, "_RAY_PROBE", "import time\ntime.sleep(600)\n")
    monkeypatch.setattr(executors.subprocess, "Popen", popen)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"no Ray cluster answered within 1\.5 s"):
        executors.check_ray_address(f"127.0.0.1:{silent_port}", timeout=1.5)
    assert 1.5 <= time.perf_counter() - start < 15
    assert len(children) == 1 and children[0].poll() is not None


def test_a_join_that_fails_says_why_in_one_line(monkeypatch, silent_port):
    monkeypatch.setattr(
        executors, "_RAY_PROBE", "import sys\nprint('noise', file=sys.stderr)\n"
        "raise ConnectionError('GCS said no')\n"
    )  # fmt: skip
    with pytest.raises(ValueError) as err:
        executors.check_ray_address(f"127.0.0.1:{silent_port}", timeout=30)
    assert str(err.value) == (
        f"--address: got '127.0.0.1:{silent_port}'; could not join Ray (ConnectionError: GCS "
        "said no); expected the address of a running Ray cluster's head (ray start --head "
        "prints it)"
    )
