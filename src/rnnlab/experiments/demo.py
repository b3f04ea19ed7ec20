"""The demo: the article's story, measured. First at initialisation — how ∂L_T/∂h_k shrinks
or grows with the lag — then in training, on the adding problem at T = 60, where the tanh
RNN fails and τ = 50, the article's lag, is inside every lag profile:

    tanh RNN               vanishes: stays at the baseline MSE 1/6
    tanh RNN, σ_max 0.8    the article's case: ‖Π J‖ ≤ 0.8^τ, so 0.8^50 ≈ 1.43e−5 and less
    tanh RNN, ρ(W) = 2     explodes without a threshold (SGD): diverged, caught at its step
    the same, clipped      clipping the global norm at 1 keeps it finite
    IRNN                   ReLU, W = I, clipped (Le et al. 2015)
    LSTM, GRU              gated cells carry the gradient across the lag

How the unclipped run explodes, as measured on this machine (seeds 0–2 alike): W is
orthogonal with every singular value 2, so at initialisation ∂L_T/∂h_k grows back through
time (the lag profile is above 1) and the pre-clip norm is ~2.5e4. Plain SGD at 0.02 takes
that step unclipped; it throws every tanh unit into saturation, and from there the step is
too long for the loss surface: the norm grows ×1.6 per step for ~90 steps (the readout V,
c carries it; saturated units pass no gradient into W) until the loss overflows at step
~98. Clipped at 1, the first step moves the weights by at most lr and the cascade never
starts. Adam's normalised steps would hide all of this, so this pair uses SGD.

Settings: H = 64, B = 32, 3000 steps (300 with `quick`), Adam at 2e-3 with norm clipping at
1 except the ρ(W) = 2 pair; the unclipped run is evaluated and diagnosed every 10 steps, to
see the blow-up coming, the others at step 0 and every eval_every steps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.engine.model import SequenceModel
from rnnlab.experiments.config import RunConfig
from rnnlab.experiments.executors import make_executor
from rnnlab.experiments.gallery import CELLS_AT_INIT, build_at_init, lag_profile
from rnnlab.experiments.prepared import validate
from rnnlab.experiments.store import Store
from rnnlab.experiments.sweep import Counts, run_sweep
from rnnlab.tasks.adding import AddingTask

LAGS = (1, 10, 50, 100)
# the table at initialisation: these rows of the every-cell gallery, by label
STORY = ("tanh RNN", "tanh RNN, σ_max 0.8", "tanh RNN, ρ(W) = 2", "LSTM")
# T, steps, H, eval and checkpoint cadence. T = 60 lets the profile reach the article's τ = 50.
FULL = (60, 3000, 64, 250)
QUICK = (60, 300, 64, 30)

# label, [model] overrides, [train] overrides, [diagnostics] overrides
UNCLIPPED, CLIPPED = "tanh RNN, ρ(W) 2, no clipping", "tanh RNN, ρ(W) 2, clipped"
MODELS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("tanh RNN", {"cell": "rnn", "nonlinearity": "tanh"}, {}, {}),
    # the article's case: an orthogonal W scaled by 0.8 has every singular value 0.8
    (
        "tanh RNN, σ_max 0.8",
        {"cell": "rnn", "nonlinearity": "tanh", "init": "orthogonal", "spectral_radius": 0.8},
        {},
        {},
    ),
    (
        UNCLIPPED,
        {"cell": "rnn", "nonlinearity": "tanh", "init": "orthogonal", "spectral_radius": 2.0},
        {"optimizer": "sgd", "lr": 0.02, "clip": {"mode": "none"}, "eval_every": 10},
        {"every": 10},
    ),
    (
        CLIPPED,
        {"cell": "rnn", "nonlinearity": "tanh", "init": "orthogonal", "spectral_radius": 2.0},
        {"optimizer": "sgd", "lr": 0.02},
        {},
    ),
    ("IRNN", {"cell": "rnn", "nonlinearity": "relu", "init": "identity"}, {}, {}),
    ("LSTM", {"cell": "lstm"}, {}, {}),
    ("GRU", {"cell": "gru"}, {}, {}),
]


def demo_configs(quick: bool = False) -> list[tuple[str, RunConfig]]:
    T, steps, H, every = QUICK if quick else FULL
    configs = []
    for label, model, train, diagnostics in MODELS:
        data = {
            "model": {"hidden_size": H, **model},
            "task": {"name": "adding", "T": T},
            "train": {
                "optimizer": "adam",
                "lr": 2e-3,
                "batch_size": 32,
                "steps": steps,
                "eval_every": every,
                "checkpoint_every": every,
                "clip": {"mode": "norm", "threshold": 1.0},
                **train,
            },
            "diagnostics": {"every": every, "probe_size": 32, "jacobians": 2, **diagnostics},
        }
        configs.append((label, validate(data)))
    return configs


def report_intro(rows: list[DemoRow], quick: bool = False) -> str:
    """The report's opening text: the article, what was run, what the ρ(W) = 2 pair did
    (read from the runs' rows) and each run's id."""
    configs = demo_configs(quick)
    first = configs[0][1]
    by_label = {row.label: row for row in rows}
    lines = [
        "This report measures the argument of the article rnnlab started from, "
        "“RNN梯度消失与梯度爆炸的原因” (the causes of vanishing and exploding gradients in "
        r"RNNs): the gradient that reaches step $k$ from step $T$ is a product of $T-k$ "
        r"Jacobians $\operatorname{diag}(\phi'(a_j))\,W$. With tanh ($\phi' \le 1$) and "
        r"$\sigma_{\max}(W) = 0.8$ it shrinks at least like $0.8^{T-k}$, so fifty steps back "
        r"it is at most $0.8^{50} \approx 1.43 \times 10^{-5}$ of the local one: it vanishes. "
        r"With a large $W$ it can grow: it explodes. The remedies are ReLU activations (here "
        r"the IRNN: ReLU with $W = I$), clipping the gradient at a threshold, and the LSTM "
        "(and the GRU).",
        f"Seven models on the adding problem at T = {first.task_params['T']}: "
        f"H = {first.model.hidden_size}, B = {first.train.batch_size}, "
        f"{first.train.steps} steps. Adam at 2e-3 with the global gradient norm clipped at 1, "
        "except the pair with ρ(W) = 2: plain SGD at 0.02, without and with clipping, "
        "because Adam's normalised steps hide the explosion. "
        + _pair_text(by_label[UNCLIPPED], by_label[CLIPPED]),
        "Runs: " + "; ".join(f"{config.run_id} = {label}" for label, config in configs) + ".",
    ]
    return "\n\n".join(lines)


def _pair_text(unclipped: DemoRow, clipped: DemoRow) -> str:
    """What the ρ(W) = 2 pair did, as measured."""
    if unclipped.diverged_at is None:
        bare = f"Unclipped, it did not diverge (verdict {unclipped.verdict})"
    else:
        grew = (
            f" after its pre-clip norm grew ×{unclipped.growth:.3g} per step"
            if unclipped.growth is not None and unclipped.growth > 1
            else ""
        )
        bare = f"Unclipped, it diverged at step {unclipped.diverged_at}{grew}"
        if unclipped.saturation is not None:
            bare += f", with {unclipped.saturation:.0%} of its tanh units saturated"
    twin = (
        f"diverged at step {clipped.diverged_at}"
        if clipped.diverged_at is not None
        else f"stayed finite to the end (verdict {clipped.verdict})"
    )
    return f"{bare}; clipped at 1, it {twin}."


@dataclass(frozen=True)
class DemoRow:
    label: str
    status: str
    diverged_at: int | None
    mse: float  # final validation MSE (the last finite evaluation)
    solved: bool
    verdict: str  # the last diagnosis' label (a diverged run's is taken where it stopped)
    decay: float | None  # ×factor per step of the lag profile
    horizon: int | None
    sigma_max: float | None  # σ_max(W) of the first layer (the stacked gates for LSTM/GRU)
    growth: float | None  # the pre-clip norm's factor per step, over the last steps recorded
    saturation: float | None  # of the top layer's tanh units, at the last diagnosis


def run_demo(
    out: Path,
    quick: bool = False,
    workers: int | None = None,
    on_change: Callable[[Counts], None] | None = None,
) -> list[DemoRow]:
    """Train the demo's models into the store at `out` (finished runs are reused) and
    summarise each from its final evaluation and its last diagnosis."""
    configs = demo_configs(quick)
    with Store(out, write=True) as store:
        executor = make_executor("local", workers=workers)
        try:
            run_sweep([c for _, c in configs], store, executor, on_change=on_change)
        finally:
            executor.close()
        return [_row(label, config, store) for label, config in configs]


def _row(label: str, config: RunConfig, store: Store) -> DemoRow:
    run = store.get(config.run_id)
    history = json.loads((store.run_dir(config.run_id) / "history.json").read_text())
    final = history["evals"][-1]
    last = history["diagnostics"][-1] if history["diagnostics"] else None
    diverged = history["status"] == "diverged"
    w = next((s for s in last["spectra"] if s["block"] == "W"), None) if last else None
    return DemoRow(
        label=label,
        status=run.status,
        diverged_at=history["diverged_at"],
        mse=final["mse"],
        solved=bool(final["solved"]) and not diverged,
        verdict=last["verdict"]["label"] if last else "not diagnosed",
        decay=last["flow"]["decay_factor"] if last else None,
        horizon=last["flow"]["horizon"] if last else None,
        sigma_max=w["sigma_max"] if w else None,
        growth=((last["verdict"].get("history") or {}).get("growth")) if last else None,
        saturation=last["activations"][-1].get("saturation") if last else None,
    )


# --- at initialisation ----------------------------------------------------------------------


@dataclass(frozen=True)
class StoryRow:
    name: str
    sigma_max: float  # σ_max of the recurrent W (the stacked gate blocks for LSTM)
    profile: dict[int, float]  # lag -> mean ‖∂L_T/∂h_{T−lag}‖ / ‖∂L_T/∂h_T‖
    bound: dict[int, float] | None  # lag -> (γ σ_max)^lag, where it applies


def lag_ratios(model: SequenceModel, X: np.ndarray, Y: np.ndarray) -> dict[int, float]:
    """Mean over the batch of ‖δ_{T−τ}‖ / ‖δ_T‖ with the loss on the last step only."""
    profile = lag_profile(model, X, Y)
    return {lag: float(profile[lag]) for lag in LAGS}


def story_at_init(hidden_size: int = 64, batch_size: int = 32, seed: int = 0) -> list[StoryRow]:
    """The table at initialisation, on one adding batch of T = 101 (loss on the last step)."""
    task = AddingTask(T=max(LAGS) + 1, dtype="float64", seed=seed)
    X, Y, _ = task.batch(np.random.default_rng(seed), batch_size)
    sizes: dict[str, Any] = dict(
        input_size=2, hidden_size=hidden_size, output_size=1, dtype="float64", seed=seed
    )
    options = {label: opts for label, _, opts in CELLS_AT_INIT}
    rows = []
    for name in STORY:
        model = build_at_init(options[name], task.T, **sizes)
        smax = float(np.linalg.norm(model.params["W_0"], 2))
        gamma = model.cell.gamma  # None where no Pascanu bound holds (gated cells)
        bound = None if gamma is None else {lag: (gamma * smax) ** lag for lag in LAGS}
        rows.append(StoryRow(name, smax, lag_ratios(model, X, Y), bound))
    return rows
