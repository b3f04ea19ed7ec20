"""Reproductions: run the sweeps in examples/reproduce/ and write REPRODUCTIONS.md from their
stores.

    .venv/bin/python benchmarks/reproduce.py [--out runs/reproduce] [--workers 2]
                                             [--only NAME ...] [--no-run] [--html]

Each sweep has its own store, OUT/<name>/ (runs.db, runs/<id>/). Rerunning skips finished
runs, so an interrupted reproduction continues; --only NAME ... runs those sections only
(the others are read from their stores as they are, and keep their timings); --no-run only
rewrites REPRODUCTIONS.md from the stores as they are. --html also writes
OUT/<name>/report.html (rnnlab report). Each section's wall time is kept in
OUT/timings.json. The file is generated, never edited by hand: each row gives the paper's
claim, our setting, our numbers and whether the claim reproduces at this scale, decided
here from the stores.

A section is a sweep file examples/reproduce/NAME.toml and a study function
`NAME(runs, folder) -> (rows, detail)` registered in STUDIES as "NAME": (title, NAME): it
reads the store's runs and returns its rows of the claims table (claim, setting, numbers,
reproduces?) and the markdown under its heading. A study whose configs need a
measurement on this machine first (adding_min: steps for an equal wall-clock budget) also
has an entry in PLANS, which maps the file's configs to the ones to run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab._atomic import atomic_write
from rnnlab.diagnostics import history_stats
from rnnlab.diagnostics.record import gamma_sigma, w_block
from rnnlab.experiments.config import RunConfig
from rnnlab.experiments.executors import make_executor
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import load_sweep, run_sweep
from rnnlab.report.data import RunData, load_store

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = ROOT / "examples" / "reproduce"


def run_study(sweep: Path, folder: Path, workers: int) -> tuple[float, int]:
    """Run every unfinished point of a sweep file into the store at `folder` (after the
    study's plan, if it has one, has set what the file cannot); wall seconds, the plan's
    included, and how many runs ran now."""
    name = sweep.stem
    start = time.perf_counter()
    configs = load_sweep(sweep).configs
    if name in PLANS:
        configs = PLANS[name](configs, folder)
    pool = make_executor("local", workers)
    try:
        with Store(folder, write=True) as store:

            def show(c: Any) -> None:
                print(f"\r{name}: {c.completed}/{c.total} runs", end="", flush=True)

            counts = run_sweep(configs, store, pool, on_change=show)
    finally:
        pool.close()
    seconds = time.perf_counter() - start
    print(f"\r{name}: {len(configs)} runs, {counts.total} run now in {seconds:.0f} s")
    return seconds, counts.total


# --- the claims, checked against the stores -----------------------------------------------


Row = tuple[str, str, str, str]  # claim, setting, numbers, reproduces


def _head(columns: list[str]) -> list[str]:
    """A markdown table's header and rule."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _by(runs: list[RunData], key: Any) -> dict[Any, list[RunData]]:
    out: dict[Any, list[RunData]] = {}
    for run in runs:
        out.setdefault(key(run), []).append(run)
    return out


def _seeds(runs: list[RunData]) -> str:
    n = len({r.config["train"]["seed"] for r in runs})
    return f"{n} seed{'s' if n > 1 else ''}"


def _loss(run: RunData) -> float:
    return float(run.final.get("loss", math.nan))


def _accuracy(run: RunData) -> float:
    return float(run.final.get("accuracy", math.nan))


def _clip(run: RunData) -> str:
    clip = run.config["train"]["clip"]
    return "no clipping" if clip["mode"] == "none" else f"clip {clip['mode']} {clip['threshold']:g}"


def _setting(run: RunData, *extra: str) -> str:
    t = run.config["train"]
    return ", ".join(
        [f"H = {run.config['model']['hidden_size']}", f"{t['optimizer']} lr {t['lr']:g}",
         f"B = {t['batch_size']}", f"{t['steps']} steps", _clip(run), *extra]
    )  # fmt: skip


def adding(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    models = _by(runs, lambda r: r.label)
    Ts = sorted({r.T for r in runs})
    lines = _head(["model", *(f"T = {T}" for T in Ts), "stops solving at"])
    stops: dict[str, int | None] = {}
    fractions: dict[str, list[float]] = {}
    for label, group in models.items():
        by_T = _by(group, lambda r: r.T)
        cells, fractions[label] = [], []
        for T in Ts:
            seeds = by_T.get(T, [])
            solved = sum(r.solved for r in seeds)
            fractions[label].append(solved / max(len(seeds), 1))
            mse = statistics.median(_loss(r) for r in seeds) if seeds else math.nan
            cells.append(f"{solved}/{len(seeds)} solved (MSE {mse:.3g})")
        stops[label] = next((T for T, f in zip(Ts, fractions[label], strict=True) if f < 0.5), None)
        where = f"T = {stops[label]}" if stops[label] else f"none up to T = {Ts[-1]}"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {where} |")
    reach = {k: (v if v is not None else math.inf) for k, v in stops.items()}
    tanh = reach.get("tanh RNN", math.nan)
    falls = fractions.get("tanh RNN", [0])[-1] < fractions.get("tanh RNN", [0])[0]
    longer = all(reach.get(m, -1) > tanh for m in ("LSTM", "IRNN"))
    some_longer = any(reach.get(m, -1) > tanh for m in ("LSTM", "IRNN"))
    verdict = "yes" if falls and longer else "partly" if falls and some_longer else "no"
    numbers = "; ".join(
        f"{m} " + (f"not up to T = {Ts[-1]}" if s is None else f"at T = {s}")
        for m, s in stops.items()
    )
    row = (
        "Adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015): the tanh RNN's "
        "solved fraction falls as T grows; LSTM and IRNN hold to longer T",
        _setting(
            runs[0],
            f"T ∈ {{{', '.join(map(str, Ts))}}}",
            _seeds(runs),
            "solved: validation MSE ≤ 0.01",
        ),
        "stops solving (most seeds unsolved): " + numbers,
        verdict,
    )
    return [row], "\n".join(lines) + _dead_units(runs)


def adding_irnn(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    """The IRNN trained as Le et al. train it: does it solve the adding problem at every T?"""
    Ts = sorted({r.T for r in runs})
    by_T = _by(runs, lambda r: r.T)
    lines = _head(["T", "solved", "validation MSE (per seed)", "first evaluation solved at"])
    solved_at = []
    for T in Ts:
        seeds = sorted(by_T[T], key=lambda r: r.config["train"]["seed"])
        solved = sum(r.solved for r in seeds)
        if solved * 2 > len(seeds):
            solved_at.append(T)
        firsts = [
            next((int(e["step"]) for e in r.evals if e.get("solved") == 1.0), None) for r in seeds
        ]
        lines.append(
            f"| {T} | {solved}/{len(seeds)} | {', '.join(f'{_loss(r):.3g}' for r in seeds)} | "
            + ", ".join("never" if f is None else str(f) for f in firsts)
            + " |"
        )
    verdict = "yes" if solved_at == Ts else "partly" if solved_at else "no"
    row = (
        "IRNN (Le et al. 2015): a ReLU RNN with W = I, trained with plain SGD and clipping, "
        "solves the adding problem",
        _setting(runs[0], f"T ∈ {{{', '.join(map(str, Ts))}}}", _seeds(runs)),
        "solved (most seeds) at T ∈ {" + ", ".join(map(str, solved_at)) + "}"
        if solved_at
        else "solved at no T",
        verdict,
    )
    return [row], "\n".join(lines) + _dead_units(runs)


def _dead_units(runs: list[RunData]) -> str:
    """For ReLU models, the median fraction of dead units at initialisation and at the end:
    a dead unit passes no gradient, so it is lost to memory."""
    out = []
    for label, group in _by(runs, lambda r: r.label).items():
        acts = [(r.diagnostics[0].diagnosis.activations[-1],
                 r.diagnostics[-1].diagnosis.activations[-1])
                for r in group if r.diagnostics]  # fmt: skip
        if acts and acts[0][0].dead_fraction is not None:
            first = statistics.median(a.dead_fraction for a, _ in acts)
            last = statistics.median(b.dead_fraction for _, b in acts)
            out.append(
                f"\n\n{label}: dead ReLU units (0 on every step of every probe sequence), "
                f"median over runs: {first:.0%} at initialisation, {last:.0%} after training."
            )
    return "".join(out)


def copy_memory(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    Ts = sorted({r.T for r in runs})
    lines = _head(
        ["model", "T", "baseline 10·ln 8/(T+20)", "loss (per seed)", "loss / baseline", "accuracy"]
    )
    ratio: dict[tuple[str, int], float] = {}
    for (label, T), group in sorted(_by(runs, lambda r: (r.label, r.T)).items()):
        base = group[0].baseline or math.nan
        losses = [_loss(r) for r in group]
        ratio[label, T] = statistics.mean(losses) / base
        acc = statistics.mean(r.final.get("accuracy", math.nan) for r in group)
        lines.append(
            f"| {label} | {T} | {base:.4f} | {', '.join(f'{x:.4f}' for x in losses)} | "
            f"{ratio[label, T]:.2f} | {acc:.3f} |"
        )
    at_base = [ratio.get(("tanh RNN", T), math.nan) for T in Ts]
    sits = all(0.9 <= r <= 1.1 for r in at_base)
    small = Ts[0]
    beats = ratio.get(("LSTM", small), math.inf) < min(0.9, ratio.get(("tanh RNN", small), 0))
    rows = [
        (
            "Copy memory (Arjovsky et al. 2016): a tanh RNN sits at the memoryless baseline "
            "10·ln 8/(T+20)",
            _setting(runs[0], f"T ∈ {{{', '.join(map(str, Ts))}}}", _seeds(runs)),
            "tanh RNN loss / baseline: "
            + ", ".join(f"{r:.2f} at T = {T}" for r, T in zip(at_base, Ts, strict=True)),
            "yes" if sits else "no",
        ),
        (
            "Copy memory: an LSTM beats the tanh RNN at small T",
            f"as above, T = {small}",
            f"LSTM loss / baseline {ratio.get(('LSTM', small), math.nan):.2f} against "
            f"tanh RNN {ratio.get(('tanh RNN', small), math.nan):.2f}",
            "yes" if beats else "no",
        ),
    ]
    return rows, "\n".join(lines)


def temporal_order(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    lines = _head(
        ["clipping", "seed", "status", "final loss (ln 4 = 1.386)", "accuracy", "spikes"]
        + ["max pre-clip norm"]
    )
    outcome: dict[str, list[str]] = {"none": [], "norm": []}
    spikes: dict[str, int] = {"none": 0, "norm": 0}
    for run in runs:
        mode = run.config["train"]["clip"]["mode"]
        norms = [s["grad_norm"] for s in run.steps]
        stats = history_stats(norms)
        finite = [x for x in norms if math.isfinite(x)]
        loss = _loss(run)
        if run.status == "diverged":
            kind = "diverged"
        elif loss >= 0.8 * math.log(4):
            kind = "plateau near ln 4"
        elif run.solved or loss < 0.5 * math.log(4):
            kind = "converged"
        else:
            kind = "in between"
        outcome[mode].append(kind)
        spikes[mode] += len(stats.spikes)
        where = f" at step {run.diverged_at}" if run.diverged_at is not None else ""
        lines.append(
            f"| {_clip(run)} | {run.config['train']['seed']} | "
            f"{run.status}{where} ({kind}) | {loss:.3f} | "
            f"{run.final.get('accuracy', math.nan):.3f} | {len(stats.spikes)} | "
            f"{max(finite):.3g} |"
        )
    clipped = next(r for r in runs if r.config["train"]["clip"]["mode"] != "none")
    rho = clipped.config["model"]["spectral_radius"]
    clipped_ok = bool(outcome["norm"]) and all(k == "converged" for k in outcome["norm"])
    bad = ("diverged", "plateau near ln 4")
    unclipped_bad = sum(k in bad for k in outcome["none"])
    rows = [
        (
            "Temporal order (Pascanu et al. 2013): with clipping at a threshold the tanh RNN "
            "converges",
            _setting(clipped, f"T = {clipped.T}", f"ρ(W) = {rho:g} at init", _seeds(runs)),
            f"{_clip(clipped)}: {', '.join(outcome['norm'])}",
            "yes" if clipped_ok else "no",
        ),
        (
            "Temporal order: without clipping the norm spikes; runs diverge or plateau near ln 4",
            "as above, no clipping",
            f"no clipping: {', '.join(outcome['none'])}; pre-clip norm spikes (> 10× the "
            f"running median): {spikes['none']} without clipping, {spikes['norm']} with it",
            "yes"
            if unclipped_bad == len(outcome["none"]) and spikes["none"]
            else "partly"
            if unclipped_bad or spikes["none"]
            else "no",
        ),
    ]
    return rows, "\n".join(lines)


def decay_radius(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    lines = _head(
        ["ρ(W)", "seed", "σ_max(W)", "bound γ·σ_max", "measured decay per step", "under it"]
    )
    under = []
    for run in sorted(
        runs, key=lambda r: (r.config["model"]["spectral_radius"], r.config["train"]["seed"])
    ):
        assert run.diagnostics[0].step == 0, "the first diagnosis is at initialisation"
        init = run.diagnostics[0].diagnosis
        bound = gamma_sigma(init) or math.nan
        decay = init.flow.decay_factor
        ok = decay <= bound * (1 + 1e-12)
        under.append(ok)
        w = w_block(init)
        assert w is not None and w.spectral_radius is not None
        lines.append(
            f"| {w.spectral_radius:.3g} | {run.config['train']['seed']} | "
            f"{w.sigma_max:.3g} | {bound:.3g} | {decay:.3g} | "
            f"{'yes' if ok else 'NO'} |"
        )
    radii = sorted({r.config["model"]["spectral_radius"] for r in runs})
    row = (
        "Gradient decay against spectral radius (Pascanu et al. 2013): a tanh RNN's gradient "
        "shrinks at most by γ·σ_max(W) per step back",
        f"tanh RNN H = {runs[0].config['model']['hidden_size']} at initialisation, adding "
        f"T = {runs[0].T}, ρ(W) ∈ {{{', '.join(f'{r:g}' for r in radii)}}}, "
        f"{_seeds(runs)}, float64",
        f"decay ≤ γ·σ_max in {sum(under)} of {len(under)} runs",
        "yes" if all(under) else "no",
    )
    return [row], "\n".join(lines)


def charlm(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    lines = _head(["model", "steps", "seconds", "validation bits/char", "unigram baseline"])
    bpc: dict[str, float] = {}
    seconds: dict[str, float] = {}
    samples = []
    for run in runs:
        bpc[run.label] = float(run.final.get("bits_per_char", math.nan))
        seconds[run.label] = run.seconds or math.nan
        base = (run.baseline or math.nan) / math.log(2)
        lines.append(
            f"| {run.label} | {run.config['train']['steps']} | {seconds[run.label]:.0f} | "
            f"{bpc[run.label]:.3f} | {base:.3f} |"
        )
        samples.append(f"**{run.label}** (best checkpoint, temperature 0.8, seed 0):\n\n"
                       f"```text\n{_sample(folder / 'runs' / run.id)}\n```")  # fmt: skip
    lstm, rnn = bpc.get("LSTM", math.nan), bpc.get("tanh RNN", math.nan)
    budget = seconds.get("LSTM", math.nan) / seconds.get("tanh RNN", math.nan)
    by_label = {r.label: r for r in runs}
    same_steps = ""
    if "LSTM" in by_label and "tanh RNN" in by_label:  # per step, where both were evaluated
        step = by_label["LSTM"].evals[-1]["step"]
        rnn_then = [e for e in by_label["tanh RNN"].evals if e["step"] == step]
        if rnn_then:
            same_steps = (
                f"; at the same step count ({step}) the tanh RNN had "
                f"{rnn_then[0]['bits_per_char']:.3f}"
            )
    row = (
        "Character LM (Graves 2013; Karpathy 2015): an LSTM reaches lower validation bits "
        "per character than a tanh RNN on the same budget",
        _setting(runs[0], "tiny Shakespeare, T = 50, truncated BPTT(50, 50)", _seeds(runs)).replace(
            f"{runs[0].config['train']['steps']} steps, ", ""
        ),
        f"LSTM {lstm:.3f} bits/char against tanh RNN {rnn:.3f}; wall-clock LSTM / RNN = "
        f"{budget:.2f}{same_steps}",
        ("yes" if lstm < rnn else "no") + ("" if 0.75 <= budget <= 1.33 else " (budgets differ)"),
    )
    return [row], "\n".join(lines) + "\n\n" + "\n\n".join(samples)


def _sample(run_dir: Path, length: int = 300) -> str:
    """Text from the run's best checkpoint, primed with "ROMEO:", as `rnnlab sample` does."""
    from rnnlab.experiments.config import parse
    from rnnlab.experiments.prepared import prepare
    from rnnlab.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir / "best.safetensors")
    run = prepare(parse(ckpt.config))
    run.model.set_params(ckpt.params)
    prime = "ROMEO:"
    return prime + run.task.sample(run.model, np.random.default_rng(0), prime, 0.8, length)


def _ratio_table(runs: list[RunData]) -> tuple[list[str], dict[tuple[str, int], list[float]]]:
    """Copy memory per model and T: loss and loss / baseline per seed, accuracy."""
    lines = _head(
        ["model", "T", "baseline 10·ln 8/(T+20)", "loss (per seed)", "loss / baseline (per seed)"]
        + ["accuracy (per seed)", "solved"]
    )
    ratios: dict[tuple[str, int], list[float]] = {}
    for (label, T), group in _by(runs, lambda r: (r.label, r.T)).items():
        group = sorted(group, key=lambda r: r.config["train"]["seed"])
        base = group[0].baseline or math.nan
        ratios[label, T] = [_loss(r) / base for r in group]
        lines.append(
            f"| {label} | {T} | {base:.4f} | {', '.join(f'{_loss(r):.4f}' for r in group)} | "
            f"{', '.join(f'{x:.2f}' for x in ratios[label, T])} | "
            f"{', '.join(f'{_accuracy(r):.3f}' for r in group)} | "
            f"{sum(r.solved for r in group)}/{len(group)} |"
        )
    return lines, ratios


def copy_exprnn(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    """Copy memory at long T: the tanh RNN and the LSTM at the baseline, the expRNN below."""
    Ts = sorted({r.T for r in runs})
    lines, ratios = _ratio_table(runs)
    at_base = {m: [x for T in Ts for x in ratios.get((m, T), [])] for m in ("tanh RNN", "LSTM")}
    near = [0.9 <= x <= 1.1 for xs in at_base.values() for x in xs]
    exp = [x for T in Ts for x in ratios.get(("expRNN", T), [])]
    solved = sum(r.solved for r in runs if r.label == "expRNN")

    def listed(model: str) -> str:
        return "; ".join(
            f"T = {T}: " + ", ".join(f"{x:.2f}" for x in ratios.get((model, T), [])) for T in Ts
        )

    setting = _setting(runs[0], f"T ∈ {{{', '.join(map(str, Ts))}}}", _seeds(runs))
    rows = [
        (
            "Copy memory at long T (Arjovsky et al. 2016): the tanh RNN and the LSTM sit at the "
            "memoryless baseline 10·ln 8/(T+20)",
            setting + ", every model alike; at the baseline: loss / baseline in [0.9, 1.1]",
            "loss / baseline per seed, tanh RNN "
            + listed("tanh RNN")
            + " — LSTM "
            + listed("LSTM"),
            "yes" if near and all(near) else "partly" if any(near) else "no",
        ),
        (
            "Copy memory at long T (Lezcano-Casado & Martínez-Rubio 2019): the expRNN "
            "(orthogonal W = exp(A), modReLU, Henaff init) solves it or goes clearly below "
            "the baseline",
            "as above; clearly below: loss / baseline ≤ 0.5 for every seed; solved: recall "
            "accuracy ≥ 0.99",
            f"expRNN loss / baseline per seed, {listed('expRNN')}; solved {solved} of "
            f"{len(exp)} runs",
            "yes" if exp and all(x <= 0.5 for x in exp) else
            "partly" if any(x <= 0.5 for x in exp) else "no",
        ),
    ]  # fmt: skip
    return rows, "\n".join(lines)


def _first_solved(runs: list[RunData]) -> str:
    """Two table cells: per run, the step of its first solved evaluation, and how many of
    the evaluations from there on were solved (a run may reach the threshold and leave it)."""
    firsts, kept = [], []
    for run in runs:
        steps = [int(e["step"]) for e in run.evals if e.get("solved") == 1.0]
        if not steps:
            firsts.append("never")
            kept.append("—")
            continue
        firsts.append(str(steps[0]))
        kept.append(f"{len(steps)} of {sum(e['step'] >= steps[0] for e in run.evals)}")
    return f"{', '.join(firsts)} | {', '.join(kept)}"


def adding_indrnn(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    """The adding problem at long T: a ReLU IndRNN, u bounded by 2^(1/T), against the tanh RNN."""
    Ts = sorted({r.T for r in runs})
    lines = _head(
        ["model", "T", "bound on u", "validation MSE (per seed)", "solved"]
        + ["first evaluation solved at", "evaluations solved after it"]
    )
    fraction: dict[tuple[str, int], float] = {}
    mse: dict[tuple[str, int], float] = {}
    bounds = {}
    for (label, T), group in sorted(_by(runs, lambda r: (r.label, r.T)).items()):
        group = sorted(group, key=lambda r: r.config["train"]["seed"])
        bound = group[0].config["model"].get("recurrent_max")
        if bound is not None:
            bounds[T] = bound
        fraction[label, T] = sum(r.solved for r in group) / len(group)
        mse[label, T] = statistics.median(_loss(r) for r in group)
        lines.append(
            f"| {label} | {T} | {'—' if bound is None else f'{bound:.6g}'} | "
            f"{', '.join(f'{_loss(r):.3g}' for r in group)} | "
            f"{sum(r.solved for r in group)}/{len(group)} | {_first_solved(group)} |"
        )
    holds = [
        T for T in Ts
        if fraction.get(("relu IndRNN", T), 0) > 0.5 and fraction.get(("tanh RNN", T), 1) < 0.5
    ]  # fmt: skip
    exact = all(math.isclose(b, 2 ** (1 / T), rel_tol=1e-6) for T, b in bounds.items())
    row = (
        "Adding problem at long T (Li et al. 2018): a ReLU IndRNN with its u_j bounded by "
        "2^(1/T) solves it where the tanh RNN fails",
        _setting(
            runs[0],
            f"T ∈ {{{', '.join(map(str, Ts))}}}",
            f"{runs[0].config['model']['num_layers']} layers",
            "IndRNN recurrent_max = 2^(1/T)" + ("" if exact else " (NOT: see the table)")
            + ", u ~ U(0, recurrent_max)",
            _seeds(runs),
            "solved: validation MSE ≤ 0.01",
        ),
        "; ".join(
            f"T = {T}: IndRNN solved {fraction.get(('relu IndRNN', T), 0):.0%} "
            f"(median MSE {mse.get(('relu IndRNN', T), math.nan):.3g}), tanh RNN "
            f"{fraction.get(('tanh RNN', T), 0):.0%} "
            f"({mse.get(('tanh RNN', T), math.nan):.3g})"
            for T in Ts
        ),
        "yes" if holds == Ts else "partly" if holds else "no",
    )  # fmt: skip
    return [row], "\n".join(lines) + _dead_units(runs)


# --- equal wall-clock: steps from the per-step time measured on this machine ------------------

BUDGET_SECONDS = {"adding_min": 40.0}  # training seconds per run
TIMING_STEPS = (10, 60)  # a step's time: (t(60 steps) − t(10 steps)) / 50, in a worker's setup
TIMING_ROUNDS = 3  # the smallest of 3 measurements, taken in turn across the models


def _time_steps(config: RunConfig, steps: int) -> float:
    """Seconds to prepare, train `steps` steps and evaluate once, as a sweep's worker does
    (runner.run_one: one BLAS thread), diagnostics and checkpoints off."""
    import tempfile

    from rnnlab.experiments.runner import run_one

    data = config.model_dump()
    data["train"] |= {"steps": steps, "eval_every": steps, "checkpoint_every": None}
    data["diagnostics"] |= {"every": 0}
    with tempfile.TemporaryDirectory() as tmp:
        result = json.loads(run_one(json.dumps(data), tmp))
    if result["status"] != "done":
        raise RuntimeError(f"timing run {config.run_id}: {result.get('error', result['status'])}")
    return float(result["seconds"])


def equal_wall_clock(configs: list[RunConfig], folder: Path) -> list[RunConfig]:
    """The configs with train.steps set so that every model trains about the study's
    BUDGET_SECONDS: its step time measured here, the smallest of TIMING_ROUNDS, and steps
    rounded down to a multiple of eval_every. The measurement is kept in folder/plan.json,
    so a rerun (and --no-run) reads the same plan and the same run ids."""
    from rnnlab.experiments.prepared import validate
    from rnnlab.report.data import model_label

    path = folder / "plan.json"
    if path.exists():
        plan = json.loads(path.read_text())
    else:
        budget = BUDGET_SECONDS[folder.name]
        first = {model_label(c.model.model_dump()): c for c in reversed(configs)}
        per_step: dict[str, list[float]] = {label: [] for label in first}
        for _ in range(TIMING_ROUNDS):
            for label, config in first.items():
                short, long = (_time_steps(config, n) for n in TIMING_STEPS)
                per_step[label].append((long - short) / (TIMING_STEPS[1] - TIMING_STEPS[0]))
        plan = {"budget_seconds": budget, "models": {}}
        for label, config in first.items():
            seconds = min(per_step[label])
            every = config.train.eval_every
            plan["models"][label] = {
                "seconds_per_step": seconds,
                "measured": per_step[label],
                "steps": max(every, int(budget / seconds) // every * every),
            }
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(plan, indent=1).encode())
    out = []
    for config in configs:
        data = config.model_dump()
        data["train"]["steps"] = plan["models"][model_label(data["model"])]["steps"]
        out.append(validate(data))
    return out


def _mse_at(run: RunData, seconds: float) -> tuple[int, float]:
    """The step and validation MSE of the run's last evaluation at or before `seconds` of
    its wall-clock, its steps taken at the run's mean rate (run seconds / steps)."""
    rate = (run.seconds or math.nan) / run.config["train"]["steps"]
    within = [e for e in run.evals if e["step"] * rate <= seconds] or run.evals[:1]
    return int(within[-1]["step"]), float(within[-1]["loss"])


def adding_min(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    """minGRU and minLSTM against GRU and LSTM on the adding problem, at equal wall-clock.
    The planned steps give each run about the budget; the load on a shared machine moves
    each run's real time from it, so the comparison is read at the shortest run's
    wall-clock, where every run has been evaluated."""
    plan = json.loads((folder / "plan.json").read_text())
    common = min(r.seconds or math.nan for r in runs)
    lines = _head(
        ["model", "step time (planned)", "steps", "run seconds (per seed)"]
        + ["validation MSE at the end (per seed)", f"step, MSE at {common:.0f} s (per seed)"]
    )
    mse: dict[str, list[float]] = {}
    for label, group in _by(runs, lambda r: r.label).items():
        group = sorted(group, key=lambda r: r.config["train"]["seed"])
        at = [_mse_at(r, common) for r in group]
        mse[label] = [x for _, x in at]
        step = plan["models"][label]["seconds_per_step"]
        lines.append(
            f"| {label} | {step * 1e3:.1f} ms | {group[0].config['train']['steps']} | "
            f"{', '.join(f'{r.seconds or math.nan:.0f}' for r in group)} | "
            f"{', '.join(f'{_loss(r):.3g}' for r in group)} | "
            f"{', '.join(f'{s}: {x:.3g}' for s, x in at)} |"
        )

    med = {label: statistics.median(xs) for label, xs in mse.items()}
    pairs = [("minGRU", "GRU"), ("minLSTM", "LSTM")]
    good = [  # as low an MSE, or both solve
        a <= b or (a <= 0.01 and b <= 0.01)
        for a, b in ((med.get(s, math.nan), med.get(f, math.nan)) for s, f in pairs)
    ]
    row = (
        "minGRU and minLSTM (Feng et al. 2024): with gates read from x_t only, a step is "
        "cheaper, and in the same wall-clock they reach a validation MSE as low as GRU and "
        "LSTM on the adding problem",
        _setting(
            runs[0],
            f"T = {runs[0].T}",
            _seeds(runs),
            f"steps = {plan['budget_seconds']:g} s / step time measured by reproduce.py "
            f"before the runs; compared at {common:.0f} s, the shortest run's wall-clock "
            "(each run's evaluations placed at its mean step time)",
            "as low: median MSE ≤ the full cell's, or both ≤ 0.01 (solved)",
        ).replace(f"{runs[0].config['train']['steps']} steps, ", ""),
        f"median validation MSE at {common:.0f} s: "
        + "; ".join(
            f"{s} {med.get(s, math.nan):.3g} against {f} {med.get(f, math.nan):.3g}"
            for s, f in pairs
        ),
        "yes" if all(good) else "partly" if any(good) else "no",
    )
    return [row], "\n".join(lines)


# --- the LRU's ladder, chrono initialisation, and every cell at initialisation ---------------

LADDER = (  # the LRU paper's rungs, by the label our runs carry
    ("tanh RNN", "tanh RNN"),
    ("linear dense RNN", "identity RNN"),
    ("complex diagonal", "LRU (λ direct, no γ)"),
    ("+ exponential parameterisation", "LRU (no γ)"),
    ("+ γ normalisation (ring |λ| ∈ [0, 1])", "LRU"),
    ("the long-range ring |λ| ∈ [0.9, 0.999] (reported, not a rung)", "LRU (|λ| ∈ [0.9, 0.999])"),
)


def _cell(text: str) -> str:
    """Text for a markdown table cell: its | escaped (|λ| is not a column)."""
    return text.replace("|", "\\|")


def _ratio(x: float) -> str:
    return "0 (underflow)" if x == 0 else f"{x:.2g}"


def _at_init(run: RunData) -> float:
    """The ratio ‖∂L_T/∂h_{T−d}‖ / ‖∂L_T/∂h_T‖ at the dependency length d, at step 0."""
    first = run.diagnostics[0] if run.diagnostics else None
    return math.nan if first is None or first.step != 0 else first.diagnosis.flow.ratio


def lru_ladder(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    """Orvieto et al.'s ladder, rung by rung: result, and the lag profile at initialisation."""
    by = _by(runs, lambda r: r.label)
    lines = _head(
        ["rung", "model", "validation MSE (per seed)", "solved", "ratio at T at init (per seed)"]
    )
    median: dict[str, float] = {}
    for rung, label in LADDER:
        group = sorted(by.get(label, []), key=lambda r: r.config["train"]["seed"])
        median[rung] = statistics.median(_loss(r) for r in group) if group else math.nan
        lines.append(
            f"| {_cell(rung)} | {_cell(label)} | {', '.join(f'{_loss(r):.3g}' for r in group)} | "
            f"{sum(r.solved for r in group)}/{len(group)} | "
            f"{', '.join(_ratio(_at_init(r)) for r in group)} |"
        )
    full, tanh = median[LADDER[4][0]], median[LADDER[0][0]]
    solved_full = all(r.solved for r in by.get(LADDER[4][1], []))
    row = (
        "The LRU's ladder (Orvieto et al. 2023): from a tanh RNN, a linear dense RNN, a complex "
        "diagonal one, its exponential parameterisation, then γ normalisation with the ring "
        "initialisation, each rung learns the long dependency better",
        _setting(
            runs[0],
            f"adding T = {runs[0].T}",
            f"{runs[0].config['model']['num_layers']} layers",
            "LRU layers with their GELU mixing, the RNN rungs without",
            _seeds(runs),
            "yes: the γ rung solves (MSE ≤ 0.01) every seed, beats the tanh RNN, and the "
            "three LRU rungs improve in order",
        ),
        "median validation MSE: "
        + "; ".join(f"{rung} {median[rung]:.3g}" for rung, _ in LADDER),
        "yes" if solved_full and full < tanh and all(
            median[LADDER[i][0]] >= median[LADDER[i + 1][0]] for i in range(2, 4)
        ) else "partly" if full < tanh else "no",
    )  # fmt: skip
    note = (
        "\n\nRatio at init: the lag profile's value at the dependency length (T), "
        "‖∂L_T/∂h_0‖ / ‖∂L_T/∂h_T‖, of the diagnosis at step 0. The linear dense RNN has no "
        "mixing between its layers, so it is a linear map of its inputs and cannot form the "
        "adding problem's product at all; its row says so, not its gradient."
    )
    return [row], "\n".join(lines) + note


def copy_chrono(runs: list[RunData], folder: Path) -> tuple[list[Row], str]:
    """Chrono initialisation against the default on copy memory, LSTM, at one long T."""
    by = _by(runs, lambda r: r.config["model"].get("init", "pytorch"))
    lines = _head(
        ["init", "loss / baseline (per seed)", "accuracy (per seed)", "ratio at T + 10 at init"]
    )
    ratio: dict[str, list[float]] = {}
    for init in ("pytorch", "chrono"):
        group = sorted(by.get(init, []), key=lambda r: r.config["train"]["seed"])
        ratio[init] = [_loss(r) / (r.baseline or math.nan) for r in group]
        lines.append(
            f"| {init} | {', '.join(f'{x:.3f}' for x in ratio[init])} | "
            f"{', '.join(f'{_accuracy(r):.3f}' for r in group)} | "
            f"{', '.join(_ratio(_at_init(r)) for r in group)} |"
        )
    pairs = list(zip(ratio["chrono"], ratio["pytorch"], strict=True))
    better = [c < 0.95 * d for c, d in pairs]
    row = (
        "Chrono initialisation (Tallec & Ollivier 2018): an LSTM whose gate biases are drawn "
        "b_f ~ log U[1, T_max − 1], b_i = −b_f learns copy memory at long T better than the "
        "default initialisation",
        _setting(runs[0], f"copy T = {runs[0].T}", "T_max = the dependency length", _seeds(runs)),
        "loss / baseline per seed, chrono "
        + ", ".join(f"{c:.3f}" for c, _ in pairs)
        + " against default "
        + ", ".join(f"{d:.3f}" for _, d in pairs),
        "yes" if pairs and all(better) else "partly" if any(better) else "no",
    )
    return [row], "\n".join(lines)


EVERY_CELL_FIGURE = ROOT / "benchmarks" / "figures" / "every_cell.png"


def every_cell_section() -> str:
    """Every registered cell's lag profile at initialisation on one adding batch (the demo
    report's lead figure), as a table and the figure file."""
    from rnnlab.experiments.gallery import every_cell_at_init
    from rnnlab.report import plots

    start = time.perf_counter()
    curves = every_cell_at_init()
    fig = plots.every_cell(curves)
    EVERY_CELL_FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(EVERY_CELL_FIGURE, dpi=100, metadata={"Software": None})
    lags = (1, 10, 50, 99)
    lines = _head(["cell at initialisation", "family", *(f"τ = {k}" for k in lags)])
    lines += [
        f"| {_cell(c.label)} | {c.family} | "
        + " | ".join(_ratio(c.profile[k]) for k in lags)
        + " |"
        for c in curves
    ]
    return (
        "## Every cell at initialisation\n\n"
        "`rnnlab/experiments/gallery.py`: one adding batch (T = 100, H = 64, B = 32, float64, "
        "loss on the last step), ‖∂L_T/∂h_{T−τ}‖ / ‖∂L_T/∂h_T‖ averaged over the batch; "
        f"{time.perf_counter() - start:.0f} s. The same picture opens the demo's report.\n\n"
        + "\n".join(lines)
        + f"\n\n![every cell at initialisation]({EVERY_CELL_FIGURE.relative_to(ROOT)})"
    )


PLANS = {"adding_min": equal_wall_clock}  # studies whose configs need a measurement first


STUDIES = {
    "adding": ("Adding problem", adding),
    "adding_irnn": ("Adding problem: the IRNN in its paper's setting", adding_irnn),
    "copy": ("Copy memory", copy_memory),
    "temporal_order": ("Temporal order with and without clipping", temporal_order),
    "decay_radius": ("Decay against spectral radius at initialisation", decay_radius),
    "charlm": ("Character language model", charlm),
    "copy_exprnn": ("Copy memory at long T: expRNN", copy_exprnn),
    "adding_indrnn": ("Adding problem at long T: IndRNN", adding_indrnn),
    "adding_min": ("Adding problem at equal wall-clock: minGRU and minLSTM", adding_min),
    "lru_ladder": ("The LRU's ladder, rung by rung", lru_ladder),
    "copy_chrono": ("Copy memory at long T: chrono initialisation", copy_chrono),
}


def write_markdown(path: Path, out: Path, timings: dict[str, float], machine: str) -> None:
    rows: list[Row] = []
    sections = []
    for name, (title, study) in STUDIES.items():
        folder = out / name
        if not (folder / "runs.db").exists():
            sections.append(f"## {title}\n\nNot run yet (`examples/reproduce/{name}.toml`).")
            continue
        runs = load_store(folder)
        unfinished = [r.id for r in runs if r.status not in ("done", "diverged")]
        if unfinished:
            sections.append(f"## {title}\n\nUnfinished or failed runs: {', '.join(unfinished)}.")
            continue
        found, detail = study(runs, folder)
        rows += found
        wall = f"{timings[name]:.0f} s wall" if name in timings else "wall time not recorded"
        cpu = sum(r.seconds or 0 for r in runs)
        sections.append(
            f"## {title}\n\n`examples/reproduce/{name}.toml`: {len(runs)} runs, {wall}, "
            f"{cpu:.0f} s of run time.\n\n{detail}"
        )
    table = ["| claim (paper) | our setting | our numbers | reproduces? |", "|---|---|---|---|"]
    table += [f"| {' | '.join(_cell(cell) for cell in row)} |" for row in rows]
    head = (
        "# Reproductions\n\n"
        "Generated by `benchmarks/reproduce.py` from the results stores of the sweeps in "
        "`examples/reproduce/`; do not edit by hand. Scaled to a 2-core CPU, so each claim "
        'is tested at small sizes and short budgets: "yes" means the claim\'s direction '
        "holds here, not that the paper's numbers are matched.\n\n"
        f"Machine: {machine}. Total wall time: {sum(timings.values()) / 60:.1f} min. "
        "Figures: `rnnlab report runs/reproduce/<name>`.\n"
    )
    sections.append(every_cell_section())
    text = head + "\n" + "\n".join(table) + "\n\n" + "\n\n".join(sections) + "\n"
    atomic_write(path, text.encode("utf-8"))


def _timings(path: Path) -> dict[str, float]:
    """Each section's wall seconds, as the last run of it wrote them."""
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "reproduce")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=list(STUDIES), default=list(STUDIES))
    parser.add_argument("--no-run", action="store_true", help="only rewrite REPRODUCTIONS.md")
    parser.add_argument("--html", action="store_true", help="also write each report.html")
    args = parser.parse_args()

    timings_json = args.out / "timings.json"
    if not args.no_run:
        for name in args.only:
            seconds, ran = run_study(SWEEPS / f"{name}.toml", args.out / name, args.workers)
            if ran:  # a rerun that only skipped finished runs keeps the first timing
                # read again now: another invocation (--only other sections) may have
                # written its own timings since this one started
                timings = _timings(timings_json) | {name: seconds}
                atomic_write(timings_json, json.dumps(timings, indent=1).encode())
    timings = _timings(timings_json)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {args.workers} workers"
    write_markdown(ROOT / "REPRODUCTIONS.md", args.out, timings, machine)
    print(f"wrote {ROOT / 'REPRODUCTIONS.md'}")
    if args.html:
        from rnnlab.report import Sweep

        for name in STUDIES:
            if (args.out / name / "runs.db").exists():
                print(f"report: {Sweep(args.out / name).save(args.out / name / 'report.html')}")


if __name__ == "__main__":
    main()
