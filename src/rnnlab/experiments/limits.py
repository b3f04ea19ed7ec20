"""The resource budget of a run: its memory, estimated from the config's sizes, checked
before anything is allocated, trained or written.

`prepared.build` calls `check_inputs` before it builds the task (charlm's text is read in
full, so its file is bounded first) and `check_budget` before it builds the model, draws
the validation set or takes a step. A task's constructor only checks its parameters (its
validation set is drawn on first use), so the task's own sizes (D, K, T, val_size) are
exact; the rest comes from the config. Every `prepare` (`rnnlab run` and `train`, a sweep's
points in the driver and again in the worker, `diagnose`, `sample`) passes through them.

The estimate, in bytes, is an upper bound, 1.1–2× the peak memory measured on runs from
H = 64 to 4096 (f: the dtype's size; G gate blocks of H units, L layers, n_s state parts
(2 for the LSTM's h, c), C·H numbers in a step's cache; T steps, B batch, V validation
sequences, P probe sequences, J of them for Jacobians, K outputs, D inputs):

    data         the validation set, T·V·(D + K + 1)·f (ids as int64), and charlm's text
                 (TEXT_BYTES per byte of the file: its decoded, code-point and id arrays)
    params       N = G·H·(D + H + 2) + (L − 1)·G·H·(2H + 2) + K·(H + 1) numbers, and
                 L·M·H·(H + D) for a cell's output map (M: its matrices, the LRU's 2), held
                 PARAM_COPIES times (params, grads, clipped grads, the update, new params,
                 optimiser moments, a checkpoint's buffer)
    step         one BPTT step, T·B·((F + R)·H + 6K + D + K + 1)·f, where per layer the
                 forward pass holds F = L·(G + n_s + C + O + 1) (U x + b, states, cache,
                 the output map's O arrays forward and back, a step's temporaries; 2G for
                 token ids) and BPTT R = L·(n_s + G + 1) (δ's, ∂L/∂(U x + b), the gradient
                 from above; GRU's ∂L/∂(W h) another G)
    evaluation   the forward pass over the validation set, T·V·(F·H + K)·f, and its
                 float64 metrics, 3·T·V·K·8
    diagnostics  a step and the lag profile's second pass over the probe (2 steps at B = P),
                 the B × B Gram matrices 4·T·P²·8, the Jacobian products 5·J·S²·8
                 (S = n_s·H), and the spectra of the recurrent W, 4·G·H²·8
    history      HISTORY_NUMBER bytes per number the run keeps in memory: a record per step
                 (one norm per parameter) and per diagnosis (δ norms, lag profile, Jacobian
                 products, singular values and eigenvalues per layer)

    total = data + params + step + max(evaluation, diagnostics) + history + INTERPRETER

(the step's trace is still alive while the run evaluates or diagnoses). The limit is 80 %
of this machine's memory (its physical memory, or its cgroup's limit if lower), or what
RNNLAB_MEMORY_LIMIT says ("8GiB", "500MB", a number of bytes; "none" switches it off).
The limit is about the machine, not the run, so it is read from the environment (as
RNNLAB_NUM_THREADS is) rather than from the config: it never changes a run's numbers or id.
Runs that run at once (--workers) each get the whole limit.

An error names the setting that costs the most (the one whose default would shrink the
estimate most), its value, the estimate and its largest parts, the limit, and the largest
value that would fit with the rest of the config:

    model.hidden_size: got 30000; the run would need ~521 GiB (diagnostics 383 GiB, params
    134 GiB), over the 8 GiB memory limit (RNNLAB_MEMORY_LIMIT=8GiB); expected
    hidden_size <= 2673 with the rest of this config
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from rnnlab.engine.cells import cell_type
from rnnlab.experiments.config import ConfigError, ModelConfig, RunConfig
from rnnlab.tasks.base import names as task_names
from rnnlab.tasks.base import task_class
from rnnlab.train.config import DIAGNOSES_PER_RUN, DiagnosticsConfig, TrainConfig

if TYPE_CHECKING:
    from rnnlab.tasks.base import Task

MEMORY_LIMIT_ENV = "RNNLAB_MEMORY_LIMIT"
MACHINE_FRACTION = 0.8  # of the machine's memory: the rest for the OS and what else runs
TEXT_BYTES = 32  # per byte of a text file: bytes, str, UTF-32 codes, int64 ids, temporaries
PARAM_COPIES = 10
HISTORY_NUMBER = 64  # a float in a list or dict: the object, its slot, its JSON on saving
INTERPRETER = 128 << 20  # Python, numpy and rnnlab themselves (60 MiB measured)


# --- the limit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """The memory a run may use, in bytes (None: no limit), and where the number came from."""

    bytes: int | None
    source: str


def machine_memory() -> int | None:
    """This machine's memory in bytes: physical memory, or the cgroup's limit if lower
    (a container's); None where it cannot be read."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            sizes.append(int(text))  # "max" (no limit) is not a number
    return min(sizes) if sizes else None


_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}  # fmt: skip


