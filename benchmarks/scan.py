"""minGRU / minLSTM: the parallel scan over time against the step loop, side by side.

The same model (one layer, linear readout) and data run both ways in one process, timed
alternately (the order flipping every round), for the forward pass alone and for a training
step (forward + BPTT + every gradient, cross-entropy on every step). Reported: each side's
median time over the rounds and the median of the per-round ratios loop/scan (> 1: the scan
wins), with the load average, since this machine is shared.

    python benchmarks/scan.py                       # T=1000 H=64 B=32, float64 and float32
    python benchmarks/scan.py --T 200 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from rnnlab.engine.model import SequenceModel


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--H", type=int, default=64)
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--D", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cells", default="mingru,minlstm")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    T, B, H, D, K = args.T, args.B, args.H, args.D, 8
    print(f"T={T} B={B} H={H} D={D}; load average before: {os.getloadavg()}")
    print(f"{'cell':8} {'dtype':8} {'what':8} {'loop ms':>9} {'scan ms':>9} {'loop/scan':>9}")
    for name in args.cells.split(","):
        for dtype in ("float64", "float32"):
            kw = dict(input_size=D, hidden_size=H, output_size=K, dtype=dtype, seed=0)
            loop = SequenceModel(cell=name, **kw)
            par = SequenceModel(cell=name, scan=True, **kw)
            par.set_params(loop.params)
            X = rng.standard_normal((T, B, D)).astype(dtype)
            Y = rng.integers(0, K, (T, B))
            jobs = {
                "forward": (lambda m, X=X: m.forward(X)),
                "step": (lambda m, X=X, Y=Y: m.loss_and_grads(X, Y)),
            }
            for what, job in jobs.items():
                job(loop), job(par)  # warm-up
                tl, ts, ratios = [], [], []
                for r in range(args.rounds):
                    pair = (loop, par) if r % 2 == 0 else (par, loop)
                    times = {id(m): _timed(lambda m=m, job=job: job(m)) for m in pair}
                    tl.append(times[id(loop)])
                    ts.append(times[id(par)])
                    ratios.append(tl[-1] / ts[-1])
                print(
                    f"{name:8} {dtype:8} {what:8} {1e3 * statistics.median(tl):9.1f} "
                    f"{1e3 * statistics.median(ts):9.1f} {statistics.median(ratios):9.2f}"
                )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
