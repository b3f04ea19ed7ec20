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
shared machine than the ratio of medians. float32, one layer, the sizes of
benchmarks/step.py's first row: T=100, B=32, D=64, H=128, K=64. Like rnnlab's CLI, the script
calls rnnlab.keep_freed_memory() first, and the engine runs its large products on
rnnlab.get_num_threads() threads (RNNLAB_NUM_THREADS=1 keeps them off a busy machine's other
core); the header says how many.

    python benchmarks/diagnostics.py                 # n = 8 sequences for the lag profile
    python benchmarks/diagnostics.py --sequences 32  # the whole batch
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

import rnnlab
from rnnlab.diagnostics import gradient_flow
from rnnlab.train import SGD

SIZE = (100, 32, 64, 128, 64)  # T, B, D, H, K
CELLS = {"RNN-tanh": rnnlab.RNN, "LSTM": rnnlab.LSTM, "GRU": rnnlab.GRU}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--sequences", type=int, default=8, help="sequences in the lag profile (default 8)"
    )
    args = parser.parse_args()
    T, B, D, H, K = SIZE
    n = min(args.sequences, B)
    rnnlab.keep_freed_memory()
    print(
        f"T={T} B={B} D={D} H={H} K={K}, float32; lag profile over {n} of {B} sequences; "
        f"{args.repeats} rounds; rnnlab threads {rnnlab.get_num_threads()}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'cell':9s} {'loss on':11s} {'plain ms':>9s} {'+flow,lag ms':>13s} {'overhead':>9s}"
        f" {'+contrib ms':>12s} {'overhead':>9s}"
    )
    for cell in CELLS:
        for mask_kind in ("every step", "last step"):
            plain, lag, full = time_in_turn(
                make_steps(cell, mask_kind, n), args.repeats, args.warmup
            )
            cols = [f"{cell:9s} {mask_kind:11s} {1e3 * statistics.median(plain):9.1f}"]
            for recorded, width in ((lag, 13), (full, 12)):
                ratio = statistics.median(r / p for r, p in zip(recorded, plain, strict=True))
                cols.append(
                    f"{1e3 * statistics.median(recorded):{width}.1f} {100 * (ratio - 1):8.1f}%"
                )
            print(" ".join(cols), flush=True)


if __name__ == "__main__":
    main()
