"""One training step of rnnlab's numpy engine against torch on the CPU, side by side.

A step is forward + BPTT + every gradient, for a one-layer cell plus a linear readout, with
cross-entropy on every step, summed over time and averaged over the batch:

    rnnlab   model.loss_and_grads(X, Y, loss="cross_entropy")
    torch    o = readout(cell(X)[0]);  loss = F.cross_entropy(o.reshape(-1, K),
             Y.reshape(-1), reduction="sum") / B;  loss.backward()   (grads zeroed each run)

torch's side is its own module where it has one (nn.RNN, nn.LSTM, nn.GRU, through
rnnlab.torch.to_torch); for the other cells (IndRNN, expRNN, minGRU, minLSTM) it is the cell's
equations in torch ops, a Python loop over time under autograd, as a user of those cells
would write it: the input projection over all T·B rows first, an expRNN's W = matrix_exp(S)
once per forward. CELLS below is the table of rows; a new cell is one line there (and its
torch step, if torch has no module for it).

Both sides run float32 with the same weights in one process, timed
alternately after a warm-up (each round runs both, the order flipping every round), with an
idle pause before every timed run (see time_interleaved: without it, numpy's spinning BLAS
threads slow torch down). We report each side's median time, the ratio rnnlab/torch as the
median of the per-round ratios (the two runs of a round see the same machine load), and each
side's achieved GFLOP/s, from its median time, as a percentage of the float32 GEMM peak
measured here (median of 2048x2048 numpy matmuls, before every row and at the end; the
highest counts). torch gets one thread per core, and so do rnnlab's large products
(rnnlab.get_num_threads(); its per-step products run on one thread, engine/blas.py).

FLOPs per step, counted analytically from the GEMMs only (elementwise work ignored), with
G = gates·H (gates: RNN, IndRNN, expRNN 1, LSTM 4, GRU 3, minGRU 2, minLSTM 3):

    forward   F = 2·T·B·(D·G      input projection  X U^T
                       + H·G      recurrence        h_{t-1} W^T, every step (not for the
                                  elementwise recurrences of IndRNN, minGRU and minLSTM)
                       + H·K)     readout           h_t V^T
    backward  2·F   (each forward GEMM has two in the backward: into its weights and into its
                     input; we count both for every GEMM, as X-side and h-side alike)
    total     3·F

The same count is used for both engines, so the two "% of peak" columns differ by the ratio
of the median times. (torch skips ∂L/∂X, as X does not require grad, and rnnlab computes it:
the count overstates torch's work by 2·T·B·D·G. An expRNN's matrix exponential, and its
Fréchet derivative in rnnlab's backward, are not counted.)

    python benchmarks/step.py                    # every cell at every size
    python benchmarks/step.py --rows quick       # the T=100, H=128 rows, fewer repeats
    python benchmarks/step.py --cells mingru,minlstm
    python benchmarks/step.py --write            # also rewrite BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import _markdown  # benchmarks/ is on sys.path
import rnnlab

# --- torch's side of the cells torch has no module for: each cell's equations (its
# docstring in rnnlab/engine/cells/), as a torch user writes them. `step(p, ax_t, h)` is one
# step from ax_t = U x_t + b (B, G·H); `prepare(p)` runs once per forward (an expRNN's
# W = exp(A − Aᵀ)), on the layer's params as torch leaf tensors named as rnnlab names them.


def _g(k: Any) -> Any:
    """Feng et al.'s positive map g(x) = x + ½ (x ≥ 0), σ(x) (x < 0)."""
    import torch

    return torch.where(k >= 0, k + 0.5, torch.sigmoid(k))


def _indrnn_step(p: dict[str, Any], ax: Any, h: Any) -> Any:
    return (ax + p["u"] * h).relu()  # the cell's default φ, relu


def _exprnn_prepare(p: dict[str, Any]) -> dict[str, Any]:
    import torch

    upper = torch.triu(p["A"], diagonal=1)
    return p | {"W": torch.linalg.matrix_exp(upper - upper.T)}  # orthogonal, once per forward


