"""DiagnosisOptions: how a diagnosis measures and judges, given and validated once.

    opts = DiagnosisOptions(dependency_length=100, jacobian_sequences=2)
    rnnlab.diagnose(model, X, Y, loss="mse", options=opts)
    rnnlab.diagnose(model, X, Y, loss="mse", dependency_length=100, jacobian_sequences=2)

Both calls are the same diagnosis. Every entry point (rnnlab.diagnose, DiagnosisCallback, and
the torch bridge's gradient_flow, Watch.diagnose and GradientFlowMonitor) takes `options=`
and each of its fields as a keyword; a keyword given beside `options` overrides that field,
as dataclasses.replace does. What changes from call to call (the run's pre-clip norms so
far, its last validation loss) is an argument of the call, not an option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from rnnlab.checks import check_int
from rnnlab.diagnostics.verdict import RunInfo, Thresholds


@dataclass(frozen=True)
class DiagnosisOptions:
    """The options of a diagnosis, with their defaults.

    dependency_length   None  the task's: where the verdict reads the lag profile (None: the
                              longest lag, t − 1; it must be a lag step t reaches)
    jacobian_sequences  4     how many sequences get Jacobian products (O(t·n·S³) for n of
                              them; 0 skips them): the first n, or n drawn with `rng`
    rng                 None  a numpy Generator drawing those sequences
    run                 None  what the run uses, so the remedies in use are marked (None:
                              read off the model, no clipping)
    thresholds                the verdict's (Thresholds(), the defaults)
    """

    dependency_length: int | None = None
    jacobian_sequences: int = 4
    rng: np.random.Generator | None = None
    run: RunInfo | None = None
    thresholds: Thresholds = Thresholds()

    def __post_init__(self) -> None:
        if self.thresholds is None:  # as every entry point took it before: the defaults
            object.__setattr__(self, "thresholds", Thresholds())
        if self.dependency_length is not None:
            check_int("dependency_length", self.dependency_length, 1)
        check_int("jacobian_sequences", self.jacobian_sequences, 0)
        for name, kind, what in (
            ("rng", np.random.Generator, "a numpy.random.Generator"),
            ("run", RunInfo, "a RunInfo"),
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{name}: got {type(value).__name__}; expected {what} or None")
        if not isinstance(self.thresholds, Thresholds):
            raise ValueError(
                f"thresholds: got {type(self.thresholds).__name__}; expected a Thresholds"
            )


OPTIONS = tuple(f.name for f in fields(DiagnosisOptions))


def options_from(
    options: DiagnosisOptions | None,
    keywords: Mapping[str, Any],
    default: DiagnosisOptions | None = None,
) -> DiagnosisOptions:
    """The options of an entry point's call: `options` (or `default`, or DiagnosisOptions())
    with the fields given as `keywords` replaced."""
    if options is not None and not isinstance(options, DiagnosisOptions):
        raise ValueError(
            f"options: got {type(options).__name__}; expected a DiagnosisOptions or None"
        )
    unknown = [k for k in keywords if k not in OPTIONS]
    if unknown:  # what Python raises for any other unexpected keyword, with the choices
        raise TypeError(
            f"{unknown[0]}: unexpected keyword argument; expected one of {', '.join(OPTIONS)}"
        )
    if options is None:
        options = DiagnosisOptions() if default is None else default
    return replace(options, **keywords) if keywords else options