def parse_size(text: str, argument: str = MEMORY_LIMIT_ENV) -> int | None:
    """'8GiB', '500 MB', '1.5e9' (bytes) as bytes; 'none' as None (no limit)."""
    expected = "expected a size such as 8GiB, 500MB or a number of bytes, or none"
    if text.strip().lower() == "none":
        return None
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"{argument}: got {text!r}; {expected}")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise ConfigError(f"{argument}: got {text!r}; {expected} (at least 1 byte)")
    return int(value)


def memory_limit() -> Limit:
    """RNNLAB_MEMORY_LIMIT if set, else 80 % of machine_memory() (no limit if unknown)."""
    text = os.environ.get(MEMORY_LIMIT_ENV)
    if text is not None:
        return Limit(parse_size(text), f"{MEMORY_LIMIT_ENV}={text.strip()}")
    total = machine_memory()
    if total is None:
        return Limit(None, "this machine's memory is unknown")
    return Limit(
        int(total * MACHINE_FRACTION),
        f"{MACHINE_FRACTION:.0%} of this machine's {size(total)}; {MEMORY_LIMIT_ENV} sets another",
    )


def size(n: int) -> str:
    """Bytes for a reader: 512 MiB, 7.2 GiB, 54 GiB, 3.1e+12 TiB (any int, however large)."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale or unit == "KiB":
            if n >= scale << 40:  # beyond float's comfort: say the order of magnitude
                exponent = math.log10(n) - math.log10(scale)
                return f"{10 ** (exponent % 1):.1f}e+{int(exponent)} {unit}"
            value = n / scale
            return f"{value:.2g} {unit}" if value < 10 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


# --- the sizes a run allocates by -------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """What a run's memory grows with (see the module docstring for the letters)."""

    H: int
    L: int
    G: int
    n_s: int
    C: int  # a step's cache, in units of H
    n_out: int  # (T, B, H) arrays the output map holds per layer (0: it hands on h itself)
    out_matrices: int  # its H × (H + D) matrices, at most
    dah: bool  # whether ∂L/∂(W h) is an array of its own (GRU)
    D: int
    K: int
    T: int
    V: int
    B: int
    P: int
    J: int
    f: int
    ids: bool
    mse: bool
    steps: int
    every: int | None
    text: int  # bytes of a text file the task reads (charlm), 0 otherwise

    def diagnoses(self) -> int:
        cadence = max(1, self.steps // DIAGNOSES_PER_RUN) if self.every is None else self.every
        return 0 if cadence == 0 else self.steps // cadence + 2  # step 0, the end, a stop


def estimate(s: Sizes) -> dict[str, int]:
    """The run's memory in bytes, by part (see the module docstring); Python ints, exact
    however large the sizes are."""
    f, H, L, G, n_s, D, K, T = s.f, s.H, s.L, s.G, s.n_s, s.D, s.K, s.T
    P, J = min(s.P, s.V), min(s.J, s.P, s.V)
    x_bytes = 8 if s.ids else D * f
    y_bytes = K * f if s.mse else 8
    # per sequence and step, in units of H: U x + b (twice, for token ids, a gather then a
    # sum), the states, the cache and one step's temporaries; BPTT adds the δ's,
    # ∂L/∂(U x + b) (and ∂L/∂(W h) if separate) and the gradient from above
    forward = L * ((2 if s.ids else 1) * G + n_s + s.C + s.n_out + 1)
    backward = L * (n_s + G * (2 if s.dah else 1) + 1)

    def step(batch: int) -> int:
        return T * batch * (((forward + backward) * H + 6 * K) * f + x_bytes + y_bytes + f)

    params = G * H * (D + H + 2) + (L - 1) * G * H * (2 * H + 2) + K * (H + 1)
    params += L * s.out_matrices * H * (H + D)  # the output map's own, bounded above
    evaluation = T * s.V * ((forward * H + K) * f + 3 * K * 8)
    S = n_s * H
    diagnostics = 2 * step(P) + 4 * T * P * P * 8 + 5 * J * S * S * 8 + 4 * G * H * H * 8
    if s.diagnoses() == 0:
        diagnostics = 0
    per_step = 6 + 4 * L + 2  # loss, lr, norms, ratios, and a norm per parameter
    per_diagnosis = L * T * (n_s + 4) + L * J * (T + 1) + L * (G + 3) * H
    history = s.steps * per_step + s.diagnoses() * per_diagnosis
    # evaluating and diagnosing take turns, each while the last step's trace is alive
    later = ("evaluation", evaluation)
    if diagnostics > evaluation:
        later = ("diagnostics", diagnostics)
    return {
        "validation set": T * s.V * (x_bytes + y_bytes + f),
        "text": s.text * TEXT_BYTES,
        "params": params * f * PARAM_COPIES,
        "a training step": step(s.B),
        later[0]: later[1],
        "history": history * HISTORY_NUMBER,
        "Python": INTERPRETER,
    }


def _default(cls: type, name: str) -> Any:
    return cls.model_fields[name].default  # type: ignore[attr-defined]


def sizes(config: RunConfig, task: Task) -> Sizes:
    """The sizes of a config whose task is built (its parameters checked, nothing drawn)."""
    cell = cell_type(config.model.cell)
    return Sizes(
        H=config.model.hidden_size,
        L=config.model.num_layers,
        G=len(cell.gate_names),
        n_s=len(cell.state_names),
        # a cache holds at most one block of G·H (the gated cells' gate values) and H for
        # each of its other fields
        C=len(cell.gate_names) + len(cell.Cache._fields) - 1,
        n_out=cell.output_arrays,
        out_matrices=cell.output_matrices,
        dah=cell.separate_dah,
        D=task.input_size,
        K=task.output_size,
        T=task.length,
        V=task.val_size,
        B=config.train.batch_size,
        P=config.diagnostics.probe_size,
        J=config.diagnostics.jacobians,
        f=task.dtype.itemsize,
        ids=task.input_ids,
        mse=task.loss == "mse",
        steps=config.train.steps,
        every=config.diagnostics.every,
        text=text_bytes(config),
    )


# The settings an error can name, each with the Sizes field it sets; their defaults are the
# schema's (and the task's own, for task parameters).
_SETTINGS: dict[str, tuple[str, Callable[[RunConfig], Any]]] = {
    "model.hidden_size": ("H", lambda c: _default(ModelConfig, "hidden_size")),
    "model.num_layers": ("L", lambda c: _default(ModelConfig, "num_layers")),
    "task.T": ("T", lambda c: _task_default(c, "T")),
    "task.val_size": ("V", lambda c: _task_default(c, "val_size")),
    "train.batch_size": ("B", lambda c: _default(TrainConfig, "batch_size")),
    "train.steps": ("steps", lambda c: _default(TrainConfig, "steps")),
    "diagnostics.every": ("every", lambda c: _default(DiagnosticsConfig, "every")),
    "diagnostics.probe_size": ("P", lambda c: _default(DiagnosticsConfig, "probe_size")),
    "diagnostics.jacobians": ("J", lambda c: _default(DiagnosticsConfig, "jacobians")),
}


def _task_default(config: RunConfig, name: str) -> Any:
    parameter = inspect.signature(task_class(config.task.name)).parameters.get(name)
    return None if parameter is None else parameter.default


def _value(config: RunConfig, setting: str) -> Any:
    section, name = setting.split(".")
    if section == "task":
        return config.task_params.get(name, _task_default(config, name))
    return getattr(getattr(config, section), name)


def _total(s: Sizes, **changes: Any) -> int:
    """The whole estimate, with some sizes changed."""
    return sum(estimate(dataclasses.replace(s, **changes)).values())


def check_budget(config: RunConfig, task: Task, limit: Limit | None = None) -> dict[str, int]:
    """The run's estimated memory by part; a one-line ConfigError if it is over the limit
    (default: memory_limit()), naming the setting that costs most."""
    limit = memory_limit() if limit is None else limit
    s = sizes(config, task)
    parts = estimate(s)
    total = sum(parts.values())
    if limit.bytes is None or total <= limit.bytes:
        return parts
    setting, field = _culprit(config, s)
    shown = sorted(((v, k) for k, v in parts.items() if v >= total // 10), reverse=True)[:3]
    detail = ", ".join(f"{k} {size(v)}" for v, k in shown)
    message = (
        f"{setting}: got {_value(config, setting)!r}; the run would need ~{size(total)} "
        f"({detail}), over the {size(limit.bytes)} memory limit ({limit.source})"
    )
    name = setting.split(".")[1]
    if field == "every":
        message += f"; expected fewer diagnoses ({name} larger, or 0 for none)"
    else:
        offset = getattr(s, field) - _value(config, setting)  # copy's length is T + 20
        fits = _largest_fitting(s, field, limit.bytes)
        if fits is not None and fits - offset >= (0 if field == "J" else 1):
            message += f"; expected {name} <= {fits - offset} with the rest of this config"
    raise ConfigError(message)


def _culprit(config: RunConfig, s: Sizes) -> tuple[str, str]:
    """The setting whose default would shrink the estimate most, and its Sizes field."""
    best: tuple[int, str, str] | None = None
    total_now = _total(s)
    for setting, (field, default) in _SETTINGS.items():
        value, base = _value(config, setting), default(config)
        if field == "every":  # fewer diagnoses: every larger, or the default (ten a run)
            if value is None or value == 0:
                continue
        elif not isinstance(value, int) or not isinstance(base, int) or value <= base:
            continue
        offset = getattr(s, field) - value  # the task's length beyond its T (copy: + 20)
        total = _total(s, **{field: base + offset if base else base})
        if total < (best[0] if best is not None else total_now):
            best = (total, setting, field)
    if best is None:  # nothing above its default
        return "model.hidden_size", "H"
    return best[1], best[2]


def _largest_fitting(s: Sizes, field: str, limit: int) -> int | None:
    """The largest value of `field` that keeps the estimate within `limit` (the others as
    they are), or None if even 1 does not fit or the field is not a size."""
    if field == "every":
        return None
    value = getattr(s, field)
    low, high = (0 if field == "J" else 1), value
    if _total(s, **{field: low}) > limit:
        return None
    while low < high:  # the estimate grows with every size: bisect
        middle = (low + high + 1) // 2
        if _total(s, **{field: middle}) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


# --- files a task reads -------------------------------------------------------------------


def _reads_a_file(config: RunConfig) -> bool:
    name = config.task.name
    return name in task_names() and "path" in inspect.signature(task_class(name)).parameters


def text_bytes(config: RunConfig) -> int:
    """The size of the text file the task reads in full (charlm's `path`), 0 for none."""
    if not _reads_a_file(config):
        return 0
    path = config.task_params.get("path")
    if path is None:
        return _packaged_text()
    if not isinstance(path, str):
        return 0  # the task says what is wrong with it
    try:
        return os.stat(path).st_size
    except OSError:
        return 0  # missing or unreadable: the task says so


@cache
def _packaged_text() -> int:
    return len((resources.files("rnnlab.tasks") / "data" / "tinyshakespeare.txt").read_bytes())


def check_inputs(config: RunConfig, limit: Limit | None = None) -> None:
    """Before a task reads a file in full: it must be a regular file (not /dev/zero, a pipe
    or a device, which never end or block) and its arrays must fit in the limit."""
    if not _reads_a_file(config):
        return
    path = config.task_params.get("path")
    if not isinstance(path, str):
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # the task names the problem (no such file, permission denied)
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigError(f"task.path: got {path!r}, {what}; expected a UTF-8 text file")
    limit = memory_limit() if limit is None else limit
    need = text_bytes(config) * TEXT_BYTES + INTERPRETER
    if limit.bytes is not None and need > limit.bytes:
        raise ConfigError(
            f"task.path: got {path!r} ({size(text_bytes(config))}); reading it would need "
            f"~{size(need)}, over the {size(limit.bytes)} memory limit ({limit.source}); "
            f"expected a text under {size((limit.bytes - INTERPRETER) // TEXT_BYTES)}"
        )
