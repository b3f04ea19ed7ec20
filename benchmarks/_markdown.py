"""BENCHMARKS.md holds one '## ' section per benchmark script; each script rewrites its own.

Besides replace_section, the pieces every script's section footer shares: the machine
(cores(), load_average(), now(), versions()), the load warning and the regenerate command.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rnnlab._atomic import atomic_write

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
TITLE = (
    "# Benchmarks\n\nEach section is written by the script it names; ratios are measured "
    "side by side in one run.\n\n"
)


def replace_section(path: Path, section: str) -> None:
    """Put `section` (from its '## ' heading) in the markdown file, replacing an earlier
    version of it and leaving every other section as it is (byte for byte). Sections are
    separated by one blank line."""
    text = path.read_text(encoding="utf-8") if path.exists() else TITLE
    heading = section.splitlines()[0]
    section = section.rstrip("\n") + "\n"
    match = re.search(f"^{re.escape(heading)}$", text, flags=re.MULTILINE)  # the whole line
    if match:
        begin = match.start()
        end = text.find("\n## ", match.end())
        text = text[:begin] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write(path, text.encode("utf-8"))  # a crash never leaves half a file


def add_write_options(parser: argparse.ArgumentParser) -> None:
    """--write, and --file for where to (default BENCHMARKS.md)."""
    parser.add_argument(
        "--write", action="store_true", help="also rewrite this script's BENCHMARKS.md section"
    )
    parser.add_argument(
        "--file",
        type=Path,
        default=BENCHMARKS_MD,
        metavar="PATH",
        help="the markdown file --write updates (default: the repository's BENCHMARKS.md)",
    )


# set in the environment, these change the threads a run gets, so its command repeats them
THREAD_VARIABLES = ("RNNLAB_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def regenerate_command(script: str, argv: Sequence[str]) -> str:
    """The command that repeats this run and writes its section: the thread-count variables
    set in the environment, `python benchmarks/<script>`, the run's own arguments but --write
    and --file, then --write."""
    env = [f"{v}={shlex.quote(os.environ[v])}" for v in THREAD_VARIABLES if v in os.environ]
    args, skip = [], False
    for a in argv:  # --file says where this run wrote, not how to repeat it
        if skip or a == "--write" or a.startswith("--file="):
            skip = False
            continue
        skip = a == "--file"
        if not skip:
            args.append(shlex.quote(a))
    return " ".join([*env, "python", f"benchmarks/{script}", *args, "--write"])


def cores() -> int:
    """The cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def now() -> str:
    """Local date and time, with the time zone: '2026-11-27 13:57 UTC'."""
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def versions(*modules: str) -> str:
    """'numpy 2.4.6, torch 2.13.0+cpu, Python 3.11.7' for the named (imported) modules."""
    import importlib

    found = [f"{m} {importlib.import_module(m).__version__}" for m in modules]
    return ", ".join([*found, f"Python {platform.python_version()}"])


def overloaded(load: Sequence[float], cores: int) -> bool:
    """Whether the 1-minute load average, sampled during a run, exceeded the cores plus the
    benchmark's own process: other jobs competed for the cores."""
    return max(load) > cores + 1


def load_sentence(load: Sequence[float]) -> str:
    """'1-minute load average 0.7 at the start, 1.0 at the end.' from (start, end)."""
    return f"1-minute load average {load[0]:.1f} at the start, {load[-1]:.1f} at the end."


def warning(cores: int, also: str = "") -> str:
    """The paragraph a footer carries when overloaded(); `also` adds the script's own reasons
    (', or ...')."""
    return (
        "**Warning: other jobs loaded the machine during this run (1-minute load average "
        f"above {cores + 1}, its {cores} cores plus this benchmark's own{also}); treat these "
        "numbers as unreliable.**\n\n"
    )


def footer(
    res: dict[str, Any], command: str, setting: str, *, busy: bool | None = None, also: str = ""
) -> str:
    """A section's footer: when and where it was measured (res's date, cores and load),
    `setting` (versions, threads), the warning when the machine was busy (by default: the
    load average above the cores; `also` names the script's own reasons) and the command
    that regenerates it."""
    busy = overloaded(res["load"], res["cores"]) if busy is None else busy
    return (
        f"Measured {res['date']} on {res['cores']} cores; {setting}. "
        + load_sentence(res["load"])
        + "\n\n"
        + (warning(res["cores"], also) if busy else "")
        + f"Regenerate: `{command}`\n"
    )


def threads_setting(res: dict[str, Any], note: str) -> str:
    """A footer's setting: versions, and rnnlab's thread count with what it applies to."""
    return f"{res['versions']}; rnnlab.get_num_threads() = {res['rnnlab_threads']} ({note})"


def publish(
    args: argparse.Namespace,
    script: str,
    argv: Sequence[str] | None,
    intro: str,
    results: Callable[[str], str],
) -> None:
    """Print a run's results, `results(command)` (verdict, table, footer), and with --write
    put its section, `intro` and the same text, in args.file."""
    command = regenerate_command(script, sys.argv[1:] if argv is None else argv)
    text = results(command)
    print()
    print(text)
    if args.write:
        replace_section(args.file, intro + text)
        print(f"wrote {args.file}")


def value_range(values: Sequence[float], unit: str, digits: int = 1) -> str:
    """'3.1 %' for one value (or equal ones), '3.1–3.3 %' for several, '-0.4 to 3.3 %' when
    the lowest is negative."""
    lo, hi = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    if lo == hi:
        return f"{lo} {unit}"
    return f"{lo}{' to ' if min(values) < 0 else '–'}{hi} {unit}"


def join(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
