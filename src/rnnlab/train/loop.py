"""`fit`: the training loop, with the remedies and the exploding gradient caught in the act.

Each step: a batch (or the next chunk of a stream, under truncated BPTT), exact gradients,
the global norm measured before clipping, clipping, one optimiser update. A non-finite loss,
gradient or update is caught at the step where it appears, before it touches the params.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnnlab.arrays import Array
from rnnlab.diagnostics.verdict import RunInfo
from rnnlab.engine.model import SequenceModel
from rnnlab.tasks.base import Batch, Task
from rnnlab.train.callbacks import RecordDiagnostics
from rnnlab.train.checkpoint import CheckpointDir, CheckpointError
from rnnlab.train.clip import clip, global_norm, param_norms
from rnnlab.train.config import DEFAULT_DIAGNOSTICS, DiagnosticsConfig, TrainConfig
from rnnlab.train.history import History
from rnnlab.train.optim import make_optimizer
from rnnlab.train.schedules import make_schedule
from rnnlab.train.tbptt import Carry, tbptt_step

Callback = Callable[[int, SequenceModel, History], None]


@runtime_checkable
class StreamTask(Protocol):
    """A task whose batches are consecutive chunks of B parallel streams (charlm)."""

    length: int

    def n_chunks(self, batch_size: int) -> int: ...

    def chunk(self, index: int, batch_size: int) -> Batch: ...


def evaluate(model: SequenceModel, task: Task) -> dict[str, float]:
    """The task's metrics on its fixed validation set."""
    X, Y, mask = task.validation
    with np.errstate(all="ignore"):
        outputs, _ = model.forward(X)
    return task.metrics(outputs, Y, mask)


def _schedule(config: TrainConfig) -> Any:
    return make_schedule(
        config.schedule,
        config.lr,
        step_size=config.step_size,
        gamma=config.gamma,
        total_steps=config.steps,
        min_lr=config.min_lr,
        warmup_steps=config.warmup_steps,
    )


def _finite(arrays: dict[str, Array]) -> bool:
    return all(bool(np.all(np.isfinite(a))) for a in arrays.values())


def _progress(enabled: bool, stream: Any) -> Any:
    from rnnlab.train.progress import training

    return training(enabled, stream)  # a bar on a terminal, else a plain line every few s


