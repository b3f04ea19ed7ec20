"""minGRU / minLSTM: the parallel scan over time against the step loop, side by side.

The same model (one layer, linear readout) and data run both ways in one process: the cell's
option `scan` off (the loop of engine/sequence.py) and on (engine.sequence.scan, in log
space), for the forward pass alone and for a training step (forward + BPTT + every
gradient, cross-entropy on every step). Timed alternately after a warm-up, the order
flipping every round, each run after an idle pause (benchmarks/step.py's time_interleaved:
the BLAS threads of one run stop spinning before the next starts). Reported: each side's
median time and the median of the per-round ratios loop/scan (> 1: the scan wins), at
benchmarks/step.py's sizes, with the load average, since this machine is shared.

    python benchmarks/scan.py                       # T=100 and T=1000, float32
    python benchmarks/scan.py --dtype float64 --rounds 5
    python benchmarks/scan.py --write               # also rewrite BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

import numpy as np

import _markdown  # benchmarks/ is on sys.path
import rnnlab
from step import time_interleaved

CELLS = ("mingru", "minlstm")  # the cells with the option `scan`
LABEL = {"mingru": "minGRU", "minlstm": "minLSTM"}
SIZES = ((100, 32, 64, 128, 64), (1000, 32, 64, 128, 64))  # (T, B, D, H, K), as step.py's


def make_jobs(cell: str, T: int, B: int, D: int, H: int, K: int, dtype: str) -> dict[str, Any]:
    """Per job ("forward", "step"), the loop's and the scan's zero-argument callables, on the
    same weights and data; checks once that both compute the same loss."""
    kw: dict[str, Any] = dict(input_size=D, hidden_size=H, output_size=K, dtype=dtype, seed=0)
    loop = rnnlab.SequenceModel(cell=cell, **kw)
    par = rnnlab.SequenceModel(cell=cell, scan=True, **kw)
    par.set_params(loop.params)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((T, B, D)).astype(dtype)
    Y = rng.integers(0, K, (T, B))
    a, b = loop.loss(X, Y), par.loss(X, Y)
    if not abs(a - b) <= 1e-4 * abs(a):
        raise RuntimeError(f"{cell} T={T}: losses differ, loop {a} vs scan {b}")
    return {
        "forward": tuple((lambda m=m: m.forward(X)) for m in (loop, par)),
        "step": tuple((lambda m=m: m.loss_and_grads(X, Y)) for m in (loop, par)),
    }


def run(dtype: str, rounds: int, warmup: int, pause: float) -> dict[str, Any]:
    rnnlab.keep_freed_memory()  # as rnnlab's CLI and sweep workers do (engine/memory.py)
    load_start = _markdown.load_average()
    rows = []
    for T, B, D, H, K in SIZES:
        for cell in CELLS:
            for what, fns in make_jobs(cell, T, B, D, H, K, dtype).items():
                t_loop, t_scan = time_interleaved(fns, rounds, warmup, pause)
                ratios = [a / b for a, b in zip(t_loop, t_scan, strict=True)]
                q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
                row = dict(
                    cell=LABEL[cell],
                    what=what,
                    T=T,
                    B=B,
                    D=D,
                    H=H,
                    K=K,
                    ms_loop=1e3 * statistics.median(t_loop),
                    ms_scan=1e3 * statistics.median(t_scan),
                    ratio=statistics.median(ratios),
                    q1=q1,
                    q3=q3,
                )
                rows.append(row)
                print(
                    f"  {row['cell']:8s} T={T} {what:8s} loop {row['ms_loop']:.1f} ms, "
                    f"scan {row['ms_scan']:.1f} ms, loop/scan {row['ratio']:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
    return dict(
        rows=rows,
        dtype=dtype,
        rounds=rounds,
        cores=_markdown.cores(),
        rnnlab_threads=rnnlab.get_num_threads(),
        versions=_markdown.versions("numpy"),
        load=(load_start, _markdown.load_average()),
        date=_markdown.now(),
    )


def winner(r: dict[str, Any]) -> str:
    if round(r["ratio"], 2) == 1.0:
        return "even"
    return "scan" if r["ratio"] > 1 else "loop"


def verdict(res: dict[str, Any]) -> str:
    """Which side wins a training step, per cell and T, as the table rounds the ratios."""
    parts = []
    for r in res["rows"]:
        if r["what"] != "step":
            continue
        w = winner(r)
        by = {
            "scan": f"the scan wins, {r['ratio']:.2f}× as fast as the loop",
            "loop": f"the loop wins, the scan takes {1 / r['ratio']:.2f}× its time",
            "even": "the two are even",
        }[w]
        parts.append(f"{r['cell']} at T={r['T']}: {by}")
    return "A training step in this run: " + "; ".join(parts) + ".\n\n"


def table(res: dict[str, Any]) -> str:
    head = (
        "| cell | T | B | D | H | K | run | loop ms | scan ms | loop/scan | IQR | faster |\n"
        "|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|---|\n"
    )
    lines = [
        f"| {r['cell']} | {r['T']} | {r['B']} | {r['D']} | {r['H']} | {r['K']} | {r['what']} "
        f"| {r['ms_loop']:.1f} | {r['ms_scan']:.1f} | **{r['ratio']:.2f}** "
        f"| {r['q1']:.2f}–{r['q3']:.2f} | {winner(r)} |"
        for r in res["rows"]
    ]
    return head + "\n".join(lines) + "\n"


def footer(res: dict[str, Any], command: str) -> str:
    note = "the T·B-row products; the loop's per-step work and the scan's on 1"
    setting = (
        f"{res['dtype']}, one layer, medians of {res['rounds']} rounds; "
        + _markdown.threads_setting(res, note)
    )
    return _markdown.footer(res, command, setting)


INTRO = """\
## minGRU and minLSTM: the parallel scan against the step loop (`benchmarks/scan.py`)

minGRU and minLSTM have a recurrence h_t = a_t ⊙ h_{t−1} + b_t with a_t, b_t from x_t alone,
so the cell's option `scan = true` runs a layer over time as a parallel scan in log space
(`rnnlab.engine.sequence.scan`: chunks of 64 steps each solved at once by cumulative sums in
float64, the chunks one after another; BPTT's δ_t = dh_t + a_{t+1} ⊙ δ_{t+1} the same way
backwards) instead of the step loop. Both compute the same function; which is faster here?

Method:
- One layer plus a linear readout at `benchmarks/step.py`'s sizes, the same weights and data
  both ways in one process; "forward" is `model.forward(X)`, "step" is
  `model.loss_and_grads(X, Y)` (cross-entropy on every step). The script checks that both
  compute the same loss.
- The two run alternately after a warm-up, the order flipping every round, each timed run
  after a 0.2 s idle pause (as `benchmarks/step.py`). Times are medians; "loop/scan" is the
  median of the per-round ratios (> 1: the scan is faster), "IQR" their interquartile range.
  The 2-core machine is shared with other engineers' test runs: check the load average below.

"""


def results(res: dict[str, Any], command: str) -> str:
    return verdict(res) + table(res) + "\n" + footer(res, command)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--rounds", type=int, default=9, help="timed runs per side (default 9)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs per side first")
    ap.add_argument("--pause", type=float, default=0.2, help="seconds idle before every run")
    _markdown.add_write_options(ap)
    args = ap.parse_args(argv)
    if args.rounds < 2:
        ap.error(f"--rounds: got {args.rounds}; expected >= 2")
    res = run(args.dtype, args.rounds, args.warmup, args.pause)
    _markdown.publish(args, "scan.py", argv, INTRO, lambda command: results(res, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
