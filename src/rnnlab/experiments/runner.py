"""One run, in a worker: a pure function from a config (JSON) to a result (JSON).

Only strings cross the process boundary (a config in, a result out), so a process pool or
Ray never pickles numpy arrays or our objects, and a float survives the trip bit for bit
(JSON writes repr(float), which reads back exactly; NaN and Infinity included).
"""

from __future__ import annotations

import json
import time
from typing import Any

from rnnlab.engine.blas import num_threads
from rnnlab.engine.memory import keep_freed_memory
from rnnlab.experiments.config import parse
from rnnlab.experiments.prepared import prepare, train


def one_line(err: BaseException) -> str:
    """An exception as one line: its type, then the first line of its message."""
    message = str(err).strip().splitlines()
    return f"{type(err).__name__}: {message[0]}" if message else type(err).__name__


def run_one(config_json: str, run_dir: str, quiet: bool = True) -> str:
    """Build and train the run `config_json` describes; return its result as JSON.

    The config is the driver's, validated there in full: here it is parsed and built once,
    not checked again. Checkpoints go to `run_dir` and training resumes from its last
    checkpoint, so a run cut short by a crash continues where it stopped and ends
    bit-identical to an uninterrupted one. The result holds status (done | diverged |
    failed), error (one line, if failed), steps, evals and diagnostics (History's records),
    final, steps_done, diverged_at, skipped and seconds. An exception becomes a failed result
    rather than escaping, so the driver records it and the other runs go on.
    """
    start = time.perf_counter()
    keep_freed_memory()  # a worker process is ours (see engine/memory.py)
    # One BLAS thread: workers then do not oversubscribe the cores, and a run's numbers do
    # not depend on how many threads the machine it lands on would have used.
    with num_threads(1):
        try:
            run = prepare(parse(json.loads(config_json)))
            history = train(run, run_dir, resume=True, quiet=quiet)
        except Exception as err:  # any failure of this one run is its result
            result: dict[str, Any] = {"status": "failed", "error": one_line(err)}
        else:
            diverged = history.status == "diverged"
            result = {
                "status": history.status,
                "steps": history.steps,
                "evals": history.evals,
                "diagnostics": history.diagnostics,
                "final": {k: v for k, v in history.final_metrics.items() if k != "step"},
                "steps_done": history.diverged_at if diverged else run.config.train.steps,
                "diverged_at": history.diverged_at,
                "skipped": history.skipped,
            }
    result["seconds"] = time.perf_counter() - start
    return json.dumps(result)
