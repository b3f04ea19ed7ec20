"""A training callback: a full diagnosis on a fixed probe batch every `every` steps.

    probe = DiagnosisCallback(model, X, Y, mask=None, every=100, loss="mse",
                              dependency_length=100)
    for step in range(1, steps + 1):
        ... one training step; norm = the pre-clip global gradient norm ...
        record = probe(step, model, grad_norm=norm)   # a dict every 100 steps, else None

Each record is {"step": step, **Diagnosis.to_dict()}, JSON-safe for the run's history. The
pre-clip norms passed in accumulate, so each verdict also sees the run's spikes and
non-finite steps so far. A diagnosis costs one BPTT pass on the probe batch plus the
Jacobian products (O(t·n·S³) for n = jacobian_sequences); spread it with `every`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rnnlab.arrays import Array
from rnnlab.checks import check_int
from rnnlab.diagnostics.diagnose import Diagnosis, diagnose
from rnnlab.diagnostics.options import DiagnosisOptions, options_from
from rnnlab.diagnostics.verdict import Learning, RunInfo
from rnnlab.engine.model import SequenceModel, State


class DiagnosisCallback:
    """Diagnose `model` on (X, Y, mask) at every step that is a multiple of `every`.

    options (or its fields as keywords, overriding it): as for diagnose; `run` defaults to
    RunInfo.from_model(model). records: the dicts recorded so far; latest: the last
    Diagnosis; grad_norms: every pre-clip norm passed to __call__.
    """

    def __init__(
        self,
        model: SequenceModel,
        X: Array,
        Y: Array,
        mask: Array | None = None,
        every: int = 100,
        *,
        loss: str = "cross_entropy",
        h0: State | None = None,
        options: DiagnosisOptions | None = None,
        **keywords: Any,
    ) -> None:
        self.every = check_int("every", every, 1)
        self.X, self.Y, self.mask, self.h0, self.loss = X, Y, mask, h0, loss
        self.options = options_from(options, keywords)
        if self.options.run is None:
            self.options = replace(self.options, run=RunInfo.from_model(model))
        self.records: list[dict[str, Any]] = []
        self.grad_norms: list[float] = []
        self.latest: Diagnosis | None = None

    def due(self, step: int) -> bool:
        """Whether `step` is one the callback diagnoses at (a multiple of `every`)."""
        return step % self.every == 0

    def __call__(
        self,
        step: int,
        model: SequenceModel,
        grad_norm: float | None = None,
        *,
        force: bool = False,
        learning: Learning | None = None,
    ) -> dict[str, Any] | None:
        """Note this step's pre-clip norm (if given); at a multiple of `every` (or when
        `force`d), diagnose and return the record, else None. `learning`, the run's last
        validation loss against its task's baseline, lets the verdict say "stuck"."""
        if grad_norm is not None:
            self.grad_norms.append(float(grad_norm))
        if not self.due(step) and not force:
            return None
        self.latest = diagnose(
            model,
            self.X,
            self.Y,
            self.mask,
            self.loss,
            self.h0,
            grad_norms=self.grad_norms or None,
            learning=learning,
            options=self.options,
        )
        record = {"step": int(step)} | self.latest.to_dict()
        self.records.append(record)
        return record
