"""The task protocol, the registry `get(name, **params)` / `names()`, and shared helpers.

A task generates batches time-major, in the layout the engine consumes:

    X     float inputs (T, B, D), or token ids (T, B) when `input_ids` (D = vocabulary size)
    Y     loss "cross_entropy": class ids (T, B), any value where mask is 0
          loss "mse":           float targets (T, B, K)
    mask  float (T, B), 1 where a step carries loss

Every task also has a fixed `validation` batch drawn from its own `seed`, a `baseline` (the
loss of the best predictor that ignores the inputs but knows the layout, i.e. the step
index), `metrics(outputs, Y, mask)`, `solved(metrics)` and a `dependency_length`.
`metrics(...)["loss"]` is the masked mean loss per step, in the units of `baseline`.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_dtype, check_int, check_one_of

# Mixed into the validation seed so the validation set never equals the training batches a
# trainer draws from np.random.default_rng(seed) with the same seed.
_VALIDATION_KEY = 0x7A5C


class Batch(NamedTuple):
    """One batch; unpacks as X, Y, mask."""

    X: Array
    Y: Array
    mask: Array


class Task(ABC):
    """Base class of every task. Subclasses set the attributes below in `__init__`.

    name               registry name
    params             constructor arguments, enough to rebuild the task with `get`
    input_size         D, or the vocabulary size when `input_ids`
    input_ids          True when X holds token ids (T, B) rather than floats (T, B, D)
    output_size        K
    loss               "mse" or "cross_entropy"
    length             time steps per batch
    dependency_length  the lag, in steps, between the evidence and the answer (see each task)
    baseline           loss of the best input-ignoring predictor, units of metrics()["loss"]
    dtype              float dtype of X (when not ids), of Y (for "mse") and of mask

    accuracy_of (a class attribute) says what metrics()["accuracy"] is the fraction of,
    e.g. "recalled symbols": each task counts something else.
    """

    name: ClassVar[str]
    accuracy_of: ClassVar[str]
    params: dict[str, Any]
    input_size: int
    input_ids: bool
    output_size: int
    loss: str
    length: int
    dependency_length: int
    baseline: float

    def __init__(self, *, seed: int, val_size: int, dtype: str) -> None:
        self.seed = check_int("seed", seed, 0)
        self.val_size = check_int("val_size", val_size, 1)
        self.dtype = check_dtype(dtype)
        self.params = {"seed": self.seed, "val_size": self.val_size, "dtype": str(dtype)}

    def batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """A fresh batch of `batch_size` sequences drawn with `rng`."""
        check_rng(rng)
        return self._generate(rng, check_int("batch_size", batch_size, 1))

    @cached_property
    def validation(self) -> Batch:
        """The fixed validation batch of `val_size` sequences, a function of `seed` alone.
        Its arrays are read-only, so no caller can change what later evaluations see."""
        rng = np.random.default_rng([_VALIDATION_KEY, self.seed])
        batch = self._generate_validation(rng, self.val_size)
        for array in batch:
            array.flags.writeable = False
        return batch

    @property
    def baselines(self) -> dict[str, float]:
        """The baseline in the units of each metric it applies to: `loss` and the loss's
        own name ("mse" or "cross_entropy"); a task adds the metrics it derives from it."""
        return {"loss": self.baseline, self.loss: self.baseline}

    def _generate_validation(self, rng: np.random.Generator, batch_size: int) -> Batch:
        return self._generate(rng, batch_size)

    @abstractmethod
    def _generate(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """Draw values in float64 and store them in arrays of `dtype`, with no loop over B."""

    @abstractmethod
    def metrics(self, outputs: Array, Y: Array, mask: Array) -> dict[str, float]:
        """outputs: the model's logits or regression outputs (T, B, K)."""

    @abstractmethod
    def solved(self, metrics: dict[str, float]) -> bool:
        """Whether `metrics` (of the validation set) meet the task's published criterion."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


TaskT = TypeVar("TaskT", bound=type[Task])
_REGISTRY: dict[str, type[Task]] = {}


def register(cls: TaskT) -> TaskT:
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Registered task names, sorted."""
    return sorted(_REGISTRY)


def task_class(name: str) -> type[Task]:
    """The class registered as `name`."""
    return _REGISTRY[check_one_of("name", name, tuple(names()))]


def get(name: str, **params: Any) -> Task:
    """Build the task registered as `name` with constructor `params` (e.g. T=100)."""
    cls = task_class(name)
    allowed = list(inspect.signature(cls).parameters)
    for key in params:
        if key not in allowed:
            raise ValueError(
                f"{key}: not a parameter of task {name!r}; expected one of {', '.join(allowed)}"
            )
    return cls(**params)


# --- validation ---------------------------------------------------------------------------


def check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng: got {type(rng).__name__}; expected a numpy.random.Generator "
            f"(np.random.default_rng(seed))"
        )


def check_outputs(outputs: object, mask: Array, K: int) -> Array:
    expected = (*np.shape(mask), K)
    if not isinstance(outputs, np.ndarray) or outputs.shape != expected:
        shape = getattr(outputs, "shape", type(outputs).__name__)
        raise ValueError(f"outputs: got {shape}; expected a numpy array of shape {expected}")
    return outputs


# --- per-step losses, always in float64 -----------------------------------------------------


def cross_entropy_steps(outputs: Array, Y: Array, mask: Array) -> Array:
    """−log softmax(o_tb)[y_tb] for every step (T, B); steps with mask 0 may hold any id."""
    o = outputs.astype(np.float64)
    shifted = o - o.max(axis=-1, keepdims=True)
    log_Z = np.log(np.exp(shifted).sum(axis=-1))
    y = np.where(np.asarray(mask) != 0, Y, 0).astype(np.int64)[..., None]
    return log_Z - np.take_along_axis(shifted, y, axis=-1)[..., 0]


def classification_metrics(
    outputs: Array, Y: Array, mask: Array, K: int, scored: slice = slice(None)
) -> dict[str, float]:
    """cross_entropy (= loss), the masked mean per step, and accuracy: the fraction of the
    masked steps among `scored` (default: all) where the largest output is y's class."""
    o = check_outputs(outputs, mask, K)
    cross_entropy = masked_mean(cross_entropy_steps(o, Y, mask), mask)
    accuracy = masked_mean(o[scored].argmax(axis=-1) == Y[scored], mask[scored])
    return {"loss": cross_entropy, "cross_entropy": cross_entropy, "accuracy": accuracy}


def masked_mean(values: Array, mask: Array) -> float:
    """Mean of `values` (T, B) over the steps the mask selects; what the other steps hold
    (inf or nan from outputs that overflowed where nothing is scored) does not count."""
    m = np.asarray(mask, dtype=np.float64)
    return float(np.sum(np.where(m != 0, values, 0.0) * m) / np.sum(m))
