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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, get_args

import numpy as np

from rnnlab.checks import check_number, check_one_of

Arrays = dict[str, np.ndarray]

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


class Optimizer(Protocol):
    def init(self, params: Mapping[str, np.ndarray]) -> Arrays: ...

    def update(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        state: Mapping[str, np.ndarray],
        lr: float,
    ) -> tuple[Arrays, Arrays]: ...


def state_slot(state: Mapping[str, np.ndarray], slot: str) -> Arrays:
    """The per-parameter arrays of one slot, keyed like params (e.g. `exp_avg`)."""
    prefix = slot + "/"
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _zeros_slots(params: Mapping[str, np.ndarray], slots: tuple[str, ...]) -> Arrays:
    state: Arrays = {"step": np.array(0, dtype=np.int64)}
    for slot in slots:
        for name, p in params.items():
            state[f"{slot}/{name}"] = np.zeros_like(p)
    return state


def _check(
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    state: Mapping[str, np.ndarray],
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


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    # torch.lerp's formula: the branch on |weight| keeps the result exact at both ends.
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


@dataclass(frozen=True)
class SGD:
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

    def init(self, params: Mapping[str, np.ndarray]) -> Arrays:
        return _zeros_slots(params, self.slots)

    def update(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        state: Mapping[str, np.ndarray],
        lr: float,
    ) -> tuple[Arrays, Arrays]:
        lr = _check(params, grads, state, self.slots, lr)
        first = int(state["step"]) == 0
        new_params: Arrays = {}
        new_state: Arrays = {"step": np.array(int(state["step"]) + 1, dtype=np.int64)}
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            if self.momentum != 0:
                key = f"momentum_buffer/{name}"
                # torch starts the buffer at the first gradient, undamped.
                buf = g.copy() if first else self.momentum * state[key] + (1 - self.dampening) * g
                new_state[key] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            new_params[name] = p + (-lr) * g
        return new_params, new_state


@dataclass(frozen=True)
class Adagrad:
    """Adagrad (torch.optim.Adagrad): s ← s + g²;  θ ← θ − lr_t · g / (√s + ε),
    with lr_t = lr / (1 + (t−1)·lr_decay) and g ← g + λθ first."""

    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10

    @property
    def slots(self) -> tuple[str, ...]:
        return ("sum",)

    def init(self, params: Mapping[str, np.ndarray]) -> Arrays:
        state = _zeros_slots(params, self.slots)
        for name, p in params.items():
            state[f"sum/{name}"] = np.full_like(p, self.initial_accumulator_value)
        return state

    def update(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        state: Mapping[str, np.ndarray],
        lr: float,
    ) -> tuple[Arrays, Arrays]:
        lr = _check(params, grads, state, self.slots, lr)
        step = int(state["step"]) + 1
        clr = lr / (1 + (step - 1) * self.lr_decay)
        new_params: Arrays = {}
        new_state: Arrays = {"step": np.array(step, dtype=np.int64)}
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            s = state[f"sum/{name}"] + g * g
            new_state[f"sum/{name}"] = s
            new_params[name] = p + (-clr) * (g / (np.sqrt(s) + self.eps))
        return new_params, new_state


@dataclass(frozen=True)
class RMSprop:
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

    def init(self, params: Mapping[str, np.ndarray]) -> Arrays:
        return _zeros_slots(params, self.slots)

    def update(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        state: Mapping[str, np.ndarray],
        lr: float,
    ) -> tuple[Arrays, Arrays]:
        lr = _check(params, grads, state, self.slots, lr)
        a = self.alpha
        new_params: Arrays = {}
        new_state: Arrays = {"step": np.array(int(state["step"]) + 1, dtype=np.int64)}
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            v = state[f"square_avg/{name}"] * a + (1 - a) * (g * g)
            new_state[f"square_avg/{name}"] = v
            if self.centered:
                gbar = _lerp(state[f"grad_avg/{name}"], g, 1 - a)
                new_state[f"grad_avg/{name}"] = gbar
                d = np.sqrt(v - gbar * gbar) + self.eps
            else:
                d = np.sqrt(v) + self.eps
            if self.momentum > 0:
                buf = state[f"momentum_buffer/{name}"] * self.momentum + g / d
                new_state[f"momentum_buffer/{name}"] = buf
                new_params[name] = p + (-lr) * buf
            else:
                new_params[name] = p + (-lr) * (g / d)
        return new_params, new_state


@dataclass(frozen=True)
class Adam:
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

    def init(self, params: Mapping[str, np.ndarray]) -> Arrays:
        return _zeros_slots(params, self.slots)

    def update(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        state: Mapping[str, np.ndarray],
        lr: float,
    ) -> tuple[Arrays, Arrays]:
        lr = _check(params, grads, state, self.slots, lr)
        b1, b2 = self.beta1, self.beta2
        step = int(state["step"]) + 1
        step_size = lr / (1 - b1**step)
        bc2_sqrt = (1 - b2**step) ** 0.5
        new_params: Arrays = {}
        new_state: Arrays = {"step": np.array(step, dtype=np.int64)}
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay != 0:
                if self.decoupled_weight_decay:
                    p = p * (1 - lr * self.weight_decay)
                else:
                    g = g + self.weight_decay * p
            m = _lerp(state[f"exp_avg/{name}"], g, 1 - b1)
            v = state[f"exp_avg_sq/{name}"] * b2 + (1 - b2) * (g * g)
            new_state[f"exp_avg/{name}"] = m
            new_state[f"exp_avg_sq/{name}"] = v
            if self.amsgrad:
                v = np.maximum(state[f"max_exp_avg_sq/{name}"], v)
                new_state[f"max_exp_avg_sq/{name}"] = v
            denom = np.sqrt(v) / bc2_sqrt + self.eps
            new_params[name] = p + (-step_size) * (m / denom)
        return new_params, new_state


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
