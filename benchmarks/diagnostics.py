"""What recording the gradient flow costs per training step (target: at most 15 % extra).

A plain step is forward + BPTT + every gradient + an SGD update:

    res = model.loss_and_grads(X, Y, loss="cross_entropy", mask=mask)
    params, state = SGD().update(params, res.grads, state, lr)

A recorded step adds rnnlab.diagnostics.gradient_flow(model, res.trace, X, Y, mask=mask,
sequences=n, contributions=False): ‖∂L/∂h_k‖ for every step and the lag profile of the last
step's loss, with its decay factor, horizon and ratio — the issue's "flow and lag profile",
whose target is 15 %. A third column adds the per-step contributions to ∂L/∂W and ∂L/∂U
(contributions=True), which cost two batched B × B Gram products per layer. Two masks:

    every step   loss on all T steps (copy, charlm): the lag profile needs its own masked
                 backward pass, one recurrence without weight gradients, over n sequences
    last step    loss on step T only (adding, temporal order): the training pass already is
                 that masked pass, so the lag profile costs nothing but norms

The variants run in turn in one process after a warm-up, the order rotating every round;
we print medians and the median of per-round ratios recorded/plain, which is steadier on a
shared machine than the ratio of medians ("added ms" is the median of the per-round
differences). float32, one layer, the sizes of benchmarks/step.py's first row: T=100, B=32,
D=64, H=128, K=64. Like rnnlab's CLI, the script calls rnnlab.keep_freed_memory() first, and
the engine runs its large products on rnnlab.get_num_threads() threads
(RNNLAB_NUM_THREADS=1 keeps them off a busy machine's other core); the footer says how many.

    python benchmarks/diagnostics.py                    # n = 8 sequences for the lag profile
    python benchmarks/diagnostics.py --sequences 32     # the whole batch
    python benchmarks/diagnostics.py --write            # also rewrite BENCHMARKS.md's section
    python benchmarks/diagnostics.py --write --file P   # ... or that of another copy
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import _markdown  # benchmarks/ is on sys.path
import rnnlab
from rnnlab.diagnostics import gradient_flow
from rnnlab.train import SGD

SIZE = (100, 32, 64, 128, 64)  # T, B, D, H, K
CELLS = {"RNN-tanh": rnnlab.RNN, "LSTM": rnnlab.LSTM, "GRU": rnnlab.GRU}
LOSSES = {"every step": "a loss on every step", "last step": "a loss on the last step only"}
TARGET = 15.0  # %, for the flow and the lag profile (issue 5)


def make_steps(cell: str, mask_kind: str, sequences: int) -> list[Callable[[], None]]:
    """[plain step, + flow and lag profile, + weight contributions too] on the same model and
    batch; each updates the params."""
    T, B, D, H, K = SIZE
    model = CELLS[cell](input_size=D, hidden_size=H, output_size=K, dtype="float32", seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((T, B, D), dtype=np.float32)
    Y = rng.integers(0, K, size=(T, B))
    mask = None
    if mask_kind == "last step":
        mask = np.zeros((T, B), dtype=np.float32)
        mask[-1] = 1
    opt = SGD()
    state = opt.init(model.params)

    def plain() -> None:
        nonlocal state
        res = model.loss_and_grads(X, Y, mask=mask)
        model.params, state = opt.update(model.params, res.grads, state, 1e-3)

    def recorder(contributions: bool) -> Callable[[], None]:
        def recorded() -> None:
            nonlocal state
            res = model.loss_and_grads(X, Y, mask=mask)
            gradient_flow(
                model, res.trace, X, Y, mask=mask, sequences=sequences, contributions=contributions
            )
            model.params, state = opt.update(model.params, res.grads, state, 1e-3)

        return recorded

    return [plain, recorder(False), recorder(True)]


def time_in_turn(fns: list[Callable[[], None]], repeats: int, warmup: int) -> list[list[float]]:
    """Seconds per call of each fn, run in turn; the order rotates so none always follows
    the same other."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    gc.collect()
    gc.disable()
    try:
        for r in range(repeats):
            for j in range(len(fns)):
                i = (j + r) % len(fns)
                t0 = time.perf_counter()
                fns[i]()
                times[i].append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return times


