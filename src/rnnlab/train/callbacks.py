"""Training callbacks. A callback is called once before training (step 0), after every
step as `callback(step, model, history)`, where `step` counts the steps done (after a
skipped, non-finite step the model is the one before it), and once more where a run stops
on divergence, with history.status "diverged" and the last finite model."""

from __future__ import annotations

import math

from rnnlab.diagnostics.callback import DiagnosisCallback
from rnnlab.diagnostics.verdict import Learning, RunInfo
from rnnlab.engine.model import SequenceModel
from rnnlab.tasks.base import Task
from rnnlab.train.config import DiagnosticsConfig, TrainConfig
from rnnlab.train.history import History


class RecordDiagnostics:
    """Diagnose the task's first validation sequences at step 0, every `cadence` steps, at
    the last step and at a divergence stop, and append the record to history.diagnostics.
    The verdict sees every pre-clip norm recorded so far (a skipped step counts as
    non-finite) and the last validation loss against the task's baseline, read back from
    the history, so a resumed run records exactly what an uninterrupted one does."""

    def __init__(
        self,
        model: SequenceModel,
        task: Task,
        config: TrainConfig,
        diagnostics: DiagnosticsConfig,
        run: RunInfo | None = None,
    ) -> None:
        X, Y, mask = (a[:, : diagnostics.probe_size] for a in task.validation)
        clip = config.clip
        run = run or RunInfo.from_model(model, clip_mode=clip.mode, clip_threshold=clip.threshold)
        self.probe = DiagnosisCallback(
            model,
            X,
            Y,
            mask,
            every=diagnostics.cadence(config.steps),
            loss=task.loss,
            options=diagnostics.options(task, run),
        )
        self.baseline = float(task.baseline)
        self.steps = config.steps

    def __call__(self, step: int, model: SequenceModel, history: History) -> None:
        due = self.probe.due(step) or step == self.steps  # the end is always diagnosed
        if not due and history.status != "diverged":
            return
        self.probe.grad_norms, learning = history_context(history, step, self.baseline)
        if history.diagnostics and history.diagnostics[-1]["step"] == step:
            history.diagnostics.pop()  # the stop's diagnosis replaces one at the same step
        record = self.probe(step, model, force=True, learning=learning)
        if record is not None:
            history.diagnostics.append(record)


def history_context(
    history: History, step: int, baseline: float
) -> tuple[list[float], Learning | None]:
    """What a diagnosis after `step` steps reads from the run's history: the pre-clip norm of
    every step done (a skipped step, and the step a run diverged at, as nan) and the last
    validation loss at or before `step` against the task's baseline."""
    norms = [
        math.nan if r.get("skipped") else r["grad_norm"]
        for r in history.steps
        if r["step"] < step or r["step"] == history.diverged_at == step
    ]
    evals = [e for e in history.evals if e["step"] <= step]
    if not evals:
        return norms, None
    last = evals[-1]
    return norms, Learning(step=int(last["step"]), loss=float(last["loss"]), baseline=baseline)
