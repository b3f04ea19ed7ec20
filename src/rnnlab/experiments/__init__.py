"""Experiments: run configs (TOML), sweeps over them, executors (local or Ray) and the
results store."""

from rnnlab.experiments.config import ConfigError, RunConfig
from rnnlab.experiments.executors import make_executor
from rnnlab.experiments.prepared import PreparedRun, build, load_config, load_run, prepare, train
from rnnlab.experiments.store import Run, Store, StoreError
from rnnlab.experiments.sweep import Sweep, expand, load_sweep, run_sweep

__all__ = [
    "ConfigError",
    "PreparedRun",
    "Run",
    "RunConfig",
    "Store",
    "StoreError",
    "Sweep",
    "build",
    "expand",
    "load_config",
    "load_run",
    "load_sweep",
    "make_executor",
    "prepare",
    "run_sweep",
    "train",
]
