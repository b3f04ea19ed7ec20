"""Task generation throughput at T = 100, in sequences per second (median of several runs).

    python benchmarks/tasks.py [--runs 7] [--seconds 0.3]
    python benchmarks/tasks.py --write              # also rewrite BENCHMARKS.md's section
    python benchmarks/tasks.py --write --file PATH  # ... or that of another copy

Issue 4 requires the adding task to produce >= 1e5 sequences/s; the script exits 1 if the
median falls below that at any batch size. The other tasks are reported for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np

import _markdown  # benchmarks/ is on sys.path
import rnnlab
from rnnlab import tasks

T = 100
REQUIRED = 1e5  # sequences/s for the adding task
TARGET_TASK = "adding"
BATCH_SIZES = (32, 1000)
TASKS = (("adding", {}), ("copy", {}), ("temporal_order", {}), ("charlm", {}))


def throughput(task: tasks.Task, batch_size: int, seconds: float) -> float:
    """Sequences per second over one run of at least `seconds`."""
    rng = np.random.default_rng(0)
    task.batch(rng, batch_size)  # warm-up: first-touch allocations, lazy imports
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        task.batch(rng, batch_size)
        n += batch_size
    return n / elapsed


def run(runs: int, seconds: float) -> dict[str, Any]:
    load_start = _markdown.load_average()
    rows = []
    dtypes = set()
    for name, params in TASKS:
        task = tasks.get(name, T=T, **params)
        dtypes.add(np.dtype(task.dtype).name)
        for B in BATCH_SIZES:
            samples = [throughput(task, B, seconds) for _ in range(runs)]
            row = dict(
                task=name,
                batch=B,
                median=statistics.median(samples),
                min=min(samples),
                max=max(samples),
            )
            rows.append(row)
            print(
                f"  {name:<16}{B:>7}{row['median']:>12.3g} sequences/s",
                file=sys.stderr,
                flush=True,
            )
    return dict(
        rows=rows,
        runs=runs,
        seconds=seconds,
        dtype=", ".join(sorted(dtypes)),
        cores=_markdown.cores(),
        rnnlab_threads=rnnlab.get_num_threads(),
        versions=_markdown.versions("numpy"),
        load=(load_start, _markdown.load_average()),
        date=_markdown.now(),
    )


def passed(row: dict[str, Any]) -> bool | None:
    """Whether the row meets the target, as shown (3 digits); None for the other tasks."""
    return float(f"{row['median']:.2e}") >= REQUIRED if row["task"] == TARGET_TASK else None


def table(res: dict[str, Any]) -> str:
    head = (
        f"T = {T}, dtype {res['dtype']}; the median of {res['runs']} runs of at least "
        f"{res['seconds']:g} s each, and the slowest and fastest of them.\n\n"
        "| task | batch | sequences/s (median) | min | max | target |\n"
        "|---|--:|--:|--:|--:|---|\n"
    )
    lines = []
    for r in res["rows"]:
        ok = passed(r)
        flag = "" if ok is None else ("ok (≥ 1e5)" if ok else "**FAIL** (< 1e5)")
        lines.append(
            f"| {r['task']} | {r['batch']} | {r['median']:.2e} | {r['min']:.2e} "
            f"| {r['max']:.2e} | {flag} |"
        )
    return head + "\n".join(lines) + "\n"


def verdict(res: dict[str, Any]) -> str:
    """The sentence on the target, from the measured medians."""
    rows = [r for r in res["rows"] if r["task"] == TARGET_TASK]
    failed = [r for r in rows if not passed(r)]
    if not failed:
        lo, hi = min(r["median"] for r in rows), max(r["median"] for r in rows)
        batches = _markdown.join([str(r["batch"]) for r in rows])
        return (
            f"Target met in this run: the {TARGET_TASK} task generated {lo:.2e} to {hi:.2e} "
            f"sequences/s (median) at batch sizes {batches}, "
            f"{lo / REQUIRED:.1f}× the target or more."
        )
    where = _markdown.join([f"{r['median']:.2e} sequences/s at batch {r['batch']}" for r in failed])
    return f"**Target not met in this run**: the {TARGET_TASK} task generated {where}."


def footer(res: dict[str, Any], command: str) -> str:
    return _markdown.footer(
        res, command, _markdown.threads_setting(res, "task generation itself runs on one thread")
    )


INTRO = """\
## Task generation (`benchmarks/tasks.py`)

How fast each task generates training batches: sequences per second of
`task.batch(rng, batch_size)` at T = 100, over repeated runs of a fixed minimum duration after
one warm-up batch, at two batch sizes. Issue 4's target: the adding task at T = 100 generates
at least 1e5 sequences per second at every batch size (the script exits 1 otherwise); the
other tasks are reported for comparison.

"""


def results(res: dict[str, Any], command: str) -> str:
    return verdict(res) + "\n\n" + table(res) + "\n" + footer(res, command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--runs", type=int, default=7, help="runs per task and batch size")
    parser.add_argument("--seconds", type=float, default=0.3, help="minimum seconds per run")
    _markdown.add_write_options(parser)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs: got {args.runs}; expected >= 1")

    res = run(args.runs, args.seconds)
    _markdown.publish(args, "tasks.py", argv, INTRO, lambda command: results(res, command))
    return 0 if all(passed(r) is not False for r in res["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
