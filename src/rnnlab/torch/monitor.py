"""GradientFlowMonitor: a gradient-flow diagnosis every N steps of a PyTorch training loop.

    with GradientFlowMonitor(model, every=100, loss_fn=loss_fn, store="results",
                             tensorboard="runs/tb") as monitor:
        for batch in loader:
            loss = loss_fn(model, batch)
            optimizer.zero_grad(); loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            monitor.step(batch, grad_norm=norm)     # a Diagnosis every 100th call, else None

Each diagnosis is gradient_flow on the training loop's own batch (one more forward and
backward pass through the unrolled twin). It changes nothing the training sees: parameters,
.grad, buffers, the optimiser and the RNG streams are as they were, so a monitored run ends
bit-identical to an unmonitored one. The pre-clip norms passed as grad_norm accumulate, so
each verdict also sees the run's spikes and non-finite steps.

records hold {"step": step, **Diagnosis.to_dict()}. With `store` (a folder) the run is in the
rnnlab results store as it goes, for `rnnlab ls`, `show`, `report` and `export`:
- at construction, the run (its config) with status running;
- at each diagnosis, in one committed transaction: the snapshot, and the metrics of the steps
  since the last one (grad_norm; at the diagnosis' step its loss, grad norm, ratio,
  decay_factor and horizon). A crash, even SIGKILL, loses only the steps since;
- at close(), the remaining metrics and the status: done; failed (an exception left the
  `with` block; the error's first line is kept) or interrupted (KeyboardInterrupt or another
  BaseException that is not an Exception).
The monitor takes the store's lock for each write only (Store(..., hold=False)), so monitors
of several modules or processes share a store. A sweep driver holds it for its whole length:
then the monitor warns once, keeps the snapshots in memory (`records`) and writes them once
the store is free; close() raises StoreError if it is still held then (or, with an exception
leaving the `with` block, warns and lets that exception through).
With `tensorboard` (a SummaryWriter, or a log folder when tensorboard is installed) the same
numbers, the lag profile at a few lags and the verdict go to TensorBoard as they come.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rnnlab import maths
from rnnlab.checks import check_int
from rnnlab.diagnostics import Diagnosis, DiagnosisOptions
from rnnlab.diagnostics.options import options_from
from rnnlab.diagnostics.text import SHOWN_LAGS
from rnnlab.torch.flow import gradient_flow
from rnnlab.torch.measure import module_info
from rnnlab.torch.twin import recurrent_modules

if TYPE_CHECKING:
    from rnnlab.experiments.store import Store

MONITOR_OPTIONS = DiagnosisOptions(jacobian_sequences=0)


class GradientFlowMonitor:
    """See the module docstring. options (or its fields as keywords, overriding it) are
    gradient_flow's, except that without an options object jacobian_sequences defaults to
    0: Jacobian products cost O(t·n·S³) per diagnosis and would dominate the overhead."""

    def __init__(
        self,
        model: Any,
        every: int = 100,
        *,
        loss_fn: Callable[[Any, Any], Any],
        module: str | None = None,
        output_step: int | None = None,
        store: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
        tensorboard: Any = None,
        options: DiagnosisOptions | None = None,
        **keywords: Any,
    ) -> None:
        every = check_int("every", every, 1)
        self.options = options_from(options, keywords, default=MONITOR_OPTIONS)
        if not callable(loss_fn):
            raise ValueError(
                f"loss_fn: got {type(loss_fn).__name__}; expected loss_fn(model, batch)"
            )
        found = recurrent_modules(model)
        if module is None and len(found) > 1:
            raise ValueError(
                f"module: got None, but the model holds {len(found)} recurrent modules "
                f"({', '.join(map(repr, found))}); expected the name of the one to diagnose"
            )
        self.module = next(iter(found)) if module is None else module
        if self.module not in found:
            raise ValueError(
                f"module: got {self.module!r}; expected one of {', '.join(map(repr, found))}"
            )
        self.model, self.loss_fn, self.every = model, loss_fn, every
        self.output_step = output_step
        self.records: list[dict[str, Any]] = []
        self.grad_norms: list[float] = []
        self.latest: Diagnosis | None = None
        self.steps_seen = 0
        self._metrics: dict[int, dict[str, float]] = {}  # steps not in the store yet
        self._closed = False
        self.config = {
            "model": module_info(self.module, found[self.module]),
            "monitor": {
                "source": "rnnlab.torch.GradientFlowMonitor",
                "model_class": type(model).__name__,
                "every": every,
                "output_step": output_step,
                "dependency_length": self.options.dependency_length,
            },
        }
        self.store = None if store is None else os.fspath(store)
        self.run_id = run_id or _run_id(self.config)
        self._store: Store | None = None
        self._appended = 0  # records already in the store
        self._warned = False
        # the writer first: if it fails, no run is left "running" in the store (a store that
        # fails instead leaves at most an empty TensorBoard events file)
        self._writer, self._own_writer = _writer(tensorboard)
        if self.store is not None:
            from rnnlab.experiments.store import Store

            # fails here, before training, on a store that is corrupted, newer or held
            try:
                self._store = Store(self.store, write=True, hold=False)
                self._store.start(self.run_id, json.dumps(self.config, sort_keys=True))
            except BaseException:
                if self._store is not None:
                    self._store.close()
                if self._own_writer and self._writer is not None:
                    self._writer.close()
                raise

    def step(
        self, batch: Any, *, step: int | None = None, grad_norm: Any = None
    ) -> Diagnosis | None:
        """Count one training step (`step` overrides the count); at every `every`-th, diagnose
        `batch` and return the Diagnosis, else None. grad_norm: this step's pre-clip global
        gradient norm if known, a float or a 0-dim tensor (as clip_grad_norm_ returns)."""
        self.steps_seen = self.steps_seen + 1 if step is None else int(step)
        s = self.steps_seen
        if grad_norm is not None:
            norm = float(grad_norm)
            self.grad_norms.append(norm)
            self._metrics.setdefault(s, {})["grad_norm"] = norm
        if s % self.every != 0:
            return None
        d = gradient_flow(
            self.model,
            batch,
            self.loss_fn,
            module=self.module,
            output_step=self.output_step,
            grad_norms=self.grad_norms or None,
            options=self.options,
        )
        self.latest = d
        self.records.append({"step": s} | d.to_dict())
        summary = {
            "diagnosis_loss": d.loss,
            "diagnosis_grad_norm": d.grad_norm,
            "ratio": d.flow.ratio,
            "decay_factor": d.flow.decay_factor,
            "horizon": float(d.flow.horizon),
        }
        self._metrics.setdefault(s, {}).update(summary)
        if self._store is not None:
            from rnnlab.experiments.store import LOCK_WAIT, StoreError

            try:
                self._append()
                self._store.lock_wait = LOCK_WAIT
            except StoreError as err:  # a sweep holds the store: written later
                self._store.lock_wait = 0  # meanwhile, do not make training wait for it
                if not self._warned:
                    warnings.warn(
                        f"store: {err}; the monitor keeps its snapshots in memory (records) "
                        "and writes them when the store is free",
                        stacklevel=2,
                    )
                    self._warned = True
        if self._writer is not None:
            self._log(s, d, summary)
        return d

    def close(self, error: BaseException | None = None) -> None:
        """End the run in the store (status done; failed or interrupted with `error`, see the
        module docstring) and close the TensorBoard writer the monitor opened. Closing twice
        does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._own_writer and self._writer is not None:
            self._writer.close()
        if self._store is None:
            return
        from rnnlab.experiments.store import LOCK_WAIT, StoreError

        self._store.lock_wait = LOCK_WAIT  # the last write may wait as long as any
        status, message = "done", None
        if error is not None:
            status = "failed" if isinstance(error, Exception) else "interrupted"
            first = next(iter(str(error).splitlines()), "")
            message = type(error).__name__ + (f": {first}" if first else "")
        try:
            self._append()
            self._store.finish(
                self.run_id,
                status,
                error=message,
                steps=self._pending_steps(),
                steps_done=self.steps_seen,
            )
        except StoreError as err:
            if error is None:
                raise
            # the user's exception matters more than the store's state: let it through
            warnings.warn(
                f"store: {err}; run {self.run_id} stays running there with "
                f"{self._appended} of {len(self.records)} snapshots (all are in records)",
                stacklevel=3,
            )
        finally:
            self._store.close()

    def _append(self) -> None:
        """Append each record the store lacks, with the metrics of the steps before it;
        StoreError while another writer holds the store."""
        assert self._store is not None
        while self._appended < len(self.records):
            record = self.records[self._appended]
            snapshot = {k: v for k, v in record.items() if k != "step"}
            steps = self._pending_steps()
            self._store.append(self.run_id, record["step"], snapshot, steps)
            for row in steps:  # in the store now
                del self._metrics[int(row["step"])]
            self._appended += 1

    def _pending_steps(self) -> list[dict[str, float]]:
        return [{"step": s} | m for s, m in sorted(self._metrics.items())]

    def __enter__(self) -> GradientFlowMonitor:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close(exc)

    def _log(self, step: int, d: Diagnosis, summary: dict[str, float]) -> None:
        w = self._writer
        prefix = f"gradient_flow/{self.module}" if self.module else "gradient_flow"
        for name, value in summary.items():
            w.add_scalar(f"{prefix}/{name}", value, step)
        top = d.flow.lag.profile[-1]
        for lag in SHOWN_LAGS:
            if lag < top.size:
                w.add_scalar(f"{prefix}/lag_profile/tau_{lag:05d}", float(top[lag]), step)
        add_text = getattr(w, "add_text", None)
        if add_text is not None:
            evidence = "; ".join(maths.plain(e) for e in d.verdict.evidence)
            add_text(f"{prefix}/verdict", f"{d.label}: {evidence}", step)


def _run_id(config: dict[str, Any]) -> str:
    # a monitored run is not a pure function of a config, so the time keeps ids apart
    text = json.dumps(config, sort_keys=True) + str(time.time_ns())
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _writer(tensorboard: Any) -> tuple[Any, bool]:
    """(writer, whether the monitor opened it). A folder needs torch.utils.tensorboard; without
    it the monitor warns once and writes no TensorBoard events."""
    if tensorboard is None:
        return None, False
    if hasattr(tensorboard, "add_scalar"):
        return tensorboard, False
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "tensorboard: torch.utils.tensorboard needs the tensorboard package "
            "(pip install tensorboard); the monitor writes no TensorBoard events",
            stacklevel=3,
        )
        return None, False
    return SummaryWriter(os.fspath(tensorboard)), True
