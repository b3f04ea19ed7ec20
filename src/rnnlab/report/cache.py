"""A store's rendered run sections, kept so that a second report of the same runs is fast.

A finished run never changes, and drawing its six figures is most of a report's cost, so
each run's section is kept in <store>/.report-cache/, named by a hash of everything it is
drawn from: the run's data, the format, and the source of the report and diagnostics
packages (a diagnosis renders its own verdict and lag profile there) and matplotlib's
version (a changed plot redraws). A store that cannot be written is simply not cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from rnnlab._atomic import atomic_write, read_file
from rnnlab.report.data import RunData

FOLDER = ".report-cache"
MAX_SECTION = 64 << 20  # a run's section with its six figures inline is ~1 MiB


@cache
def _code_hash() -> str:
    import matplotlib

    digest = hashlib.sha256(matplotlib.__version__.encode())
    package = Path(__file__).parent.parent
    for source in sorted(
        [*(package / "report").glob("*.py"), *(package / "diagnostics").glob("*.py")]
    ):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def key(run: RunData, *parts: object) -> str:
    """The hash of a run's section: its data, `parts` (format, level) and the code."""
    # the diagnoses as stored (JSON): str() of an array would elide a long one's middle
    data = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)}
    data["diagnostics"] = [s.to_dict() for s in run.diagnostics]
    digest = hashlib.sha256(_code_hash().encode())
    digest.update(json.dumps([data, *parts], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:24]


def section(store: Path, run: RunData, parts: tuple, render: Callable[[], str]) -> str:
    """The cached section of `run` in `store`, or `render()`'s, then kept. Only a run that
    has ended is kept (a running one changes)."""
    if run.status in ("running", "pending"):
        return render()
    folder = store / FOLDER
    path = folder / f"{run.id}-{key(run, *parts)}.html"
    try:  # bounded, and never a FIFO or a device standing in for a section
        return read_file(path, MAX_SECTION).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    text = render()
    try:
        folder.mkdir(exist_ok=True)
        for old in folder.glob(f"{run.id}-*.html"):  # an earlier version of this section
            old.unlink(missing_ok=True)
        atomic_write(path, text.encode("utf-8"))
    except OSError:
        pass  # a read-only store: render every time
    return text