def _exprnn_step(p: dict[str, Any], ax: Any, h: Any) -> Any:
    z = ax + h @ p["W"].T
    return z.sign() * (z.abs() + p["b_mod"]).relu()  # modReLU, the cell's default φ


def _mingru_step(p: dict[str, Any], ax: Any, h: Any) -> Any:
    k_z, k_h = ax.chunk(2, dim=-1)
    z = k_z.sigmoid()
    return (1 - z) * h + z * _g(k_h)


def _minlstm_step(p: dict[str, Any], ax: Any, h: Any) -> Any:
    k_f, k_i, k_h = ax.chunk(3, dim=-1)
    f, i = k_f.sigmoid(), k_i.sigmoid()
    return (f / (f + i)) * h + (i / (f + i)) * _g(k_h)


def _lru_prepare(p: dict[str, Any]) -> dict[str, Any]:
    """λ = exp(−exp(ν) + i exp(θ)) and γ = √(1 − |λ|²), in the real form the state takes."""
    import torch

    modulus, phase = torch.exp(-torch.exp(p["nu"])), torch.exp(p["theta"])
    re, im = modulus * torch.cos(phase), modulus * torch.sin(phase)
    gamma = torch.sqrt(1 - modulus**2)
    return p | {
        "lam": torch.cat([re, re]),
        "rot": torch.cat([-im, im]),
        "gamma2": torch.cat([gamma, gamma]),
    }


def _lru_step(p: dict[str, Any], ax: Any, h: Any) -> Any:
    import torch

    N = h.shape[-1] // 2
    swapped = torch.cat([h[:, N:], h[:, :N]], dim=-1)  # [Im x; Re x]
    return h * p["lam"] + swapped * p["rot"] + ax * p["gamma2"]


def _lru_output(p: dict[str, Any], h: Any, x: Any) -> Any:
    """y = Re(C x) + D u, then the GELU mixing with its residual."""
    import torch.nn.functional as F

    y = h @ p["C"].T + x @ p["D"].T
    return y + F.gelu(y @ p["M"].T + p["m"], approximate="tanh")


def _same(p: dict[str, Any]) -> dict[str, Any]:
    return p


def _states(p: dict[str, Any], h: Any, x: Any) -> Any:
    return h


class Bench(NamedTuple):
    """A row kind: the table's label, rnnlab's cell options, whether a step multiplies by a
    dense (G·H, H) matrix (the FLOP count), and torch's side: None for torch's own module
    (nn.RNN / nn.LSTM / nn.GRU, through rnnlab.torch.to_torch), else the cell's equations,
    one step and what runs once per forward."""

    label: str
    options: dict[str, Any]
    dense_recurrence: bool
    step: Callable[..., Any] | None = None
    prepare: Callable[[dict[str, Any]], dict[str, Any]] = _same
    output: Callable[..., Any] = _states  # what the readout reads, from (p, h, x)


# one line per cell; the registry name is the key
CELLS: dict[str, Bench] = {
    "rnn": Bench("RNN-tanh", {"nonlinearity": "tanh"}, True),
    "lstm": Bench("LSTM", {}, True),
    "gru": Bench("GRU", {}, True),
    "indrnn": Bench("IndRNN-relu", {}, False, _indrnn_step),
    "exprnn": Bench("expRNN", {}, True, _exprnn_step, _exprnn_prepare),
    "mingru": Bench("minGRU", {}, False, _mingru_step),
    "minlstm": Bench("minLSTM", {}, False, _minlstm_step),
    "lru": Bench("LRU", {}, False, _lru_step, _lru_prepare, _lru_output),
}

SIZES = {  # (T, B, D, H, K)
    "small": (100, 32, 64, 128, 64),
    "wide": (100, 64, 128, 256, 128),
    "long": (1000, 32, 64, 128, 64),
}
ROWS = {"quick": ("small",), "all": ("small", "wide", "long")}


