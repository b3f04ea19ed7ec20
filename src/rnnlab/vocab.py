"""Vocabularies that layers on both sides of a boundary name, kept below every layer: this
module imports nothing from rnnlab. Each is a Literal (the type of the config fields that
take it, so pydantic checks them) whose values, by get_args, are the tuple the checks name.

A vocabulary lives with the lowest layer that uses it: losses, nonlinearities and
initialisers in the engine (losses.py, activations.py, init.py), optimisers and schedules
in train (optim.py, schedules.py). These two are needed lower still:
    ClipMode  train clips with it, and the diagnostics (below train) report it in RunInfo
    DType     the tasks, which depend on nothing, take it as the engine does
"""

from __future__ import annotations

from typing import Literal, get_args

ClipMode = Literal["norm", "value", "none"]
CLIP_MODES: tuple[ClipMode, ...] = get_args(ClipMode)

DType = Literal["float32", "float64"]
DTYPES: tuple[DType, ...] = get_args(DType)
