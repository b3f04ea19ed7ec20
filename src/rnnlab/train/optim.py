"""Optimisers as pure functions over dicts of arrays.

Each optimiser is a frozen dataclass of hyperparameters with two pure methods:

    state = opt.init(params)
    params, state = opt.update(params, grads, state, lr)

`params`, `grads` and each slot of `state` share the same keys. The state is one flat dict
of arrays so it can be written to safetensors as it is: `state["step"]` is a 0-d int64
counter of updates taken, and each per-parameter slot lives under `f"{slot}/{name}"`, with
slot names taken from torch.optim (`momentum_buffer`, `sum`, `square_avg`, `grad_avg`,
`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`). Inputs are never mutated. `lr` is passed per
step so that schedules stay separate (see schedules.py).

The update formulas are torch.optim's single-tensor code paths (torch 2.x), operation for
operation, so that a float64 run agrees with torch to rounding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.checks import check_number, check_one_of

__all__ = [
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "Optimizer",
    "OPTIMIZERS",
    "OPTIMIZER_NAMES",
    "OptimizerName",
    "make_optimizer",
    "state_slot",
]

OptimizerName = Literal["sgd", "adagrad", "rmsprop", "adam", "adamw"]
OPTIMIZER_NAMES: tuple[OptimizerName, ...] = get_args(OptimizerName)


def state_slot(state: Mapping[str, Array], slot: str) -> Params:
    """The per-parameter arrays of one slot, keyed like params (e.g. `exp_avg`)."""
    prefix = slot + "/"
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _check(
    params: Mapping[str, Array],
    grads: Mapping[str, Array],
    state: Mapping[str, Array],
    slots: tuple[str, ...],
    lr: float,
) -> float:
    """Validate one update's inputs; return lr as a Python float (keeps float32 float32)."""
    allowed, ok = _NONNEG
    lr = check_number("lr", lr, ok, allowed)
    if set(grads) != set(params):
        raise ValueError(
            f"grads: got keys {sorted(grads)}; expected the params keys {sorted(params)}"
        )
    expected = {"step"} | {f"{s}/{n}" for s in slots for n in params}
    if set(state) != expected:
        raise ValueError(
            f"state: got keys {sorted(state)}; expected {sorted(expected)} "
            "(state from this optimiser's init)"
        )
    for name, p in params.items():
        g = grads[name]
        if g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(
                f"grads[{name!r}]: got {g.dtype}{list(g.shape)}; "
                f"expected {p.dtype}{list(p.shape)} like params[{name!r}]"
            )
    return lr


def _lerp(start: Array, end: Array, weight: float) -> Array:
    # torch.lerp's formula: the branch on |weight| keeps the result exact at both ends.
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


def _l2(g: Array, p: Array, weight_decay: float) -> Array:
    """g + λθ, the L2 penalty's gradient (torch adds it only when λ ≠ 0)."""
    return g + weight_decay * p if weight_decay != 0 else g


@dataclass(frozen=True)
class Optimizer(ABC):
    """What every optimiser shares: the state layout, the input checks and the step counter.

    A subclass names its per-parameter `slots` and writes `_step`, one parameter's update;
    `update` runs it for every parameter.
    """

    @property
    @abstractmethod
    def slots(self) -> tuple[str, ...]: ...

    def init(self, params: Mapping[str, Array]) -> Params:
        state: Params = {"step": np.array(0, dtype=np.int64)}
        for slot in self.slots:
            for name, p in params.items():
                state[f"{slot}/{name}"] = np.zeros_like(p)
        return state

    def update(
        self,
        params: Mapping[str, Array],
        grads: Mapping[str, Array],
        state: Mapping[str, Array],
        lr: float,
    ) -> tuple[Params, Params]:
        """(params, state) after one step; the inputs are left as they are."""
        lr = _check(params, grads, state, self.slots, lr)
        step = int(state["step"]) + 1
        new_params: Params = {}
        new_state: Params = {"step": np.array(step, dtype=np.int64)}
        for name, p in params.items():
            slots = {s: state[f"{s}/{name}"] for s in self.slots}
            new_params[name], new_slots = self._step(p, grads[name], slots, step, lr)
            new_state |= {f"{s}/{name}": new_slots[s] for s in self.slots}
        return new_params, new_state

    @abstractmethod
    def _step(
        self, p: Array, g: Array, slots: Params, step: int, lr: float
    ) -> tuple[Array, Params]:
        """(θ, slots) after update number `step` (1 for the first) of one parameter."""