def step_flops(cell: str, T: int, B: int, D: int, H: int, K: int) -> int:
    """GEMM FLOPs of one training step: 3 × the forward's 2·T·B·(D·G + H·G + H·K), without
    H·G for a cell whose recurrence is elementwise (IndRNN, minGRU, minLSTM, LRU; the LRU's
    output map adds its own, uncounted)."""
    from rnnlab.engine.cells import make_cell

    G = make_cell(cell, **CELLS[cell].options).gates * H
    recurrence = H * G if CELLS[cell].dense_recurrence else 0
    forward = 2 * T * B * (D * G + recurrence + H * K)
    return 3 * forward


def gemm_peak(n: int = 2048, repeats: int = 7) -> float:
    """Median float32 GFLOP/s of an n×n numpy matmul (numpy's BLAS, default threads)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def make_pair(cell: str, T: int, B: int, D: int, H: int, K: int) -> tuple[Callable, Callable, str]:
    """Two zero-argument callables running one training step, rnnlab's and torch's, on the
    same weights and the same data, and what torch runs ("nn.LSTM", or "loop": the cell's
    equations). Checks once that both compute the same loss."""
    import torch
    import torch.nn.functional as F

    bench = CELLS[cell]
    model = rnnlab.SequenceModel(
        cell=cell,
        input_size=D,
        hidden_size=H,
        output_size=K,
        dtype="float32",
        seed=0,
        **bench.options,
    )
    rng = np.random.default_rng(1)
    X = rng.standard_normal((T, B, D), dtype=np.float32)
    Y = rng.integers(0, K, size=(T, B), dtype=np.int64)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)

    if bench.step is None:  # torch's own module
        from rnnlab.torch import to_torch

        module, readout = to_torch(model)
        params = list(module.parameters()) + list(readout.parameters())

        side = f"nn.{type(module).__name__}"

        def forward() -> Any:
            return readout(module(Xt)[0])  # (T, B, K), time-major

    else:  # the cell's equations, a Python loop over time
        P = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
        p0 = {k: P[f"{k}_0"] for k in model.layer_params(0)}
        params = list(P.values())
        step, prepare = bench.step, bench.prepare
        side = "loop"

        def forward() -> Any:
            p = prepare(p0)
            ax = Xt @ p["U"].T + p["b"]  # (T, B, G·H), one product over all T·B rows
            h, hs = torch.zeros(B, H), []
            # unbind, not ax[t]: each ax[t]'s backward is a zeros (T, B, G·H) with one row
            # filled, T of them summed, which makes torch's step quadratic in T
            for ax_t in ax.unbind(0):
                h = step(p, ax_t, h)
                hs.append(h)
            out = bench.output(p, torch.stack(hs), Xt)  # (T, B, H)
            return out @ P["V"].T + P["c"]  # (T, B, K)

    def run_rnnlab() -> float:
        return float(model.loss_and_grads(X, Y, loss="cross_entropy")[0])

    def run_torch() -> float:
        for q in params:
            q.grad = None
        o = forward()
        loss = F.cross_entropy(o.reshape(-1, K), Yt.reshape(-1), reduction="sum") / B
        loss.backward()
        return float(loss.detach())

    a, b = run_rnnlab(), run_torch()
    if not abs(a - b) <= 1e-4 * abs(b):
        raise RuntimeError(f"{cell} {T, B, D, H, K}: losses differ, rnnlab {a} vs torch {b}")
    return run_rnnlab, run_torch, side


def time_interleaved(
    fns: tuple[Callable, Callable], repeats: int, warmup: int, pause: float
) -> tuple[list[float], list[float]]:
    """Run the two callables alternately; the first goes first on even rounds, second on odd,
    so neither always follows the other. Returns each one's list of seconds.

    Every timed run waits `pause` seconds first. numpy's OpenBLAS worker threads busy-wait for
    about 0.1 s after a BLAS call before they sleep, and torch's OpenMP workers spin briefly
    too; without the pause each engine runs while the other's threads still hold a core (on
    2 cores that doubled torch's LSTM time here). The pause lets each run start as it would
    alone.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: tuple[list[float], list[float]] = ([], [])
    gc.collect()
    gc.disable()
    try:
        for r in range(repeats):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for i in order:
                time.sleep(pause)
                t0 = time.perf_counter()
                fns[i]()
                times[i].append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return times


