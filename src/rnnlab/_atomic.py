"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Checkpoints, histories, reports and exports all write through atomic_write (DESIGN: a temp
file in the same folder, fsync, os.replace), so a crash, even SIGKILL, loses nothing written
before it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


def atomic_write(path: Path, blob: bytes) -> None:
    """Write `blob` to `path` so that `path` is either the old file or the whole new one."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)  # makes the rename itself durable


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
