"""The cost of rnnlab.torch.GradientFlowMonitor in a PyTorch training loop.

    python benchmarks/torch_monitor.py [--steps 300] [--every 100] [--repeats 5] [--threads N]

The model is the issue's composite one: embedding -> 2-layer LSTM -> linear, a character
language model on tiny Shakespeare batches (T = 100, B = 32, H = 128, float32, Adam).
An unmonitored and a monitored run of `steps` steps make a round, in alternating order, and
the end-to-end overhead is the median of the per-round time ratios (a busy machine slows
both runs of a round alike). Beside it, the median time of one training step and of one
diagnosis give the overhead by construction, t_diagnosis / (every · t_step), and within each
monitored run the time spent in monitor.step over the rest gives a third estimate. Every round
checks the monitored run's parameters bit-identical to the unmonitored run's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import rnnlab.torch as rt
from rnnlab.tasks import get

T, B, E, H = 100, 32, 32, 128


class CharLM(torch.nn.Module):
    def __init__(self, V: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(H, V)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.embed(ids))[0])


def loss_fn(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    ids, targets = batch
    return F.cross_entropy(model(ids).flatten(0, 1), targets.flatten())


def batches(n: int) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    task = get("charlm", T=T)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        X, Y, _ = task.batch(rng, B)  # (T, B) ids
        out.append((torch.from_numpy(X.T.copy()), torch.from_numpy(Y.T.copy())))
    return task.input_size, out


def train(V: int, data: list, every: int | None) -> tuple[float, CharLM, list[float], float]:
    """(seconds, model, seconds per diagnosis, seconds in monitor.step) for one run."""
    torch.manual_seed(0)
    model = CharLM(V)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    monitor = None if every is None else rt.GradientFlowMonitor(model, every, loss_fn=loss_fn)
    diagnoses, in_monitor = [], 0.0
    start = time.perf_counter()
    for batch in data:
        opt.zero_grad()
        loss_fn(model, batch).backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if monitor is not None:
            t0 = time.perf_counter()
            d = monitor.step(batch, grad_norm=norm)
            spent = time.perf_counter() - t0
            in_monitor += spent
            if d is not None:
                diagnoses.append(spent)
    return time.perf_counter() - start, model, diagnoses, in_monitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    V, data = batches(args.steps)
    train(V, data[:20], args.every)  # warm-up: first calls allocate and load kernels
    plain, watched, ratios, per_diagnosis, in_run = [], [], [], [], []
    for i in range(args.repeats):
        order = (None, args.every) if i % 2 == 0 else (args.every, None)  # cancels drift
        runs = {every: train(V, data, every) for every in order}
        (t_plain, reference, _, _), (t_watched, model, diagnoses, spent) = (
            runs[None],
            runs[args.every],
        )
        in_run.append(spent / (t_watched - spent))  # the monitor's share within the run
        plain.append(t_plain)
        watched.append(t_watched)
        ratios.append(t_watched / t_plain)
        per_diagnosis += diagnoses
        pairs = zip(reference.state_dict().values(), model.state_dict().values(), strict=True)
        same = all(torch.equal(a, b) for a, b in pairs)
        assert same, "the monitored run's parameters differ from the unmonitored run's"
    t_step = statistics.median(plain) / args.steps
    t_diag = statistics.median(per_diagnosis)
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    print(
        f"composite char-LM (embedding -> 2-layer LSTM H={H} -> linear), T={T}, B={B}, "
        f"float32, {torch.get_num_threads()} torch threads; {args.steps} steps x {args.repeats}"
    )
    print(f"training step (median)      {1e3 * t_step:8.1f} ms")
    print(f"one diagnosis (median)      {1e3 * t_diag:8.1f} ms  = {t_diag / t_step:.1f} steps")
    by_construction = 100 * t_diag / (args.every * t_step)
    print(f"overhead by construction    {by_construction:8.2f} % at every={args.every}")
    print(f"overhead within the run     {100 * statistics.median(in_run):8.2f} % (median)")
    print(
        f"overhead end to end         {100 * (statistics.median(ratios) - 1):8.2f} % "
        f"(median of per-round ratios; IQR {100 * (q1 - 1):.1f} to {100 * (q3 - 1):.1f} %)"
    )
    print("parameters bit-identical    yes, every round")
    print(f"load average                {os.getloadavg()[0]:.1f} (1 min, at the end)")


if __name__ == "__main__":
    main()
