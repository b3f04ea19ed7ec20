"""Temporal order: classify the order of two early symbols hidden among distractors."""

from __future__ import annotations

import math

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_int
from rnnlab.tasks.base import Batch, Task, classification_metrics, register

SYMBOLS = ("A", "B", "c", "d", "e", "f")  # one-hot index = position here
CLASSES = ("AA", "AB", "BA", "BB")  # class id = 2·first + second, with A = 0, B = 1


def position_range(T: int, lo_tenths: int, hi_tenths: int) -> tuple[int, int]:
    """Integer steps in [lo·T/10, hi·T/10), as a half-open range; integer maths, no rounding."""
    return -(-lo_tenths * T // 10), -(-hi_tenths * T // 10)


@register
class TemporalOrderTask(Task):
    """Temporal order (Hochreiter & Schmidhuber 1997; Pascanu et al. 2013), T >= 10.

    X one-hot over 6 symbols (T, B, 6): A or B at p1 ∈ [0.1T, 0.2T) and at p2 ∈ [0.5T, 0.6T),
    a distractor c–f drawn uniformly at every other step. The class, read at the last step
    (mask 1 at t = T − 1 only), is AA, AB, BA or BB (ids 0–3); K = 4.

    baseline: the four classes are equally likely whatever the distractors: ln 4.
    metrics: cross_entropy (= loss) and accuracy.
    solved: accuracy >= 0.99.
    dependency_length: T − ⌈0.2T⌉, the shortest lag from p1 to the readout.
    """

    name = "temporal_order"
    accuracy_of = "sequences"

    def __init__(
        self, *, T: int = 100, seed: int = 0, val_size: int = 1000, dtype: str = "float32"
    ) -> None:
        super().__init__(seed=seed, val_size=val_size, dtype=dtype)
        self.T = check_int("T", T, 10, why=" (a symbol lies in [0.1T, 0.2T))")
        self.params = {"T": self.T, **self.params}
        self.input_size, self.input_ids, self.output_size = len(SYMBOLS), False, len(CLASSES)
        self.loss = "cross_entropy"
        self.length = self.T
        self.first_range = position_range(self.T, 1, 2)
        self.second_range = position_range(self.T, 5, 6)
        self.dependency_length = self.T - self.first_range[1]
        self.baseline = math.log(len(CLASSES))

    def _generate(self, rng: np.random.Generator, batch_size: int) -> Batch:
        T, B = self.T, batch_size
        cols = np.arange(B)
        symbols = rng.integers(2, len(SYMBOLS), (T, B))  # distractors c–f
        p1 = rng.integers(*self.first_range, B)
        p2 = rng.integers(*self.second_range, B)
        first = rng.integers(0, 2, B)
        second = rng.integers(0, 2, B)
        symbols[p1, cols] = first
        symbols[p2, cols] = second
        X = np.zeros((T * B, len(SYMBOLS)), dtype=self.dtype)
        X[np.arange(T * B), symbols.ravel()] = 1
        Y = np.zeros((T, B), dtype=np.int64)
        Y[-1] = 2 * first + second
        mask = np.zeros((T, B), dtype=self.dtype)
        mask[-1] = 1
        return Batch(X.reshape(T, B, len(SYMBOLS)), Y, mask)  # (T, B, 6)

    def metrics(self, outputs: Array, Y: Array, mask: Array) -> dict[str, float]:
        return classification_metrics(outputs, Y, mask, self.output_size)

    def solved(self, metrics: dict[str, float]) -> bool:
        return metrics["accuracy"] >= 0.99