def run(
    rows: str, cells: list[str], repeats: int, long_repeats: int, warmup: int, pause: float
) -> dict[str, Any]:
    import torch

    rnnlab.keep_freed_memory()  # as rnnlab's CLI and sweep workers do (engine/memory.py)
    load_start = _markdown.load_average()
    cores = _markdown.cores()
    torch.set_num_threads(cores)
    # the peak is measured before every row and at the end: other jobs on the machine can
    # only push it down, so the highest median is the best estimate of what the machine can do
    peaks = []
    results = []
    for size in ROWS[rows]:
        T, B, D, H, K = SIZES[size]
        n = long_repeats if T >= 1000 else repeats
        for cell in cells:
            peaks.append(gemm_peak())
            *fns, side = make_pair(cell, T, B, D, H, K)
            t_np, t_torch = time_interleaved((fns[0], fns[1]), n, warmup, pause)
            ms_np, ms_torch = 1e3 * statistics.median(t_np), 1e3 * statistics.median(t_torch)
            # each round's two runs are adjacent in time and see the same machine load, so
            # the median of per-round ratios is steadier than the ratio of the medians
            ratios = [a / b for a, b in zip(t_np, t_torch, strict=True)]
            q1, _, q3 = (
                statistics.quantiles(ratios, n=4, method="inclusive") if n > 1 else ratios * 3
            )
            flops = step_flops(cell, T, B, D, H, K)
            row = dict(
                cell=CELLS[cell].label,
                side=side,
                T=T,
                B=B,
                D=D,
                H=H,
                K=K,
                n=n,
                gflop=flops / 1e9,
                ms_np=ms_np,
                ms_torch=ms_torch,
                ratio=statistics.median(ratios),
                ratio_q1=q1,
                ratio_q3=q3,
                ratio_best=min(t_np) / min(t_torch),
                gflops_np=flops / (ms_np * 1e-3) / 1e9,
                gflops_torch=flops / (ms_torch * 1e-3) / 1e9,
            )
            results.append(row)
            print(
                f"  {row['cell']:8s} T={T} B={B} H={H}: rnnlab {ms_np:.1f} ms, "
                f"torch {ms_torch:.1f} ms, ratio {row['ratio']:.2f} (n={n})",
                file=sys.stderr,
                flush=True,
            )
    peaks.append(gemm_peak())
    peak = max(peaks)
    print(
        f"float32 GEMM peak (numpy 2048x2048 matmul, median), highest of {len(peaks)}: "
        f"{peak:.0f} GFLOP/s (lowest {min(peaks):.0f})",
        file=sys.stderr,
        flush=True,
    )
    for row in results:
        row["pct_np"] = 100 * row["gflops_np"] / peak
        row["pct_torch"] = 100 * row["gflops_torch"] / peak
    return dict(
        peak=peak,
        peaks=peaks,
        rows=results,
        cores=cores,
        torch_threads=torch.get_num_threads(),
        rnnlab_threads=rnnlab.get_num_threads(),
        numpy=np.__version__,
        torch=torch.__version__,
        python=platform.python_version(),
        load=(load_start, _markdown.load_average()),
        pause=pause,
        date=_markdown.now(),
    )