def fit(
    model: SequenceModel,
    task: Task,
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    out: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
    run_config: dict[str, Any] | None = None,
    diagnostics: DiagnosticsConfig | None = DEFAULT_DIAGNOSTICS,
    run_info: RunInfo | None = None,
) -> History:
    """Train `model` on `task` for config.steps steps; return the History.

    diagnostics  when to diagnose the gradient flow into history.diagnostics (default: at
             step 0, ten times per run and where a run diverges; None or every=0: never)
    callbacks  further callback(step, model, history) calls (rnnlab.train.callbacks)
    out      a folder for last/best checkpoints (safetensors) and history.json
    resume   continue from out/last.safetensors, bit-identically to an uninterrupted run
    quiet    no progress output (a bar on a terminal, else a plain line every few seconds)
    run_config  the whole run's config, stored in every checkpoint (default: the train part)
    run_info  what the diagnoses' remedies know of the run (default: read off the model and
             config.clip)
    The model's params are updated in place (model.params is replaced each step).
    """
    opt = make_optimizer(config.optimizer, **config.optimizer_hyper())
    schedule = _schedule(config)
    stream: StreamTask | None = None
    if config.tbptt is not None:
        if not isinstance(task, StreamTask):
            raise ValueError(
                f"train.tbptt: got a setting for task {task.name!r}; expected none "
                "(truncated BPTT needs a stream task such as charlm)"
            )
        if config.tbptt.k1 != task.length:
            raise ValueError(
                f"train.tbptt.k1: got {config.tbptt.k1}; expected the task's T = "
                f"{task.length} (a stream advances T steps per update)"
            )
        stream, k2, n_chunks = task, config.tbptt.k2, task.n_chunks(config.batch_size)
    rng = np.random.default_rng(config.seed)
    opt_state = opt.init(model.params)
    history = History()
    carry = Carry(h0=None)
    start = 0
    ckpt = CheckpointDir(Path(out)) if out is not None else None
    saved_config = run_config if run_config is not None else {"train": config.model_dump()}
    if diagnostics is not None and diagnostics.cadence(config.steps):
        callbacks = [RecordDiagnostics(model, task, config, diagnostics, run_info), *callbacks]

    # the checkpoint must hold what this model and optimiser hold, in their dtypes: nothing
    # is cast, and a link to nothing or a loop is an error, not a fresh start
    last = ckpt.load_last(params_like=model.params, opt_like=opt_state) if ckpt and resume else None
    if ckpt is not None and last is not None:
        model.set_params(last.params)
        opt_state, rng, start = last.opt_state, last.rng, last.step
        saved = History.load(ckpt.root / "history.json")
        if saved.status == "diverged" and saved.diverged_at == start:
            return saved  # it ended there, and both files say so: nothing to redo
        history = saved.truncate(start)
        if stream is not None and last.arrays:
            carry = _carry_from(last.arrays, model, last.path)
    best = min((e["loss"] for e in history.evals), default=math.inf)

    def save(step: int) -> None:
        if ckpt is None:
            return
        ckpt.root.mkdir(parents=True, exist_ok=True)  # a run whose step 0 saved no best
        history.save(ckpt.root / "history.json")  # first: a crash leaves it ahead, not behind
        extra = _carry_to(carry) if stream is not None else None
        ckpt.save_last(model.params, opt_state, step, rng, saved_config, None, extra)

    def record_eval(step: int) -> None:
        nonlocal best
        metrics = evaluate(model, task)
        history.evals.append({"step": step, **metrics, "solved": float(task.solved(metrics))})
        if ckpt is not None and math.isfinite(metrics["loss"]) and metrics["loss"] < best:
            best = metrics["loss"]
            ckpt.save_best(best, model.params, opt_state, step, rng, saved_config)

    if start == 0 and not history.evals:
        record_eval(0)
        for callback in callbacks:  # step 0: the model at initialisation
            callback(0, model, history)
    done = start
    with _progress(not quiet, sys.stderr) as bar:
        bar_task = bar.add_task("train", total=config.steps, completed=start, info="")
        for step in range(start, config.steps):
            # where step `step` starts: a divergence saves this, so a resume (or a rerun of a
            # killed worker) replays the same batch and diverges at the same step
            rng_before, carry_before = rng.bit_generator.state, carry
            with np.errstate(all="ignore"):  # overflow is caught below, not printed
                if stream is not None:
                    X, Y, mask = stream.chunk(step % n_chunks, config.batch_size)
                    if step % n_chunks == 0:
                        carry = Carry(h0=None)  # a new pass over the text starts from zero
                    result, carry = tbptt_step(model, carry, X, Y, mask, k2, task.loss)
                else:
                    X, Y, mask = task.batch(rng, config.batch_size)
                    result = model.loss_and_grads(X, Y, loss=task.loss, mask=mask)
                grads, norm = clip(result.grads, config.clip.mode, config.clip.threshold)
                lr = schedule.lr_at(step)
                new_params, new_state = opt.update(model.params, grads, opt_state, lr)
                new_params = model.project(new_params)  # a cell's constraint, if it has one
            record = {"step": step, "loss": result.loss, "lr": lr, "grad_norm": norm}
            record |= {f"grad_norm/{k}": v for k, v in param_norms(result.grads).items()}
            finite = math.isfinite(result.loss) and math.isfinite(norm) and _finite(new_params)
            if finite:
                delta = {k: new_params[k] - model.params[k] for k in new_params}
                record["clipped_norm"] = global_norm(grads)
                record["update_ratio"] = global_norm(delta) / max(global_norm(model.params), 1e-300)
                history.steps.append(record)
                history.last_finite_norm = norm
                model.params, opt_state = new_params, new_state
            else:
                history.steps.append(record | {"skipped": 1.0})
                if config.on_nonfinite == "stop":
                    history.status, history.diverged_at = "diverged", step
                    rng.bit_generator.state, carry = rng_before, carry_before
                    for callback in callbacks:  # the last finite model, and the blow-up
                        callback(done, model, history)
                    break
                history.skipped += 1
            done = step + 1
            # a skipped step still counts: diagnostics, evaluations and checkpoints keep their
            # cadence (a diagnosis due where the gradient blew up is the one to keep)
            if done % config.eval_every == 0 or done == config.steps:
                record_eval(done)  # first, so a diagnosis here sees where the loss stands
                bar.sample(done, model, task)  # charlm: a few characters it writes now
            for callback in callbacks:
                callback(done, model, history)
            if config.checkpoint_every and done % config.checkpoint_every == 0:
                save(done)
            info = f"loss {result.loss:.4g}  ‖g‖ {norm:.3g}" + ("" if finite else "  skipped")
            bar.update(bar_task, advance=1, info=info)
    if history.status == "running":
        history.status = "done"
    save(done)  # after divergence: the params of the last finite step
    return history


def _carry_to(carry: Carry) -> dict[str, Array] | None:
    if carry.h0 is None or carry.X is None or carry.Y is None:
        return None
    parts = carry.h0 if isinstance(carry.h0, tuple) else (carry.h0,)
    return {f"carry/state{i}": p for i, p in enumerate(parts)} | {
        "carry/X": carry.X,
        "carry/Y": carry.Y,
    }


def _carry_from(arrays: dict[str, Array], model: SequenceModel, path: Path) -> Carry:
    names = [f"carry/state{i}" for i in range(len(model.cell.state_names))]
    if set(arrays) != {*names, "carry/X", "carry/Y"}:
        raise CheckpointError(
            f"{path}: extra arrays {sorted(arrays)}; expected {[*names, 'carry/X', 'carry/Y']} "
            "(the state truncated BPTT carries)"
        )
    parts = tuple(arrays[name] for name in names)
    return Carry(parts[0] if len(parts) == 1 else parts, arrays["carry/X"], arrays["carry/Y"])
