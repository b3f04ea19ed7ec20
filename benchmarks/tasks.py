"""Task generation throughput at T = 100, in sequences per second (median of several runs).

    .venv/bin/python benchmarks/tasks.py [--runs 7] [--seconds 0.3]

Issue 4 requires the adding task to produce >= 1e5 sequences/s; the script exits 1 if the
median falls below that at any batch size. The other tasks are reported for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from rnnlab import tasks

REQUIRED = 1e5  # sequences/s for the adding task
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    args = parser.parse_args()
    ok = True
    print(f"T = 100, dtype float32, median of {args.runs} runs of {args.seconds} s")
    print(f"{'task':<16}{'batch':>7}{'sequences/s':>14}{'min':>12}{'max':>12}")
    for name, params in TASKS:
        task = tasks.get(name, T=100, **params)
        for B in BATCH_SIZES:
            runs = [throughput(task, B, args.seconds) for _ in range(args.runs)]
            median = statistics.median(runs)
            flag = ""
            if name == "adding":
                passed = median >= REQUIRED
                ok &= passed
                flag = "  ok (>= 1e5)" if passed else "  FAIL (< 1e5)"
            print(f"{name:<16}{B:>7}{median:>14.3g}{min(runs):>12.3g}{max(runs):>12.3g}{flag}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