def table(res: dict[str, Any]) -> str:
    head = (
        "| cell | torch | T | B | D | H | K | GFLOP/step | rnnlab ms | torch ms | rnnlab/torch "
        "| ratio IQR | best/best | rnnlab % peak | torch % peak | runs |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    )
    lines = [
        f"| {r['cell']} | {r['side']} | {r['T']} | {r['B']} | {r['D']} | {r['H']} | {r['K']} "
        f"| {r['gflop']:.2f} | {r['ms_np']:.1f} | {r['ms_torch']:.1f} | **{r['ratio']:.2f}** "
        f"| {r['ratio_q1']:.2f}–{r['ratio_q3']:.2f} | {r['ratio_best']:.2f} "
        f"| {r['pct_np']:.0f} % | {r['pct_torch']:.0f} % | {r['n']} |"
        for r in res["rows"]
    ]
    return head + "\n".join(lines) + "\n"


def overloaded(res: dict[str, Any]) -> bool:
    """Whether other jobs visibly competed for the cores during the run."""
    return _markdown.overloaded(res["load"], res["cores"]) or min(res["peaks"]) < 0.7 * res["peak"]


def footer(res: dict[str, Any], command: str) -> str:
    setting = (
        f"float32 GEMM peak {res['peak']:.0f} GFLOP/s (numpy 2048×2048 matmul, median; the "
        f"highest of {len(res['peaks'])} measurements, one before each row and one at the end; "
        f"the lowest was {min(res['peaks']):.0f}). numpy {res['numpy']} (OpenBLAS; rnnlab's large "
        f"products on {res['rnnlab_threads']} threads, its per-step ones on 1), torch "
        f"{res['torch']} (set_num_threads({res['torch_threads']})), Python {res['python']}"
    )
    also = ", or a GEMM peak measurement more than 30 % below the highest"
    return _markdown.footer(res, command, setting, busy=overloaded(res), also=also)


INTRO = """\
## One training step: rnnlab against torch (`benchmarks/step.py`)

One training step (forward, BPTT and every gradient) of rnnlab's numpy engine against
PyTorch on the CPU, measured by `benchmarks/step.py`. The "torch" column says what torch runs:
its own module where it has one (`nn.RNN` / `nn.LSTM` / `nn.GRU` + `nn.Linear`,
loss.backward()); torch runs LSTM through its fused oneDNN kernel (`mkldnn_rnn_layer`,
forward and backward), RNN and GRU through per-step ATen ops and autograd. For the cells
torch has no module for (IndRNN with its default relu, expRNN with modReLU, minGRU, minLSTM),
"loop" is what a user of those cells would otherwise run: the cell's equations in torch ops
(its docstring in `rnnlab/engine/cells/`), a Python loop over time under autograd, with the
input projection over all T·B rows first and an expRNN's W = `torch.linalg.matrix_exp` of the
skew matrix once per forward. The loop takes its steps with `ax.unbind(0)`: written `ax[t]`,
every step's backward adds a zero (T, B, G·H) gradient with one row filled, and torch's step
becomes quadratic in T (an IndRNN at T=1000 took 10–15 s a step against 0.3 s here, on one
torch thread).

Method:
- One layer plus a linear readout, float32, the same weights on both sides, cross-entropy on
  every step summed over time and averaged over the batch. The script checks once per row that
  both sides compute the same loss. minGRU and minLSTM run rnnlab's step loop (their option
  `scan` off, the default; the scan's section below compares the two).
- Both engines run in one process, alternately (rnnlab, torch, torch, rnnlab, ...) after a
  warm-up, each timed run preceded by a 0.2 s pause: numpy's OpenBLAS threads busy-wait for
  about 0.1 s after a multi-threaded BLAS call, and a torch run started inside that window
  lost a core to them (measured with the engine on numpy's default threads: torch's LSTM took
  twice as long, and rnnlab looked twice as good as it is).
- Times are **medians**; the ratio rnnlab/torch is the median of the per-round ratios, each
  round's two runs side by side, so machine-wide slowdowns mostly cancel. "ratio IQR" is the
  interquartile range of those per-round ratios; "best/best" divides the two fastest runs, a
  check that holds up better when other jobs load the machine. The 2-core machine is shared
  with other engineers' test runs and is noisy: quote ratios; absolute times move by tens of
  percent (and more) between runs.
- "% peak" is the GEMM GFLOP/s achieved over the float32 GEMM peak measured in the same run.
  FLOPs are counted from the matrix products only: forward F = 2·T·B·(D·G + H·G + H·K) with
  G = gates·H (input projection, recurrence, readout), backward 2·F, total 3·F; one count for
  both engines. IndRNN, minGRU and minLSTM have no recurrent product (H·G is left out); the
  expRNN's matrix exponential and its derivative are not counted.
- Memory: the script calls `rnnlab.keep_freed_memory()` first, as rnnlab's CLI and sweep
  workers do (`rnnlab/engine/memory.py`), so that neither engine page-faults its buffers back
  in every step. Without it, a process running rnnlab alone paid up to 22,000 faults and
  60 ms of system time per step here (10–25 % of the step; torch in the same process hides
  part of it).
- Threads: rnnlab runs its large products over all T·B rows (input projection, readout,
  weight gradients) on as many BLAS threads as torch (one per core), and the 2·T small
  products of the recurrence on one thread: under load those wait a scheduler slice at every
  call (a T=1000 LSTM step on 2 threads took up to 8× as long as on one, at load 4–5). Measured
  here on idle cores, 2 threads for the recurrence too would save 5–25 % of a step (LSTM at
  H=128 least, the H=256 rows most); the engine does not trade that robustness for it.
  Check the footer's load average and peak spread first.
- Target (issues 2 and 17): rnnlab at or under 1.0× torch's time on every row; the sentence
  below the list says which rows meet it. torch's LSTM is a fused oneDNN kernel, and its rows
  are out of reach for a numpy engine: at T=100, B=32, H=128 the 2·T recurrent products alone
  take 10 ms on one core at 80 % of its peak, and the T·B-row products 6–7 ms on two cores at
  about 80 % of theirs, 16–17 ms before any elementwise work, against torch's whole step at
  15–18 ms. The wide rows are bound by the recurrence's one thread (above).

"""


def verdict(res: dict[str, Any]) -> str:
    """Issues 2's and 17's target, row by row, as the table rounds the ratios."""

    def label(r: dict[str, Any]) -> str:
        return f"{r['cell']} (T={r['T']}, B={r['B']}, H={r['H']}) {r['ratio']:.2f}×"

    rows = res["rows"]
    missed = [r for r in rows if round(r["ratio"], 2) > 1.0]
    met = [r for r in rows if r not in missed]
    if not missed:
        return f"Target met in this run on all {len(rows)} rows.\n\n"
    text = f"**Target not met in this run on {len(missed)} of {len(rows)} rows: "
    text += _markdown.join([label(r) for r in missed]) + ".**"
    if met:
        text += " Met on " + _markdown.join([label(r) for r in met]) + "."
    return text + "\n\n"


def results(res: dict[str, Any], command: str) -> str:
    return verdict(res) + table(res) + "\n" + footer(res, command)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows",
        choices=tuple(ROWS),
        default="all",
        help="quick: the T=100, H=128 rows; all: three sizes (default)",
    )
    ap.add_argument(
        "--cells",
        default=",".join(CELLS),
        help=f"comma-separated cells, of {', '.join(CELLS)} (default: all)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per engine and row (default 15 for all, 10 for quick)",
    )
    ap.add_argument(
        "--long-repeats",
        type=int,
        default=None,
        help="timed runs for the T=1000 rows (default 10)",
    )
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per engine first")
    ap.add_argument(
        "--pause",
        type=float,
        default=0.2,
        help="seconds of idle before every timed run, so the other engine's worker threads "
        "have stopped spinning (default 0.2)",
    )
    _markdown.add_write_options(ap)
    args = ap.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (15 if args.rows == "all" else 10)
    long_repeats = args.long_repeats if args.long_repeats is not None else min(repeats, 10)
    if min(repeats, long_repeats) < 1:
        ap.error(f"--repeats/--long-repeats: got {repeats}/{long_repeats}; expected >= 1")
    cells = args.cells.split(",")
    for cell in cells:
        if cell not in CELLS:
            ap.error(
                f"--cells: got {cell!r}; expected a comma-separated list of {', '.join(CELLS)}"
            )

    res = run(args.rows, cells, repeats, long_repeats, args.warmup, args.pause)
    _markdown.publish(args, "step.py", argv, INTRO, lambda command: results(res, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