def run(repeats: int, warmup: int, sequences: int) -> dict[str, Any]:
    rnnlab.keep_freed_memory()  # as rnnlab's CLI and sweep workers do (engine/memory.py)
    load_start = _markdown.load_average()
    rows = []
    for cell in CELLS:
        for loss in LOSSES:
            plain, lag, full = time_in_turn(make_steps(cell, loss, sequences), repeats, warmup)
            row: dict[str, Any] = dict(
                cell=cell, loss=loss, plain_ms=1e3 * statistics.median(plain)
            )
            for name, recorded in (("lag", lag), ("full", full)):
                pairs = list(zip(recorded, plain, strict=True))
                row[f"{name}_ms"] = 1e3 * statistics.median(recorded)
                row[f"{name}_added_ms"] = 1e3 * statistics.median(r - p for r, p in pairs)
                row[f"{name}_pct"] = 100 * (statistics.median(r / p for r, p in pairs) - 1)
            rows.append(row)
            print(
                f"  {cell:9s} {loss:11s} plain {row['plain_ms']:.1f} ms, + flow and lag "
                f"{row['lag_pct']:.1f} %, + contributions {row['full_pct']:.1f} %",
                file=sys.stderr,
                flush=True,
            )
    return dict(
        rows=rows,
        size=SIZE,
        sequences=sequences,
        repeats=repeats,
        warmup=warmup,
        cores=_markdown.cores(),
        rnnlab_threads=rnnlab.get_num_threads(),
        versions=_markdown.versions("numpy"),
        load=(load_start, _markdown.load_average()),
        date=_markdown.now(),
    )


def over_target(row: dict[str, Any]) -> bool:
    """Whether the flow and lag profile's overhead, as shown (0.1 %), exceeds the target."""
    return round(row["lag_pct"], 1) > TARGET


def table(res: dict[str, Any]) -> str:
    T, B, D, H, K = res["size"]
    head = (
        f"T={T} B={B} D={D} H={H} K={K}, float32, one layer; lag profile over "
        f"{res['sequences']} of {B} sequences; medians of {res['repeats']} rounds after "
        f"{res['warmup']} warm-up round{'' if res['warmup'] == 1 else 's'}; overheads over "
        f"{TARGET:g} % in bold.\n\n"
        "| cell | loss on | plain ms | + flow, lag ms | added ms | overhead "
        "| + contributions ms | added ms | overhead |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|--:|\n"
    )
    lines = []
    for r in res["rows"]:
        lag = f"{r['lag_pct']:.1f} %"
        lag = f"**{lag}**" if over_target(r) else lag
        lines.append(
            f"| {r['cell']} | {r['loss']} | {r['plain_ms']:.1f} | {r['lag_ms']:.1f} "
            f"| {r['lag_added_ms']:.1f} | {lag} | {r['full_ms']:.1f} | {r['full_added_ms']:.1f} "
            f"| {r['full_pct']:.1f} % |"
        )
    return head + "\n".join(lines) + "\n"


def _rows_phrase(rows: list[dict[str, Any]], kind: str, all_cells: bool) -> str:
    """'every cell with a loss on every step (2.3–7.6 %)' or 'GRU (14.8 %) with ...'."""
    pcts = [r["lag_pct"] for r in rows]
    if all_cells:
        return f"every cell with {LOSSES[kind]} ({_markdown.value_range(pcts, '%')})"
    cells = _markdown.join([f"{r['cell']} ({r['lag_pct']:.1f} %)" for r in rows])
    return f"{cells} with {LOSSES[kind]}"


def _phrases(rows: list[dict[str, Any]]) -> str:
    parts = []
    for kind in LOSSES:
        sub = [r for r in rows if r["loss"] == kind]
        if sub:
            parts.append(_rows_phrase(sub, kind, len(sub) == len(CELLS)))
    return "; ".join(parts)


