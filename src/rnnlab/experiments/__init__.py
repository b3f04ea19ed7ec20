"""Experiments: run configs (TOML), and later sweeps, executors and the results store."""

from rnnlab.experiments.config import ConfigError, RunConfig, build, load_config

__all__ = ["ConfigError", "RunConfig", "build", "load_config"]
