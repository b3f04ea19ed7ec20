"""diagnose(model, X, Y): one BPTT pass, every measurement, and the verdict, in a Diagnosis."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.arrays import Array
from rnnlab.diagnostics import html, text
from rnnlab.diagnostics._common import from_jsonable, jsonable
from rnnlab.diagnostics.activations import ActivationStats, activation_stats
from rnnlab.diagnostics.flow import GradientFlow, gradient_flow
from rnnlab.diagnostics.jacobian import JacobianProducts, jacobian_products
from rnnlab.diagnostics.options import DiagnosisOptions, options_from
from rnnlab.diagnostics.spectra import BlockSpectrum, weight_spectra
from rnnlab.diagnostics.verdict import (
    Learning,
    RunInfo,
    Thresholds,
    Verdict,
    history_stats,
    judge,
)
from rnnlab.engine.blas import one_blas_thread
from rnnlab.engine.model import SequenceModel, State


@dataclass(frozen=True)
class Diagnosis:
    """What diagnose() found. `verdict.label` is vanishing, exploding, stuck or healthy.

    model: the architecture (model.config plus its init); steps T and batch B of the data;
    loss and grad_norm (global ‖∂L/∂θ‖₂) of the BPTT pass; flow: δ norms per step, weight
    contributions, lag profile and its summary numbers; jacobians: per layer, products
    ‖Π J‖₂ for a few sequences ([] if not measured); spectra of every recurrent W and gate
    block; activations per layer; run and thresholds as used.
    """

    model: dict[str, Any]
    steps: int
    batch: int
    loss: float
    grad_norm: float
    flow: GradientFlow
    jacobians: list[JacobianProducts]
    spectra: list[BlockSpectrum]
    activations: list[ActivationStats]
    verdict: Verdict
    run: RunInfo
    thresholds: Thresholds

    @property
    def label(self) -> str:
        return self.verdict.label

    def to_dict(self, per_sequence: bool = False) -> dict[str, Any]:
        """JSON-safe: lists, dicts, floats, ints, str and None (for non-finite numbers);
        complex eigenvalues as [real, imag]. The lag profile's per-sequence norms (L × t × B
        numbers) are left out unless per_sequence is true."""
        out: dict[str, Any] = jsonable(self)
        if not per_sequence:
            del out["flow"]["lag"]["norms"]
        return out

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Diagnosis:
        """The Diagnosis a to_dict() record holds, as a history or a store keeps it: arrays
        again (a non-finite number, None in JSON, as nan); per-sequence norms the record
        left out as an empty array. Keys beyond the fields (a record's "step") are ignored."""
        return from_jsonable(cls, record)

    def __str__(self) -> str:
        return "\n".join(text.lines(self))

    def _repr_html_(self) -> str:
        """Jupyter's rich display: verdict, evidence, remedies and the lag profile."""
        return html.diagnosis_html(self)


@one_blas_thread
@np.errstate(all="ignore")  # overflow is a finding here, reported in the verdict
def diagnose(
    model: SequenceModel,
    X: Array,
    Y: Array,
    mask: Array | None = None,
    loss: str = "cross_entropy",
    h0: State | None = None,
    *,
    step: int | None = None,
    grad_norms: Sequence[float] | Array | None = None,
    nonfinite_steps: int | None = None,
    learning: Learning | None = None,
    options: DiagnosisOptions | None = None,
    **keywords: Any,
) -> Diagnosis:
    """Diagnose `model` on one batch (X, Y, mask, loss and h0 as for loss_and_grads).

    step: the step t whose loss L_t is followed back (default T). grad_norms /
    nonfinite_steps: a run's pre-clip global gradient norms so far, for spikes, growth and
    non-finite steps. learning: the run's last validation loss against its task's baseline
    (for the stuck verdict). options: a DiagnosisOptions (dependency_length,
    jacobian_sequences, rng, run, thresholds), whose fields may also be given as keywords,
    overriding those of `options`. The model is not changed.

    Weights or gradients that overflowed give a verdict that says so, never an exception
    or a numpy warning: the measurements are taken with floating-point errors silenced and
    non-finite values are reported as such.
    """
    opts = options_from(options, keywords)
    if not isinstance(model, SequenceModel):
        raise ValueError(f"model: got {type(model).__name__}; expected an rnnlab RNN, LSTM or GRU")
    th = opts.thresholds
    res = model.loss_and_grads(X, Y, loss=loss, mask=mask, h0=h0)
    T, B = res.trace.outputs.shape[:2]
    flow = gradient_flow(
        model,
        res.trace,
        X,
        Y,
        loss=loss,
        mask=mask,
        step=step,
        dependency_length=opts.dependency_length,
        horizon_threshold=th.horizon,
    )
    n = min(int(opts.jacobian_sequences), B)  # a small batch measures all its sequences
    jacobians = []
    if n:
        chosen = np.sort(opts.rng.choice(B, n, replace=False)) if opts.rng is not None else n
        jacobians = jacobian_products(model, res.trace, step=flow.lag.step, sequences=chosen)
    spectra = weight_spectra(model)
    activations = activation_stats(model, res.trace, th.saturation)
    sq = sum(float(np.sum(np.square(g, dtype=np.float64))) for g in res.grads.values())
    return assemble(
        model=model.config | {"init": getattr(model, "init", None)},
        steps=T,
        batch=B,
        loss=float(res.loss),
        grad_norm=math.sqrt(sq),
        flow=flow,
        jacobians=jacobians,
        spectra=spectra,
        activations=activations,
        run=opts.run or RunInfo.from_model(model),
        thresholds=th,
        grad_norms=grad_norms,
        nonfinite_steps=nonfinite_steps,
        learning=learning,
    )


def assemble(
    *,
    model: dict[str, Any],
    steps: int,
    batch: int,
    loss: float,
    grad_norm: float,
    flow: GradientFlow,
    jacobians: list[JacobianProducts],
    spectra: list[BlockSpectrum],
    activations: list[ActivationStats],
    run: RunInfo,
    thresholds: Thresholds | None = None,
    grad_norms: Sequence[float] | Array | None = None,
    nonfinite_steps: int | None = None,
    learning: Learning | None = None,
) -> Diagnosis:
    """The verdict on measurements made anywhere (diagnose() on the engine, or the PyTorch
    bridge), wrapped in a Diagnosis. `model` describes the architecture; it needs cell,
    num_layers and hidden_size (and nonlinearity for an Elman RNN) to print."""
    th = thresholds or Thresholds()
    finite = math.isfinite(loss) and math.isfinite(grad_norm)
    notes = _notes(jacobians, activations)
    bad = [f"layer {b.layer} {b.block}" for b in spectra if not math.isfinite(b.sigma_max)]
    if bad:
        notes.insert(0, f"the weights are not finite ({', '.join(bad)}): no spectrum")
    history = None if grad_norms is None else history_stats(grad_norms, nonfinite_steps, th)
    verdict = judge(
        run=run,
        flow=flow,
        gradients_finite=finite,
        grad_norm=grad_norm,
        history=history,
        learning=learning,
        thresholds=th,
        notes=notes,
    )
    return Diagnosis(
        model=model,
        steps=steps,
        batch=batch,
        loss=float(loss),
        grad_norm=float(grad_norm),
        flow=flow,
        jacobians=jacobians,
        spectra=spectra,
        activations=activations,
        verdict=verdict,
        run=run,
        thresholds=th,
    )


def _notes(jacobians: list[JacobianProducts], activations: list[ActivationStats]) -> list[str]:
    """Evidence lines beyond the lag profile: the Pascanu bound, Lyapunov exponents, units."""
    notes = []
    for jp in jacobians:
        n = len(jp.sequences)
        zero = int(np.count_nonzero(jp.lyapunov == -np.inf))
        finite = jp.lyapunov[np.isfinite(jp.lyapunov)]
        if finite.size:
            lam = float(np.mean(finite))
            notes.append(
                f"layer {jp.layer}: Jacobian products over {jp.step} steps grow "
                f"×{math.exp(lam):.3g} per step (Lyapunov exponent {lam:.3g}, mean of "
                f"{finite.size} of {n} sequences)"
            )
        if zero:
            notes.append(
                f"layer {jp.layer}: the Jacobian product reaches exactly 0 in {zero} of {n} "
                f"sequences (switched-off units cut every path back through the recurrence)"
            )
        if jp.exact_rate is not None and finite.size:
            notes.append(
                f"layer {jp.layer}: theory gives $\\|\\prod J\\|$ = {jp.exact_rate:.4g}^τ exactly "
                f"(a diagonal linear or orthogonal recurrence); measured ×{math.exp(lam):.4g} "
                "per step"
            )
        gamma, sigma = jp.gamma, jp.sigma_max
        if (
            gamma is not None
            and sigma is not None
            and math.isfinite(sigma)
            and jp.exact_rate is None
        ):
            g = gamma * sigma  # the Pascanu bound, where no exact law replaces it
            consequence = (
                f"< 1, vanishing is certain, $\\|\\prod J\\|$ ≤ {g:.3g}^τ"
                if g < 1
                else "≥ 1, the bound does not force vanishing"
            )
            notes.append(
                f"layer {jp.layer}: $\\gamma \\cdot \\sigma_{{\\max}}(W)$ = {g:.3g} {consequence}"
            )
    for a in activations:
        if not math.isfinite(a.mean_dphi):  # nan states: no fraction of them means anything
            notes.append(f"layer {a.layer}: the activations are not finite (the state overflowed)")
            continue
        if a.saturation is not None:
            notes.append(
                f"layer {a.layer}: {a.saturation:.1%} of {a.nonlinearity} units saturated "
                f"(mean φ' {a.mean_dphi:.3g})"
            )
        if a.dead_fraction is not None:
            notes.append(
                f"layer {a.layer}: {a.dead_fraction:.1%} of ReLU units dead, "
                f"{a.inactive_fraction:.1%} of activations 0"
            )
        if a.gate is not None:
            notes.append(f"layer {a.layer}: mean {a.gate} gate {a.gate_mean:.3g}")
    return notes
