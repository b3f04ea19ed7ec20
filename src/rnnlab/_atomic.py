"""Files rnnlab writes and reads: atomic writes that refuse what they must not replace, and
bounded reads of the files that decide what is read and allocated.

Writing. Checkpoints, histories, reports, report figures and exports all write through
atomic_write (DESIGN: a temp file in the same folder, fsync, os.replace), so a crash, even
SIGKILL, loses nothing written before it: a reader sees the old file or the whole new one.
The writer refuses, with a one-line FileError naming the path:
- a target that is not a regular file (a folder, a device such as /dev/stdout, a FIFO, a
  socket), or a symbolic link to nothing or a link loop; a link to a regular file is
  followed, and the file it names is replaced (the link stays);
- a results store's own files (runs.db and its -wal, -shm and -journal, runs.lock, in a
  folder holding runs.db) and any SQLite database: nothing rnnlab writes this way is one.
A temp file is `.<name>.<32 hex digits>.tmp`, locked (flock) while it is written; a writer
killed meanwhile leaves it behind, unlocked, and the next write into that folder removes it
(a live writer's temp file, locked, is left alone).

`output_path` checks a file the user names for rnnlab to write (`export --csv`, `report
--out`) before any work is done: the rules above, plus a folder that exists, and never a
run folder's own files (its checkpoints and history.json).

Reading. read_file reads a regular file of at most a given size, opened without blocking (a
FIFO would block an open for reading) and never following it past its size: /dev/zero, a
FIFO or a folder is refused before a byte is read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import uuid
from pathlib import Path

# the store's layout, which the writer protects (rnnlab.experiments.store uses these names)
DB_NAME = "runs.db"
LOCK_NAME = "runs.lock"
RUNS_DIR = "runs"
STORE_FILES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal", LOCK_NAME)
# a run folder's own files, written by training only (rnnlab.train)
RUN_FILES = ("last.safetensors", "best.safetensors", "history.json")
SQLITE_MAGIC = b"SQLite format 3\x00"

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


class FileError(OSError, ValueError):
    """A file rnnlab refuses to write or read, or cannot: one line naming it. An OSError, so
    code that tolerates an unwritable folder still does, and a ValueError, so the CLI reports
    it as bad input (one line, exit code 2)."""

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


def kind_of(mode: int) -> str:
    """What a file of this st_mode is, as a noun phrase ("a FIFO (named pipe)")."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def size_text(n: int) -> str:
    """A byte count in words: 512 bytes, 1.5 MiB, 2 GiB."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return f"{n} bytes"


def _why_not_regular(path: Path) -> str | None:
    """Why `path` is no file to replace or read (a clause), or None if it is a regular file
    or does not exist."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a symbolic link to nothing" if os.path.islink(path) else None
    except OSError as err:  # ELOOP, EACCES, ENOTDIR, ENAMETOOLONG
        return "a symbolic link loop" if _is_loop(err) else (err.strerror or str(err)).lower()
    return None if stat.S_ISREG(mode) else f"{kind_of(mode)}, not a regular file"


def _is_loop(err: OSError) -> bool:
    return err.errno == errno.ELOOP


def _is_store_file(path: Path) -> bool:
    if path.name in STORE_FILES and (path.parent / DB_NAME).exists():
        return True
    try:  # a regular file (checked first); O_NONBLOCK should it have become a FIFO since
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.pread(fd, len(SQLITE_MAGIC), 0) == SQLITE_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def _target(path: Path) -> Path:
    """The file to replace for `path` (a link followed to the file it names); FileError if
    it is one the writer must not replace."""
    if why := _why_not_regular(path):
        raise FileError(f"{path}: {why}; expected a regular file to replace, or a new one")
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if _is_store_file(target) or _is_store_file(path):
        raise FileError(
            f"{path}: a results store's own file (its SQLite database, journal or lock); "
            "expected a file outside the store's runs.db and runs.lock"
        )
    return target