def verdict(res: dict[str, Any]) -> str:
    """The sentences on the target and on what recording costs, from the measured numbers."""
    rows = res["rows"]
    met = [r for r in rows if not over_target(r)]
    over = [r for r in rows if over_target(r)]
    every = _markdown.value_range([r["lag_pct"] for r in rows], "%")
    if not over:
        target = f"Target met in this run on all {len(rows)} rows ({every})."
    elif not met:
        target = f"**Target not met in this run on any of the {len(rows)} rows ({every}).**"
    else:
        target = f"Target met in this run for {_phrases(met)}; **not met for {_phrases(over)}**."

    def added(kind: str) -> str:
        return _markdown.join(
            [f"{r['lag_added_ms']:.1f} ms ({r['cell']})" for r in rows if r["loss"] == kind]
        )

    plain = [r["plain_ms"] for r in rows]
    cost = (
        f"Recording added {added('last step')} per step with {LOSSES['last step']} (the flow, "
        f"and the lag profile's norms), and {added('every step')} with {LOSSES['every step']} "
        f"(the lag profile's masked backward pass over {res['sequences']} sequences on top), to "
        f"plain steps of {_markdown.value_range(plain, 'ms')}."
    )
    contributions = (
        "With the per-step weight contributions as well, the overhead was "
        f"{_markdown.value_range([r['full_pct'] for r in rows], '%')}."
    )
    return f"{target} {cost} {contributions}"


def footer(res: dict[str, Any], command: str) -> str:
    return _markdown.footer(
        res,
        command,
        _markdown.threads_setting(res, "the engine's large products; its per-step ones on 1"),
    )


INTRO = """\
## Diagnostics overhead per training step (`benchmarks/diagnostics.py`)

What recording the gradient flow costs per training step of rnnlab's engine. A plain step is
forward + BPTT + every gradient + an SGD update (`model.loss_and_grads`, `SGD().update`); a
recorded step adds `rnnlab.diagnostics.gradient_flow(..., contributions=False)`: ‖∂L/∂h_k‖ for
every step and the lag profile of the last step's loss, with its decay factor, horizon and
ratio. A third variant adds the per-step contributions to ∂L/∂W and ∂L/∂U
(`contributions=True`, two batched B × B Gram products per layer).

Method:
- Two masks. Loss on every step (copy, charlm): the lag profile needs its own masked backward
  pass over the profiled sequences, one recurrence without weight gradients, bound by
  per-step numpy calls. Loss on the last step only (adding, temporal order): the training
  pass already is that masked pass, so the lag profile costs nothing but norms.
- float32, one layer, the sizes of `benchmarks/step.py`'s first row. Like rnnlab's CLI, the
  script calls `rnnlab.keep_freed_memory()` first; the engine runs its T·B-row products on
  `rnnlab.get_num_threads()` threads and its per-step ones on one (`RNNLAB_NUM_THREADS=1`
  keeps them off a busy machine's other core).
- The three variants run in turn in one process after a warm-up, the order rotating every
  round. Times are medians; "overhead" is the median of the per-round ratios recorded/plain
  and "added ms" the median of the per-round differences, steadier on a shared machine than
  comparing medians.
- Issue 5's target: recording the gradient flow and the lag profile every step costs at most
  15 % over a plain training step (the first "overhead" column). The per-step weight
  contributions come on top and are optional (`gradient_flow(..., contributions=False)`); the
  training callback records a full diagnosis every N steps instead, which divides all of this
  by N.

"""


def results(res: dict[str, Any], command: str) -> str:
    return verdict(res) + "\n\n" + table(res) + "\n" + footer(res, command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--repeats", type=int, default=40, help="timed rounds (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument(
        "--sequences", type=int, default=8, help="sequences in the lag profile (default 8)"
    )
    _markdown.add_write_options(parser)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.sequences < 1:
        parser.error("--repeats and --sequences: expected >= 1")

    res = run(args.repeats, args.warmup, min(args.sequences, SIZE[1]))
    _markdown.publish(args, "diagnostics.py", argv, INTRO, lambda command: results(res, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
