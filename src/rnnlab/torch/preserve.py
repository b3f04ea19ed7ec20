"""A diagnostic pass leaves no trace: RNG streams and module buffers are put back as they were.

The pass runs the user's loss_fn once more. Dropout would draw from torch's RNG and BatchNorm
in training mode would update its running statistics, so a monitored training run would
drift from an unmonitored one. Parameters, their .grad and the optimiser are never touched:
the bridge takes gradients with torch.autograd.grad, which accumulates nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from rnnlab.torch._torch import import_torch


@contextmanager
def preserved(model: Any) -> Iterator[None]:
    """Restore on exit (also on an exception) torch's CPU and CUDA RNG states, numpy's and
    Python's global RNG states, and every buffer of `model`."""
    torch = import_torch()
    devices = sorted(
        {t.device.index or 0 for t in (*model.parameters(), *model.buffers()) if t.is_cuda}
    )
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    np_state = np.random.get_state()  # noqa: NPY002 - saved, not used to draw
    py_state = random.getstate()
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
            np.random.set_state(np_state)  # noqa: NPY002
            random.setstate(py_state)
