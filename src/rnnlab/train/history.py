"""A run's history: one record per training step, one per evaluation, and how it ended."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab._atomic import FileError, atomic_write, read_file

STATUSES = ("running", "done", "diverged")
# history.json holds a record per step: ~40 MB for 100,000 steps of a 3-layer model
MAX_BYTES = 512 << 20


@dataclass
class History:
    """steps[i] holds step, loss, lr, grad_norm (before clipping), clipped_norm, update_ratio
    (‖Δθ‖/‖θ‖) and grad_norm/<param>; evals[j] holds step and the task's metrics;
    diagnostics[k] holds whatever a diagnostics callback records (JSON-safe)."""

    steps: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    diverged_at: int | None = None  # the step whose loss or gradient was non-finite
    last_finite_norm: float | None = None
    skipped: int = 0  # non-finite steps dropped under on_nonfinite = "skip"

    def series(self, key: str) -> np.ndarray:
        """One column of `steps` as an array (NaN where a record lacks it)."""
        return np.array([r.get(key, np.nan) for r in self.steps], dtype=np.float64)

    @property
    def final_metrics(self) -> dict[str, float]:
        return dict(self.evals[-1]) if self.evals else {}

    def truncate(self, step: int) -> History:
        """The history as it was when `step` steps were done (for an exact resume)."""
        steps = [r for r in self.steps if r["step"] < step]
        finite = [r["grad_norm"] for r in steps if not r.get("skipped")]
        return History(
            steps=steps,
            evals=[r for r in self.evals if r["step"] <= step],
            diagnostics=[r for r in self.diagnostics if r["step"] <= step],
            skipped=len(steps) - len(finite),
            last_finite_norm=finite[-1] if finite else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        # float repr round-trips, so a resumed history is bit-identical; NaN/inf stay legal JSON
        # extensions that json reads back
        atomic_write(Path(path), json.dumps(self.to_dict()).encode())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """The history saved at `path`: a regular file of at most MAX_BYTES; a ValueError
        (one line naming it) for anything else or anything that is not a history."""
        path = Path(path)
        try:
            data = json.loads(read_file(path, MAX_BYTES))
        except FileError as err:
            raise ValueError(f"{path}: not a readable history ({err})") from None
        except (ValueError, RecursionError) as err:
            why = "nested too deep" if isinstance(err, RecursionError) else str(err)
            raise ValueError(f"{path}: not a readable history (not JSON: {why})") from None
        if not isinstance(data, dict) or not set(data) <= {f.name for f in fields(cls)}:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path}: not a readable history (got {keys!r:.80})")
        for key in ("steps", "evals", "diagnostics"):
            records = data.get(key, [])
            if not isinstance(records, list) or not all(
                isinstance(r, dict) and type(r.get("step")) in (int, float) for r in records
            ):
                raise ValueError(
                    f"{path}: not a readable history ({key}: expected a list of records, "
                    "each with its step)"
                )
        if data.get("status", "running") not in STATUSES:
            raise ValueError(
                f"{path}: not a readable history (status {data.get('status')!r:.40}; expected "
                f"one of {', '.join(STATUSES)})"
            )
        return cls(**data)
