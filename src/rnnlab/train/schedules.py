"""Learning-rate schedules as pure functions of the step.

`schedule.lr_at(step)` is the learning rate for the update that takes the parameters from
step `step` to `step + 1` (step counts from 0). That is the lr torch.optim.lr_scheduler sets
after `step` calls of `scheduler.step()`; Constant, StepDecay and Cosine equal torch's
ConstantLR(factor=1), StepLR and CosineAnnealingLR up to rounding (torch updates the lr
recursively, these are closed forms). A schedule holds no state, so resuming a run needs
only its step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from rnnlab.checks import check_int, check_number, check_one_of, check_positive

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "Cosine",
    "Warmup",
    "SCHEDULES",
    "ScheduleName",
    "make_schedule",
]

ScheduleName = Literal["constant", "step", "cosine"]
SCHEDULES: tuple[ScheduleName, ...] = get_args(ScheduleName)


class Schedule(Protocol):
    def lr_at(self, step: int) -> float: ...


@dataclass(frozen=True)
class Constant:
    lr: float

    def lr_at(self, step: int) -> float:
        return self.lr


@dataclass(frozen=True)
class StepDecay:
    """lr · γ^⌊step / step_size⌋ (torch StepLR)."""

    lr: float
    step_size: int
    gamma: float = 0.1

    def lr_at(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class Cosine:
    """min_lr + (lr − min_lr)·(1 + cos(π·step/total_steps))/2 (torch CosineAnnealingLR).

    Unlike torch, which swings back up after T_max, the lr stays at min_lr from
    `total_steps` on: a run that outlives its schedule should not speed up again.
    """

    lr: float
    total_steps: int
    min_lr: float = 0.0

    def lr_at(self, step: int) -> float:
        t = min(step, self.total_steps)
        return (
            self.min_lr
            + (self.lr - self.min_lr) * (1 + math.cos(math.pi * t / self.total_steps)) / 2
        )


@dataclass(frozen=True)
class Warmup:
    """Linear warm-up in front of any schedule.

    For step < steps the lr is inner.lr_at(0) · (s + (1 − s)·step/steps), rising from the
    start factor s; from `steps` on it is inner.lr_at(step − steps), so the inner schedule
    starts afresh after warm-up (torch SequentialLR of LinearLR(s, 1, steps) and the inner
    scheduler, milestone `steps`). start_factor None means 1/(steps + 1): the first step
    already moves and the last warm-up step is just below the full lr.
    """

    inner: Schedule
    steps: int
    start_factor: float | None = None

    def lr_at(self, step: int) -> float:
        if step >= self.steps:
            return self.inner.lr_at(step - self.steps)
        s = 1 / (self.steps + 1) if self.start_factor is None else self.start_factor
        return self.inner.lr_at(0) * (s + (1 - s) * step / self.steps)


def make_schedule(
    name: ScheduleName,
    lr: float,
    *,
    step_size: int | None = None,
    gamma: float = 0.1,
    total_steps: int | None = None,
    min_lr: float = 0.0,
    warmup_steps: int = 0,
    warmup_start_factor: float | None = None,
) -> Schedule:
    """Build a schedule by name ("constant", "step", "cosine"), with optional warm-up.

    "step" needs `step_size`; "cosine" needs `total_steps`, counted from step 0 including
    the warm-up, so that the cosine reaches min_lr at `total_steps` either way.
    """
    check_one_of("schedule", name, SCHEDULES)
    check_positive("lr", lr)
    check_int("warmup_steps", warmup_steps, 0)
    inner: Schedule
    if name == "constant":
        inner = Constant(float(lr))
    elif name == "step":
        check_int("step_size", step_size, 1)
        check_number("gamma", gamma, lambda v: 0 < v <= 1, "a number in (0, 1]")
        inner = StepDecay(float(lr), int(step_size or 0), float(gamma))
    else:
        check_int("total_steps", total_steps, warmup_steps + 1)
        check_number("min_lr", min_lr, lambda v: 0 <= v <= lr, f"a number in [0, lr={lr}]")
        inner = Cosine(float(lr), int(total_steps or 0) - warmup_steps, float(min_lr))
    if warmup_steps == 0:
        return inner
    if warmup_start_factor is not None:
        warmup_start_factor = check_number(
            "warmup_start_factor", warmup_start_factor, lambda v: 0 <= v <= 1, "a number in [0, 1]"
        )
    return Warmup(inner, warmup_steps, warmup_start_factor)
