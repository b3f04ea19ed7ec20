"""Copy memory: read ten symbols, wait T steps, then write them back."""

from __future__ import annotations

import math

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_int
from rnnlab.tasks.base import Batch, Task, classification_metrics, register

N_DATA = 8  # symbols 0–7 carry data
BLANK = 8
DELIMITER = 9
N_COPY = 10  # symbols to remember


@register
class CopyTask(Task):
    """Copy memory (Arjovsky, Shah & Bengio 2016). Token ids, vocabulary 10, K = 10, T >= 1.

    Symbols 0–7 are data, 8 is blank, 9 the delimiter. A sequence has T + 20 steps:
        X: 10 data symbols ~ U{0 … 7}, T − 1 blanks, the delimiter, 10 blanks;
        Y: T + 10 blanks, then the 10 data symbols.
    Every step carries loss (mask all ones), as in the paper.

    baseline: predict blank for T + 10 steps, then uniform over the 8 data symbols:
        10 · ln 8 / (T + 20) nats per step.
    metrics: cross_entropy (= loss), the mean per time step that the paper reports, and
        accuracy over the 10 recalled symbols.
    solved: accuracy >= 0.99.
    dependency_length: T + 10; symbol i is read at step i and written at step T + 10 + i.
    """

    name = "copy"
    accuracy_of = "recalled symbols"

    def __init__(
        self, *, T: int = 100, seed: int = 0, val_size: int = 1000, dtype: str = "float32"
    ) -> None:
        super().__init__(seed=seed, val_size=val_size, dtype=dtype)
        self.T = check_int("T", T, 1, why=" (T − 1 blanks follow the data)")
        self.params = {"T": self.T, **self.params}
        self.input_size, self.input_ids, self.output_size = 10, True, 10
        self.loss = "cross_entropy"
        self.length = self.T + 2 * N_COPY
        self.dependency_length = self.T + N_COPY
        self.baseline = N_COPY * math.log(N_DATA) / self.length

    def _generate(self, rng: np.random.Generator, batch_size: int) -> Batch:
        T, B = self.T, batch_size
        data = rng.integers(0, N_DATA, (N_COPY, B))
        X = np.full((self.length, B), BLANK, dtype=np.int64)
        X[:N_COPY] = data
        X[T + N_COPY - 1] = DELIMITER
        Y = np.full((self.length, B), BLANK, dtype=np.int64)
        Y[T + N_COPY :] = data
        mask = np.ones((self.length, B), dtype=self.dtype)
        return Batch(X, Y, mask)

    def metrics(self, outputs: Array, Y: Array, mask: Array) -> dict[str, float]:
        # accuracy over the 10 recalled symbols, the last steps
        return classification_metrics(outputs, Y, mask, self.output_size, slice(-N_COPY, None))

    def solved(self, metrics: dict[str, float]) -> bool:
        return metrics["accuracy"] >= 0.99
