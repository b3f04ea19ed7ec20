"""Progress a person can see anywhere: a rich bar on a terminal, plain lines elsewhere.

Progress goes to the stream it is given (the commands give stderr, so stdout keeps only
results). When that stream is a terminal, it is a rich bar, redrawn in place. When it is
not (a pipe, a CI log, nohup), it is one plain line per task every INTERVAL seconds and
one at the end, e.g.

    train step 1200/3000 · loss 0.0123  ‖g‖ 0.0456 · 41.7 steps/s · ETA 0:00:43
    sweep 3/6 runs · done 3 · running 2 · failed 0 · diverged 0 · elapsed 0:00:12 · ETA 0:00:24

Both modes have one interface, rich's: `with progress as bar: task = bar.add_task(...);
bar.update(task, advance=1, info=...)`, plus `bar.log(text)` for a line above the bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

INTERVAL = 5.0  # seconds between two plain lines of a task (tests set it smaller)
SAMPLE_LENGTH = 80  # characters a charlm run writes at each evaluation
SAMPLE_TEMPERATURE = 0.8


@dataclass
class _Task:
    """A task's state in plain mode; rates count what this process did (a resumed run
    starts at its checkpoint's step)."""

    total: float | None
    completed: float
    fields: dict[str, Any]
    started: float  # time.monotonic() when the task was added
    start_completed: float
    shown: float  # when its last line was printed
    pending: bool = False  # changed since that line

    def rate(self, now: float) -> float:
        elapsed = now - self.started
        return (self.completed - self.start_completed) / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> str:
        rate = self.rate(now)
        if self.total is None or rate <= 0:
            return "?"
        return clock(max(self.total - self.completed, 0) / rate)


Line = Callable[[_Task, float], str]  # (task, now) -> its plain line


def clock(seconds: float) -> str:
    """H:MM:SS, as rich shows elapsed and remaining time."""
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """Tasks' progress: off, a rich bar (the stream is a terminal) or plain lines (it is not).

    columns     the rich bar's columns
    line        a task's plain line
    enabled     False: nothing is shown (--quiet)
    stream      where progress goes
    transient   the rich bar disappears at the end
    interval    seconds between a task's plain lines (default INTERVAL)
    """

    def __init__(
        self,
        columns: tuple[Any, ...],
        line: Line,
        *,
        enabled: bool,
        stream: TextIO,
        transient: bool = False,
        interval: float | None = None,
    ) -> None:
        self.enabled = enabled
        self.stream = stream
        self.interval = INTERVAL if interval is None else interval
        self._line = line
        self._tasks: list[_Task] = []
        self._rich: Any = None
        if enabled and stream.isatty():
            from rich.console import Console
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                *columns,
                console=Console(file=stream),
                transient=transient,
                redirect_stdout=sys.stdout.isatty(),  # stdout sent elsewhere stays there
            )

    def __enter__(self) -> Progress:
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_task(
        self, description: str, total: float | None = None, completed: float = 0, **fields: Any
    ) -> int:
        if self._rich is not None:
            return int(self._rich.add_task(description, total=total, completed=completed, **fields))
        now = time.monotonic()
        self._tasks.append(_Task(total, completed, fields, now, completed, now))
        return len(self._tasks) - 1

    def update(
        self,
        task_id: int,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        **fields: Any,
    ) -> None:
        if self._rich is not None:
            self._rich.update(task_id, total=total, completed=completed, advance=advance, **fields)
            return
        if not self.enabled:
            return
        task = self._tasks[task_id]
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        task.fields.update(fields)
        task.pending = True
        now = time.monotonic()
        if now - task.shown >= self.interval:
            self._show(task, now)

    def log(self, text: str) -> None:
        """One line: above the bar on a terminal, at once in plain mode; nothing when off."""
        if self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False)
        elif self.enabled:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Stop the bar, or print each task's last line (a task with nothing to do has none)."""
        if self._rich is not None:
            self._rich.stop()
            return
        now = time.monotonic()
        for task in self._tasks:
            if task.pending and task.total != 0:
                self._show(task, now)

    def _show(self, task: _Task, now: float) -> None:
        print(self._line(task, now), file=self.stream, flush=True)
        task.shown, task.pending = now, False


class TrainProgress(Progress):
    """The training loop's progress, with a text sample at each evaluation of a charlm run."""

    def sample(self, step: int, model: Any, task: Any) -> None:
        """SAMPLE_LENGTH characters the model writes at SAMPLE_TEMPERATURE, drawn with a
        fresh, fixed rng: the training's rng, params and state are untouched."""
        from rnnlab.tasks.charlm import CharLMTask

        if not self.enabled or not isinstance(task, CharLMTask):
            return
        prime = "\n" if "\n" in task.vocab else task.vocab[0]
        rng = np.random.default_rng(0)
        with np.errstate(all="ignore"):
            try:
                text = task.sample(model, rng, prime, SAMPLE_TEMPERATURE, SAMPLE_LENGTH)
            except ValueError:  # non-finite outputs: no distribution to draw from
                self.log(f"train step {step} sample: none (the outputs are not finite)")
                return
        self.log(f"train step {step} sample: {text!r}")


def _train_line(task: _Task, now: float) -> str:
    return (
        f"train step {task.completed:.0f}/{task.total:.0f} · {task.fields['info']} · "
        f"{task.rate(now):.3g} steps/s · ETA {task.eta(now)}"
    )


def _sweep_line(task: _Task, now: float) -> str:
    total = "?" if task.total is None else f"{task.total:.0f}"
    return (
        f"sweep {task.completed:.0f}/{total} runs · {task.fields['counts']} · "
        f"elapsed {clock(now - task.started)} · ETA {task.eta(now)}"
    )


def training(enabled: bool, stream: TextIO) -> TrainProgress:
    """The training loop's progress: step/total, loss and ‖g‖ (the `info` field), ETA."""
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )
    return TrainProgress(columns, _train_line, enabled=enabled, stream=stream, transient=True)


def sweeping(enabled: bool, stream: TextIO) -> Progress:
    """A sweep's progress: runs completed/total, the `counts` field, elapsed, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    return Progress(columns, _sweep_line, enabled=enabled, stream=stream)
