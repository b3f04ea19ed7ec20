"""The engine's BLAS runs on one thread.

Every product in a step is small (the recurrence: B × H by H × G, 2·T times per step) or
modest (the T·B-row projections). OpenBLAS threads cost more to wake than they save there,
and on a busy machine they spin for a scheduler slice at every call: measured here, an LSTM
step (T=100, B=32, H=128) took 440 ms with the default threads under load and 120 ms with
one. Parallelism belongs a level up: sweeps run one process per core.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@cache
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread(fn: F) -> F:
    """Run `fn` with BLAS limited to one thread (restored afterwards; ~10 µs per call)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _controller().limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