def atomic_write(path: str | os.PathLike[str], blob: bytes) -> None:
    """Write `blob` to `path` so that `path` is either the old file or the whole new one.

    FileError (one line) if `path` is no file to replace (see the module) or its folder
    cannot be written."""
    path = Path(path)
    target = _target(path)
    _remove_stale(target)
    tmp, fd = _temp_file(path, target)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, FileError):
            raise FileError(f"{path}: cannot write it ({err.strerror or err})") from None
        raise
    _fsync_dir(target.parent)  # makes the rename itself durable


def _temp_file(path: Path, target: Path) -> tuple[Path, int]:
    """A new temp file beside `target`, open for writing and locked until it is closed (a
    temp file no one holds locked is a dead writer's)."""
    for _ in range(3):
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as err:
            raise FileError(
                f"{path}: cannot write in {str(target.parent)!r} ({err.strerror or err}); "
                "expected a file in a folder this process may write"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # another writer of this file may have removed it as a dead writer's before the
            # lock was taken: then take a new one
            if os.stat(tmp, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return tmp, fd
        except OSError:
            pass
        os.close(fd)
    raise FileError(f"{path}: cannot write it (its temp files keep disappearing)")


_TEMP = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")  # the writer's temp files, of any target


def _remove_stale(target: Path) -> None:
    """Remove the temp files in `target`'s folder that writers killed mid-write left behind:
    those no live writer holds locked."""
    try:
        names = [n for n in os.listdir(target.parent) if _TEMP.fullmatch(n)]
    except OSError:
        return  # the write itself reports the folder
    for name in names:
        stale = target.parent / name
        try:
            fd = os.open(stale, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # still the file we locked (a writer may have renamed it into place meanwhile)
            if os.stat(stale, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                os.unlink(stale)
        except OSError:
            pass  # locked: its writer is alive
        finally:
            os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def output_path(argument: str, value: str | os.PathLike[str]) -> Path:
    """`value` as a file for rnnlab to write, checked before any work is done; a FileError
    naming `argument`, the value and what is allowed, if it is no such file."""
    text = os.fspath(value)
    path = Path(text)
    allowed = "expected a file in an existing folder, outside the store's own files"
    if not text.strip():
        raise FileError(f"{argument}: got {text!r}, an empty path; {allowed}")
    if path.is_dir():
        raise FileError(f"{argument}: got {text!r}, a folder; {allowed}")
    if why := _why_not_regular(path):
        raise FileError(f"{argument}: got {text!r}, {why}; {allowed}")
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise FileError(f"{argument}: got {text!r}, in no existing folder; {allowed}")
    if _is_store_file(target):
        raise FileError(f"{argument}: got {text!r}, a results store's own file; {allowed}")
    if target.name in RUN_FILES and any((target.parent / n).exists() for n in RUN_FILES):
        raise FileError(f"{argument}: got {text!r}, a run folder's own file; {allowed}")
    if not os.access(target.parent, os.W_OK):
        raise FileError(
            f"{argument}: got {text!r}, in a folder this process may not write; {allowed}"
        )
    return path


def read_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """All the bytes of the regular file `path`, which holds at most `limit` of them.

    FileError otherwise, its message the reason alone, to follow "got PATH, " in the
    caller's message: "no such file or directory", "a FIFO (named pipe), not a regular
    file", "3 GiB, over the limit of 256 MiB"."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        why = "a symbolic link loop" if _is_loop(err) else (err.strerror or str(err)).lower()
        if isinstance(err, FileNotFoundError) and os.path.islink(path):
            why = "a symbolic link to nothing"
        raise FileError(why) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileError(f"{kind_of(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise FileError(f"{size_text(st.st_size)}, over the limit of {size_text(limit)}")
        chunks, left = [], limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 24))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except FileError:
        raise
    except OSError as err:
        raise FileError((err.strerror or str(err)).lower()) from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while read
        raise FileError(f"over {size_text(limit)}, the limit")
    return data
