"""Keep freed memory for reuse instead of returning it to the OS after every step (glibc).

A training step allocates arrays of megabytes (states, caches, δ's: T·B·G floats each) and
frees them at its end. glibc serves such sizes by mmap, or trims them off the heap once
freed, so the next step page-faults them back in: measured here, up to 22,000 faults and
60 ms of system time per step, 10–25 % of it. Raising glibc's mmap and trim thresholds keeps
that memory in the process. It is a process-wide setting, so the library does not make it
on import: rnnlab's own processes (the CLI, sweep workers) call `keep_freed_memory()`, and a
script may call it too, or set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# arrays up to this size come from the heap; larger ones are still mmapped and returned
MMAP_THRESHOLD = 256 << 20
# freed heap memory kept for reuse, up to this much at the top of the heap
TRIM_THRESHOLD = 1 << 30


@cache
def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; False where there is no glibc (a no-op)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
