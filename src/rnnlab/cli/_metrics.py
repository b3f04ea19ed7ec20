"""A run's metrics as the command line shows them (train, run, ls, show), in the units they
are read in:

- `loss` is left out beside the loss's own name (mse for adding, cross_entropy for the
  others): the same number, shown once;
- `solved` reads yes or no;
- `accuracy` says what it counts, which each task decides (Task.accuracy_of): recalled
  symbols for copy, sequences for temporal_order, characters for charlm;
- a baseline stands beside each metric it is given in (Task.baselines): charlm's
  bits_per_char beside the unigram baseline in bits, not in nats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from rnnlab.engine.losses import LOSSES
from rnnlab.tasks import Task
from rnnlab.tasks.base import task_class


def shown(names: Iterable[str]) -> list[str]:
    """The metric names to show, in order: `loss` left out if it has its own name too."""
    names = list(dict.fromkeys(names))
    # a task's metrics give its loss under the loss's own name too
    if any(name in names for name in LOSSES):
        names = [name for name in names if name != "loss"]
    return names


def accuracy_of(config: Mapping[str, Any]) -> str | None:
    """What the accuracy of a run with this (stored) config counts; None if not known."""
    try:
        return task_class(str(config.get("task", {}).get("name"))).accuracy_of
    except ValueError:  # no task (a monitored torch model) or one this rnnlab does not know
        return None


def header(name: str, configs: Iterable[Mapping[str, Any]]) -> str:
    """A column's header: `accuracy (recalled symbols)`, or the metric's name."""
    if name != "accuracy":
        return name
    counts = list(dict.fromkeys(c for c in map(accuracy_of, configs) if c is not None))
    return f"accuracy ({' / '.join(counts)})" if counts else name


def cell(value: Any) -> str:
    """A value as a table cell: floats to 4 significant digits, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def value(name: str, number: Any) -> str:
    """A metric's value as a table cell: yes or no for solved."""
    if name == "solved" and isinstance(number, int | float) and not math.isnan(number):
        return "yes" if number else "no"
    return cell(number)


def summary(final: Mapping[str, float], task: Task | None = None) -> str:
    """One line of a run's final metrics, e.g. `mse 0.0031 (baseline 0.1667), accuracy
    0.94 (sequences with |error| < 0.04), solved no`."""
    baselines = task.baselines if task is not None else {}
    parts = []
    for name in shown(final):
        text = f"{name} {value(name, final[name])}"
        if name in baselines:
            text += f" (baseline {baselines[name]:.4g})"
        elif name == "accuracy" and task is not None:
            text += f" ({task.accuracy_of})"
        parts.append(text)
    return ", ".join(parts)