@dataclass(frozen=True)
class SGD(Optimizer):
    """SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD).

    g ← g + λθ;  b ← g on the first step, else μb + (1−τ)g;
    g ← g + μb (Nesterov) or b;  θ ← θ − lr·g.
    """

    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    @property
    def slots(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum != 0 else ()

    def _step(
        self, p: Array, g: Array, slots: Params, step: int, lr: float
    ) -> tuple[Array, Params]:
        g = _l2(g, p, self.weight_decay)
        if self.momentum == 0:
            return p + (-lr) * g, {}
        # torch starts the buffer at the first gradient, undamped.
        if step == 1:
            buf = g.copy()
        else:
            buf = self.momentum * slots["momentum_buffer"] + (1 - self.dampening) * g
        g = g + self.momentum * buf if self.nesterov else buf
        return p + (-lr) * g, {"momentum_buffer": buf}


@dataclass(frozen=True)
class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): s ← s + g²;  θ ← θ − lr_t · g / (√s + ε),
    with lr_t = lr / (1 + (t−1)·lr_decay) and g ← g + λθ first."""

    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10

    @property
    def slots(self) -> tuple[str, ...]:
        return ("sum",)

    def init(self, params: Mapping[str, Array]) -> Params:
        state = super().init(params)
        for name, p in params.items():
            state[f"sum/{name}"] = np.full_like(p, self.initial_accumulator_value)
        return state

    def _step(
        self, p: Array, g: Array, slots: Params, step: int, lr: float
    ) -> tuple[Array, Params]:
        clr = lr / (1 + (step - 1) * self.lr_decay)
        g = _l2(g, p, self.weight_decay)
        s = slots["sum"] + g * g
        return p + (-clr) * (g / (np.sqrt(s) + self.eps)), {"sum": s}


@dataclass(frozen=True)
class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop): v ← αv + (1−α)g²;  with `centered`, ḡ ← lerp(ḡ, g, 1−α)
    and v is replaced by v − ḡ² in the denominator;  d = √v + ε;
    θ ← θ − lr·g/d, or with momentum b ← μb + g/d, θ ← θ − lr·b."""

    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False

    @property
    def slots(self) -> tuple[str, ...]:
        return (
            ("square_avg",)
            + (("grad_avg",) if self.centered else ())
            + (("momentum_buffer",) if self.momentum > 0 else ())
        )

    def _step(
        self, p: Array, g: Array, slots: Params, step: int, lr: float
    ) -> tuple[Array, Params]:
        a = self.alpha
        g = _l2(g, p, self.weight_decay)
        v = slots["square_avg"] * a + (1 - a) * (g * g)
        new = {"square_avg": v}
        if self.centered:
            gbar = new["grad_avg"] = _lerp(slots["grad_avg"], g, 1 - a)
            d = np.sqrt(v - gbar * gbar) + self.eps
        else:
            d = np.sqrt(v) + self.eps
        if self.momentum > 0:
            buf = new["momentum_buffer"] = slots["momentum_buffer"] * self.momentum + g / d
            return p + (-lr) * buf, new
        return p + (-lr) * (g / d), new


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam (torch.optim.Adam; AdamW with `decoupled_weight_decay=True`).

    m ← lerp(m, g, 1−β₁);  v ← β₂v + (1−β₂)g²;  (amsgrad: v̂ ← max(v̂, v))
    θ ← θ − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε).
    Weight decay adds λθ to g, or with `decoupled_weight_decay` multiplies θ by (1 − lr·λ)
    before the step (Loshchilov & Hutter).
    """

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    amsgrad: bool = False

    @property
    def slots(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _step(
        self, p: Array, g: Array, slots: Params, step: int, lr: float
    ) -> tuple[Array, Params]:
        b1, b2 = self.beta1, self.beta2
        step_size = lr / (1 - b1**step)
        bc2_sqrt = (1 - b2**step) ** 0.5
        if not self.decoupled_weight_decay:
            g = _l2(g, p, self.weight_decay)
        elif self.weight_decay != 0:
            p = p * (1 - lr * self.weight_decay)
        m = _lerp(slots["exp_avg"], g, 1 - b1)
        v = slots["exp_avg_sq"] * b2 + (1 - b2) * (g * g)
        new = {"exp_avg": m, "exp_avg_sq": v}
        if self.amsgrad:
            v = new["max_exp_avg_sq"] = np.maximum(slots["max_exp_avg_sq"], v)
        denom = np.sqrt(v) / bc2_sqrt + self.eps
        return p + (-step_size) * (m / denom), new


# the class of each name in OPTIMIZER_NAMES
OPTIMIZERS: dict[OptimizerName, type[SGD | Adagrad | RMSprop | Adam]] = {
    "sgd": SGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": Adam,
}

# The values each numeric hyperparameter may take, checked by make_optimizer.
_UNIT = ("a number in [0, 1]", lambda v: 0 <= v <= 1)
_AVERAGE = ("a number in [0, 1)", lambda v: 0 <= v < 1)  # 1 would freeze the average
_NONNEG = ("a finite number >= 0", lambda v: v >= 0)
_RANGES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "momentum": _UNIT,
    "dampening": _UNIT,
    "alpha": _AVERAGE,
    "beta1": _AVERAGE,
    "beta2": _AVERAGE,
    "weight_decay": _NONNEG,
    "lr_decay": _NONNEG,
    "initial_accumulator_value": _NONNEG,
    "eps": _NONNEG,
}


ADAMW_WEIGHT_DECAY = 0.01  # torch.optim.AdamW's default


def make_optimizer(name: OptimizerName, **hyper: Any) -> SGD | Adagrad | RMSprop | Adam:
    """Build an optimiser by name ("sgd", "adagrad", "rmsprop", "adam", "adamw").

    `hyper` are the dataclass fields of that optimiser; "adamw" is Adam with
    `decoupled_weight_decay=True` and torch.optim.AdamW's default weight_decay=0.01.
    Numbers are stored as Python floats so that float32 params stay float32.
    """
    cls = OPTIMIZERS[check_one_of("optimizer", name, OPTIMIZER_NAMES)]
    if name == "adamw":
        hyper = {"decoupled_weight_decay": True, "weight_decay": ADAMW_WEIGHT_DECAY, **hyper}
    names = [f.name for f in fields(cls)]
    clean: dict[str, Any] = {}
    for key, value in hyper.items():
        if key not in names:
            raise ValueError(
                f"{key}: not a hyperparameter of optimizer {name!r}; expected {', '.join(names)}"
            )
        if key in _RANGES:
            allowed, ok = _RANGES[key]
            clean[key] = check_number(key, value, ok, allowed)
        elif isinstance(value, bool | np.bool_):
            clean[key] = bool(value)
        else:
            raise ValueError(f"{key}: got {value!r}; expected true or false")
    opt = cls(**clean)
    if isinstance(opt, SGD) and opt.nesterov and (opt.momentum <= 0 or opt.dampening != 0):
        raise ValueError(
            f"nesterov: got True with momentum={opt.momentum}, dampening={opt.dampening}; "
            "expected only with momentum > 0 and dampening = 0"
        )
    return opt
