"""How many BLAS threads the engine's matrix products use.

The per-step products of the recurrence (B × H by H × G, 2·T of them per step) run on one
thread: on a busy machine each multi-threaded call can wait a scheduler slice for its
partner. Measured here, 2 threads for them made a whole step 1.5× as slow with both cores
busy and 3.7–8× at load 4–5, for at best 1.3× as fast on idle cores.

The few large products over all T·B rows (input projection, readout, weight gradients) are
where threads pay: `matmul` runs them on `get_num_threads()` threads, by default the cores
this process may use, as in torch (RNNLAB_NUM_THREADS, documented in README, sets it for the
command line). Measured here: 2 threads halve a 3200 × 128 × 512 product on idle cores and
cost ~30 % on fully loaded ones. Sweeps run one process per core and set 1.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from rnnlab.checks import check_int

F = TypeVar("F", bound=Callable[..., Any])

ENV = "RNNLAB_NUM_THREADS"
# each thread gets at least this many multiply-adds (~25 µs on one core): with less, a
# thread costs more to wake than it saves
_MIN_MACS_PER_THREAD = 1 << 20

_num_threads: int | None = None


def _controller() -> Any:
    # every BLAS loaded so far: scipy (the expRNN's expm) brings its own OpenBLAS, loaded
    # when first imported, so the controller is rebuilt when the set of modules grows
    return _controller_for(len(sys.modules))


@functools.lru_cache(maxsize=1)
def _controller_for(modules: int) -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def _default_threads() -> int:
    value = os.environ.get(ENV)
    if value is not None:
        if not (value.isdigit() and int(value) >= 1):
            raise ValueError(f"{ENV}: got {value!r}; expected an integer >= 1")
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def get_num_threads() -> int:
    """Threads for the engine's large products: set_num_threads, else $RNNLAB_NUM_THREADS,
    else the cores this process may use."""
    return _num_threads if _num_threads is not None else _default_threads()


def set_num_threads(n: int) -> None:
    """Use n BLAS threads for the engine's large products (the per-step ones always use 1)."""
    global _num_threads
    _num_threads = check_int("num_threads", n, 1)


@contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Within the block, use n threads for the engine's large products and BLAS's own
    default (threadpoolctl) as well; both are restored afterwards."""
    global _num_threads
    previous = _num_threads
    set_num_threads(n)
    try:
        with _controller().limit(limits=n):
            yield
    finally:
        _num_threads = previous


def one_blas_thread(fn: F) -> F:
    """Run `fn` with BLAS limited to one thread (restored afterwards; ~10 µs per call)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _controller().limit(limits=1):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for 2-D a, b, on up to get_num_threads() BLAS threads as its size warrants."""
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    threads = min(get_num_threads(), macs // _MIN_MACS_PER_THREAD)
    if threads <= 1:
        return a @ b
    with _controller().limit(limits=threads):
        return a @ b


def sum_outer(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Σ over all leading rows of dy xᵀ: (m, n) from dy (…, m) and x (…, n), one GEMM (a
    weight's gradient summed over every step and sequence)."""
    return matmul(dy.reshape(-1, dy.shape[-1]).T, x.reshape(-1, x.shape[-1]))


def rows(A: np.ndarray, M: np.ndarray) -> np.ndarray:
    """A (…, n) @ M (n, m) as one 2-D product over all the leading rows (a 3-D matmul
    would run one small product per leading index)."""
    return matmul(A.reshape(-1, A.shape[-1]), M).reshape(A.shape[:-1] + (M.shape[1],))
