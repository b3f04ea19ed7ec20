"""Training callbacks. A callback is called once before training (step 0) and after every
step as `callback(step, model, history)`, where `step` counts the steps done; after a skipped
(non-finite) step the model is the one before it."""

from __future__ import annotations

from rnnlab.diagnostics.callback import DiagnosisCallback
from rnnlab.engine.model import SequenceModel
from rnnlab.train.history import History


class RecordDiagnostics:
    """Every `probe.every` steps, diagnose the probe batch and append the record to
    history.diagnostics. The verdict sees every pre-clip norm recorded so far, read back
    from the history, so a resumed run records exactly what an uninterrupted one does."""

    def __init__(self, probe: DiagnosisCallback) -> None:
        self.probe = probe

    def __call__(self, step: int, model: SequenceModel, history: History) -> None:
        if step % self.probe.every != 0:
            return
        self.probe.grad_norms = [r["grad_norm"] for r in history.steps]
        record = self.probe(step, model)
        if record is not None:
            history.diagnostics.append(record)
