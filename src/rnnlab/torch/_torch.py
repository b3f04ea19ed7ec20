"""The one place the bridge imports torch, with a clear message when it is missing."""

from __future__ import annotations

from types import ModuleType


def import_torch() -> ModuleType:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rnnlab.torch needs PyTorch; install it with: pip install 'rnnlab[torch]'"
        ) from err
    return torch
