"""The adding problem: remember two marked numbers across a long sequence and add them."""

from __future__ import annotations

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_int
from rnnlab.tasks.base import Batch, Task, check_outputs, masked_mean, register

VARIANTS = ("le2015", "hochreiter1997")
TOLERANCE = 0.04  # Hochreiter & Schmidhuber's "processed correctly": |error| < 0.04


@register
class AddingTask(Task):
    """Adding problem. Inputs x_t = (v_t, m_t) (T, B, 2): a value and a marker; K = 1.
    The target is read at the last step with MSE: mask is 1 at t = T − 1 only.

    Variant "le2015" (Le et al. 2015; Arjovsky et al. 2016), the default, T >= 2:
        v_t ~ U[0, 1]; m_t = 1 at p1 ~ U{0 … T//2 − 1} and p2 ~ U{T//2 … T − 1}, else 0.
        y = v_p1 + v_p2.
        baseline: predict E[y] = 1, MSE = Var(v_p1 + v_p2) = 2 · 1/12 = 1/6.
        solved: MSE <= 0.01.
        dependency_length: T − T//2, the shortest lag from p1 to the readout.
    Variant "hochreiter1997" (Hochreiter & Schmidhuber 1997, experiment 4), T >= 20:
        v_t ~ U[−1, 1]; X1 = v_p1, p1 ~ U{0 … 9}; X2 = v_p2, p2 uniform over the first
        T//2 − 1 steps other than p1. y = 0.5 + (X1 + X2)/4.
        baseline: predict 0.5, MSE = (Var X1 + Var X2)/16 = (1/3 + 1/3)/16 = 1/24.
        solved: accuracy == 1, the paper's stopping rule (every recent sequence correct).
        dependency_length: T − 1 − min(9, T//2 − 2), the shortest lag from min(p1, p2).
        The paper draws lengths in [T, T + T/10] and marks the first and last steps with
        −1 to delimit them; here the length is fixed, so the readout step needs no marker.

    metrics: mse (= loss) and accuracy, the fraction of sequences with |error| < 0.04.
    A predictor that also reads the last input could beat the baseline slightly, when a
    marker falls on the last step; the baseline ignores the inputs.
    """

    name = "adding"
    accuracy_of = f"sequences within ±{TOLERANCE:g}"

    def __init__(
        self,
        *,
        T: int = 100,
        variant: str = "le2015",
        seed: int = 0,
        val_size: int = 1000,
        dtype: str = "float32",
    ) -> None:
        super().__init__(seed=seed, val_size=val_size, dtype=dtype)
        if variant not in VARIANTS:
            raise ValueError(f"variant: got {variant!r}; expected one of {', '.join(VARIANTS)}")
        self.variant = variant
        if variant == "le2015":
            self.T = check_int("T", T, 2, why=" (one marker in each half)")
            self.dependency_length = self.T - self.T // 2
            self.baseline = 1 / 6
        else:
            why = " (the first ten steps, holding X1, in the first half)"
            self.T = check_int("T", T, 20, why=why)
            self.dependency_length = self.T - 1 - min(9, self.T // 2 - 2)
            self.baseline = 1 / 24
        self.params = {"T": self.T, "variant": variant, **self.params}
        self.input_size, self.input_ids, self.output_size = 2, False, 1
        self.loss = "mse"
        self.length = self.T

    def _generate(self, rng: np.random.Generator, batch_size: int) -> Batch:
        T, B = self.T, batch_size
        cols = np.arange(B)
        if self.variant == "le2015":
            values = rng.random((T, B))
            p1 = rng.integers(0, T // 2, B)
            p2 = rng.integers(T // 2, T, B)
            target = values[p1, cols] + values[p2, cols]
        else:
            values = rng.uniform(-1.0, 1.0, (T, B))
            p1 = rng.integers(0, 10, B)
            r = rng.integers(0, T // 2 - 1, B)
            p2 = r + (r >= p1)  # the r-th step that is not p1
            target = 0.5 + (values[p1, cols] + values[p2, cols]) / 4
        X = np.zeros((T, B, 2), dtype=self.dtype)
        X[:, :, 0] = values
        X[p1, cols, 1] = 1
        X[p2, cols, 1] = 1
        Y = np.zeros((T, B, 1), dtype=self.dtype)
        Y[-1, :, 0] = target
        mask = np.zeros((T, B), dtype=self.dtype)
        mask[-1] = 1
        return Batch(X, Y, mask)

    def metrics(self, outputs: Array, Y: Array, mask: Array) -> dict[str, float]:
        o = check_outputs(outputs, mask, 1).astype(np.float64)
        err = o[..., 0] - np.asarray(Y, dtype=np.float64)[..., 0]  # (T, B)
        mse = masked_mean(err * err, mask)
        accuracy = masked_mean(np.abs(err) < TOLERANCE, mask)
        return {"loss": mse, "mse": mse, "accuracy": accuracy}

    def solved(self, metrics: dict[str, float]) -> bool:
        if self.variant == "le2015":
            return metrics["mse"] <= 0.01
        return metrics["accuracy"] >= 1.0
