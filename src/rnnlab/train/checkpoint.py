"""Checkpoints: one safetensors file per save, written atomically, loaded without running code.

Layout of a checkpoint file (safetensors; arrays keep their dtype, bit for bit):

    tensors   params/<name>          each parameter
              opt/<key>              each optimiser-state array (e.g. opt/step, opt/exp_avg/W)
              extra/<key>            the caller's extra arrays (e.g. a carried hidden state)
    metadata  format   "rnnlab.checkpoint"      version  "1"
              step     the training step, decimal
              rng      JSON of the np.random.Generator's bit_generator.state (integers exact;
                       arrays as {"__ndarray__": dtype, "data": [...]})
              config   JSON of the caller's config dict
              sha256   digest of the header (without sha256) and of the data section
              ...      the caller's extra_metadata, under its own keys

Loading is bounded and runs no code: the file must be a regular file (not a FIFO or a
device) whose header is at most MAX_HEADER (1 MiB) bytes, checked before it is parsed;
safetensors' own parser (`safe_open`, memory-mapped) then checks the header's nesting and
offsets. Names, dtypes and shapes are checked against the architecture before any data is
read, and nothing is cast: params and optimiser slots are F32 or F64 (the model's dtype,
when the caller gives the model's params), counters such as opt/step 0-d I64. Metadata JSON
(config, rng) nests at most MAX_DEPTH deep. Then the digest (over the memory-mapped data)
and finiteness. Any problem raises CheckpointError, one line naming the file. The digest
detects corruption, not tampering (anyone can recompute it): a checkpoint's config is
checked like a config file before it decides anything (rnnlab.cli._target.load_trained).
`read_checkpoint_header` reads the header alone: tensor names, dtypes, shapes, step, config.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import mmap
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from rnnlab._atomic import atomic_write, kind_of, size_text
from rnnlab.checks import check_int

__all__ = [
    "Checkpoint",
    "CheckpointDir",
    "CheckpointError",
    "CheckpointHeader",
    "load_checkpoint",
    "read_checkpoint_header",
    "save_checkpoint",
]

FORMAT = "rnnlab.checkpoint"
VERSION = "1"
_RESERVED = ("format", "version", "step", "rng", "config", "sha256")
# Bit generators whose state is plain ints and uint arrays; only these are rebuilt on load.
_BIT_GENERATORS: dict[str, type[np.random.BitGenerator]] = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
    "MT19937": np.random.MT19937,
}
_STATE_DTYPES = ("<u4", "<u8")


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or trusted; the message names the file."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    params: dict[str, np.ndarray]
    opt_state: dict[str, np.ndarray]
    step: int
    rng: np.random.Generator
    config: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)  # the extra_metadata saved
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # the extra_arrays saved


# --- writing ------------------------------------------------------------------------------


def _rng_to_json(rng: np.random.Generator) -> str:
    def encode(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: encode(v) for k, v in obj.items()}
        if isinstance(obj, np.ndarray):
            return {"__ndarray__": obj.dtype.str, "data": obj.tolist()}
        if isinstance(obj, np.integer):
            return int(obj)
        return obj

    return json.dumps(encode(rng.bit_generator.state))


def _digest(header: Mapping[str, Any], data: bytes | memoryview) -> str:
    # Canonical JSON of the header makes the digest independent of key order and padding.
    meta = {k: v for k, v in header.get("__metadata__", {}).items() if k != "sha256"}
    canonical = json.dumps({**header, "__metadata__": meta}, sort_keys=True).encode()
    h = hashlib.sha256(len(canonical).to_bytes(8, "little") + canonical)
    h.update(data)
    return h.hexdigest()


def _split(blob: bytes) -> tuple[dict[str, Any], bytes]:  # bytes safetensors just wrote
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def _encode(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """safetensors bytes with the sha256 digest added to the metadata."""
    # not np.ascontiguousarray: it turns the 0-d step counter into shape (1,)
    arrays = {k: np.require(v, requirements="C") for k, v in tensors.items()}
    header, data = _split(safetensors.numpy.save(arrays, metadata=dict(metadata)))
    # Adding a metadata entry leaves every tensor's data offsets unchanged.
    return safetensors.numpy.save(arrays, metadata={**metadata, "sha256": _digest(header, data)})


def _nonfinite(a: np.ndarray) -> str | None:
    """What a float array holds that is not finite ("2 NaN and 0 inf values"), or None."""
    if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
        return f"{int(np.isnan(a).sum())} NaN and {int(np.isinf(a).sum())} inf values"
    return None


def _check_arrays(path: Path, group: str, arrays: Mapping[str, np.ndarray]) -> None:
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise CheckpointError(
                f"{path}: {group}[{name!r}] is a {type(a).__name__}; expected a numpy array"
            )
        if bad := _nonfinite(a):
            raise CheckpointError(
                f"{path}: {group}[{name!r}] has {bad}; non-finite arrays are never saved"
            )


def save_checkpoint(
    path: str | os.PathLike[str],
    params: Mapping[str, np.ndarray],
    opt_state: Mapping[str, np.ndarray],
    step: int,
    rng: np.random.Generator,
    config: Mapping[str, Any],
    extra_metadata: Mapping[str, str] | None = None,
    extra_arrays: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write a checkpoint atomically; refuse (CheckpointError) non-finite arrays.

    `config` must be JSON-serialisable (tuples come back as lists). The rng is saved as it
    is now: the loaded Generator continues with the same draws this one would make next.
    """
    path = Path(path)
    _check_arrays(path, "params", params)
    _check_arrays(path, "opt_state", opt_state)
    _check_arrays(path, "extra_arrays", extra_arrays or {})
    try:
        check_int("step", step, 0)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    if not isinstance(rng, np.random.Generator) or (
        type(rng.bit_generator).__name__ not in _BIT_GENERATORS
    ):
        raise CheckpointError(
            f"{path}: rng: got {rng!r}; expected an np.random.Generator over "
            f"{', '.join(_BIT_GENERATORS)}"
        )
    try:
        config_json = json.dumps(dict(config), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: config is not JSON-serialisable ({e})") from None
    extra = dict(extra_metadata or {})
    for key, value in extra.items():
        if key in _RESERVED or not isinstance(key, str) or not isinstance(value, str):
            raise CheckpointError(
                f"{path}: extra_metadata[{key!r}]: got {value!r}; expected str values "
                f"under keys other than {', '.join(_RESERVED)}"
            )
    tensors = {f"params/{k}": v for k, v in params.items()}
    tensors.update({f"opt/{k}": v for k, v in opt_state.items()})
    tensors.update({f"extra/{k}": v for k, v in (extra_arrays or {}).items()})
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "step": str(int(step)),
        "rng": _rng_to_json(rng),
        "config": config_json,
        **extra,
    }
    atomic_write(path, _encode(tensors, metadata))
    return path


# --- reading ------------------------------------------------------------------------------

MAX_HEADER = 1 << 20  # bytes of JSON header (tensor table and metadata); rnnlab's are ~10 KiB
MAX_DEPTH = 32  # nesting of a JSON metadata value (config, rng); rnnlab's nest 4 deep
# safetensors dtypes a checkpoint may hold, by group, with the numpy dtype each loads as;
# anything else (F16, BF16, I32, BOOL, ...) is refused, never cast
_FLOATS = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_COUNTER = {"I64": np.dtype("<i8")}
_ALLOWED = {"params": _FLOATS, "opt": _FLOATS, "extra": {**_FLOATS, **_COUNTER}}
_DTYPE_NAMES = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}


@dataclass(frozen=True)
class CheckpointHeader:
    """What a checkpoint's header says, read without its data: each tensor's safetensors
    dtype ("F32") and shape, and the metadata decoded (step, config, the rest)."""

    path: Path
    tensors: dict[str, tuple[str, tuple[int, ...]]]
    step: int
    config: dict[str, Any]
    metadata: dict[str, str]  # the extra_metadata saved


def _rng_from_json(path: Path, text: str) -> np.random.Generator:
    def decode(obj: Any) -> Any:
        if isinstance(obj, dict):
            if "__ndarray__" in obj:
                if obj["__ndarray__"] not in _STATE_DTYPES:
                    raise ValueError(f"array dtype {obj['__ndarray__']!r}")
                return np.array(obj["data"], dtype=np.dtype(obj["__ndarray__"]))
            return {k: decode(v) for k, v in obj.items()}
        return obj

    state = decode(_json(path, "rng", text))
    bit_generator = _BIT_GENERATORS[state["bit_generator"]]()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _json(path: Path, key: str, text: Any) -> Any:
    """A metadata value's JSON, no deeper than MAX_DEPTH."""
    if not isinstance(text, str):
        raise CheckpointError(f"{path}: corrupted metadata: {key} is not a string")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as err:
        why = "nested too deep" if isinstance(err, RecursionError) else str(err)
        raise CheckpointError(f"{path}: corrupted metadata: {key} is not JSON ({why})") from None
    stack, deepest = [(value, 1)], 1
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            raise CheckpointError(
                f"{path}: corrupted metadata: {key} nests deeper than {MAX_DEPTH} levels"
            )
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return value


def _open(path: Path) -> tuple[int, os.stat_result, int]:
    """The checkpoint file opened for reading: (fd, its stat, the header's length), checked
    to be a regular file whose header is within MAX_HEADER and the file."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        why = err.strerror or str(err)
        if isinstance(err, FileNotFoundError) and path.is_symlink():
            why = f"a symbolic link to nothing ({os.readlink(path)})"
        elif err.errno == errno.ELOOP:
            why = "a symbolic link loop"
        raise CheckpointError(f"{path}: cannot read ({why})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(
                f"{path}: {kind_of(st.st_mode)}, not a regular file; expected a checkpoint file"
            )
        prefix = os.pread(fd, 8, 0)
        if len(prefix) < 8:
            raise CheckpointError(f"{path}: truncated: {st.st_size} bytes, not even a header")
        n = int.from_bytes(prefix, "little")
        if n > MAX_HEADER:
            raise CheckpointError(
                f"{path}: corrupted or not a checkpoint: its header claims {n} bytes, over "
                f"the limit of {size_text(MAX_HEADER)}"
            )
        if 8 + n > st.st_size:
            raise CheckpointError(
                f"{path}: truncated or corrupted: header claims {n} bytes, file has {st.st_size}"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, st, n


def _header(path: Path, fd: int, n: int) -> dict[str, Any]:
    """The header, once safetensors' own parser has accepted the file (it bounds the JSON's
    nesting, checks every offset and that the data covers the file exactly)."""
    try:
        with safetensors.safe_open(path, framework="numpy"):
            pass
    except (safetensors.SafetensorError, OSError, ValueError) as err:
        first_line = (str(err).splitlines() or [type(err).__name__])[0]
        if "incomplete metadata" in first_line or "MetadataIncompleteBuffer" in first_line:
            first_line = "truncated or padded: the data does not cover the file as its header says"
        raise CheckpointError(f"{path}: corrupted: {first_line}") from None
    try:
        header = json.loads(os.pread(fd, n, 8))
    except (ValueError, RecursionError) as err:  # accepted above: only if it changed since
        raise CheckpointError(f"{path}: corrupted header: not valid JSON ({err})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnlab checkpoint (no format={FORMAT!r} header)")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')!r}; expected {VERSION!r}"
        )
    return header


def _decode(path: Path, header: dict[str, Any]) -> CheckpointHeader:
    """The header's tensor table and metadata, checked: names in their groups, dtypes
    rnnlab writes, step, config and rng decodable."""
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        group, _, key = name.partition("/")
        if group not in _ALLOWED or not key:
            raise CheckpointError(
                f"{path}: unexpected tensor {name!r}; expected params/<name>, opt/<key> "
                "and extra/<key>"
            )
        dtype, shape = info["dtype"], tuple(int(d) for d in info["shape"])
        allowed = _COUNTER if group == "opt" and "/" not in key else _ALLOWED[group]
        if dtype not in allowed:
            raise CheckpointError(
                f"{path}: {name} is stored as {dtype}; expected {' or '.join(allowed)} "
                "(a checkpoint is never cast on loading)"
            )
        tensors[name] = (dtype, shape)
    meta = header["__metadata__"]
    step_text = meta.get("step")
    if not isinstance(step_text, str) or not step_text.isdecimal() or len(step_text) > 18:
        shown = (
            repr(step_text) if len(str(step_text)) <= 20 else f"of {len(str(step_text))} characters"
        )
        raise CheckpointError(
            f"{path}: corrupted metadata: step {shown}; expected a decimal integer >= 0 "
            "(at most 18 digits)"
        )
    config = _json(path, "config", meta.get("config"))
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: corrupted metadata: config {config!r:.40} is not a table")
    extra = {k: v for k, v in meta.items() if k not in _RESERVED}
    return CheckpointHeader(path, tensors, int(step_text), config, extra)


def read_checkpoint_header(path: str | os.PathLike[str]) -> CheckpointHeader:
    """A checkpoint's header (tensor names, dtypes and shapes, step, config), read without
    its data: what to check a checkpoint's config with before building what it describes.
    Its digest is not checked (that needs the data; load_checkpoint does it)."""
    path = Path(path)
    fd, _, n = _open(path)
    try:
        return _decode(path, _header(path, fd, n))
    finally:
        os.close(fd)


def load_checkpoint(
    path: str | os.PathLike[str],
    expected_shapes: Mapping[str, tuple[int, ...]] | None = None,
    *,
    params_like: Mapping[str, np.ndarray] | None = None,
    opt_like: Mapping[str, np.ndarray] | None = None,
) -> Checkpoint:
    """Read and verify a checkpoint; raise CheckpointError (one line naming the file) on
    anything wrong. Nothing is cast and no data is read before the header passes.

    Checks, in order: a regular file whose header is within MAX_HEADER bytes and parses
    (safetensors' own parser, which bounds its nesting and checks every offset); tensor
    names and dtypes (params and optimiser slots F32 or F64, counters such as opt/step
    0-d I64); the params have exactly the keys, shapes and dtype of `params_like` (the
    model's params) or the keys and shapes of `expected_shapes`, in one float dtype; the
    optimiser state has exactly the keys, shapes and dtypes of `opt_like` (a fresh
    optimiser state) if given, and every slot `opt/<slot>/<name>` those of params/<name>;
    step, config and rng decode; every float array is finite; the sha256 digest matches
    (over the memory-mapped file); opt/step is in 0..step.
    """
    path = Path(path)
    fd, st, n = _open(path)
    try:
        header = _header(path, fd, n)
        info = _decode(path, header)
        _check_layout(path, info.tensors, expected_shapes, params_like, opt_like)
        meta = header["__metadata__"]
        try:
            rng = _rng_from_json(path, meta.get("rng"))
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise CheckpointError(
                f"{path}: corrupted metadata: rng ({type(e).__name__}: {e})"
            ) from None
        tensors = _tensors(path, info.tensors, st)
        _check_finite(path, tensors)  # first: a NaN is named where the digest would not say
        if meta.get("sha256") != _file_digest(header, fd, 8 + n, st.st_size):
            raise CheckpointError(f"{path}: corrupted: sha256 digest does not match the contents")
    finally:
        os.close(fd)
    groups: dict[str, dict[str, np.ndarray]] = {"params": {}, "opt": {}, "extra": {}}
    for name in sorted(tensors):
        group, _, key = name.partition("/")
        groups[group][key] = tensors[name]
    counter = groups["opt"].get("step")
    if counter is not None and not 0 <= int(counter) <= info.step:
        raise CheckpointError(
            f"{path}: opt/step is {int(counter)}; expected 0 <= opt/step <= {info.step} (the "
            "updates taken, at most the steps done)"
        )
    return Checkpoint(
        path, groups["params"], groups["opt"], info.step, rng, info.config, info.metadata,
        groups["extra"],
    )  # fmt: skip


def _file_digest(header: Mapping[str, Any], fd: int, start: int, size: int) -> str:
    """The digest of a header and the data section of the open file, memory-mapped."""
    if size == start:
        return _digest(header, b"")
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            return _digest(header, view[start:])
        finally:
            view.release()


def _tensors(
    path: Path, table: Mapping[str, tuple[str, tuple[int, ...]]], st: os.stat_result
) -> dict[str, np.ndarray]:
    """Every tensor, copied out of the memory-mapped file in its stored dtype."""
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            now = os.stat(path)
            if (now.st_ino, now.st_dev, now.st_size) != (st.st_ino, st.st_dev, st.st_size):
                raise CheckpointError(
                    f"{path}: replaced while it was read (a run saving it?); read it again"
                )
            tensors = {name: np.array(f.get_tensor(name)) for name in table}
    except (safetensors.SafetensorError, OSError, TypeError) as err:
        first_line = (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path}: corrupted: {first_line}") from None
    for name, (dtype, shape) in table.items():
        a = tensors[name]
        if _dtype_name(a.dtype) != dtype or a.shape != shape:  # what the header said
            raise CheckpointError(f"{path}: {name} reads as {a.dtype}{list(a.shape)}, not {dtype}")
    return tensors


def _check_finite(path: Path, tensors: Mapping[str, np.ndarray]) -> None:
    for name, a in sorted(tensors.items()):
        if bad := _nonfinite(a):
            raise CheckpointError(f"{path}: {name} has {bad}")


def _dtype_name(dtype: np.dtype[Any]) -> str:
    """The safetensors name of a numpy dtype rnnlab stores ("F32"), else numpy's name."""
    return _DTYPE_NAMES.get(np.dtype(dtype), str(dtype))


def _spec(dtype: str, shape: tuple[int, ...]) -> str:
    return f"{dtype}{list(shape)}"


def _check_layout(
    path: Path,
    table: Mapping[str, tuple[str, tuple[int, ...]]],
    expected_shapes: Mapping[str, tuple[int, ...]] | None,
    params_like: Mapping[str, np.ndarray] | None,
    opt_like: Mapping[str, np.ndarray] | None,
) -> None:
    """The tensor table against what the architecture expects, before any data is read."""
    params = {k.partition("/")[2]: v for k, v in table.items() if k.startswith("params/")}
    opt = {k.partition("/")[2]: v for k, v in table.items() if k.startswith("opt/")}
    if params_like is not None:
        expected_shapes = {k: tuple(v.shape) for k, v in params_like.items()}
    if expected_shapes is not None:
        if set(params) != set(expected_shapes):
            missing, extra = set(expected_shapes) - set(params), set(params) - set(expected_shapes)
            what = "; ".join(
                f"{label} {', '.join(sorted(names))}"
                for label, names in (("missing", missing), ("unexpected", extra))
                if names
            )
            raise CheckpointError(
                f"{path}: params {sorted(params)} ({what}); expected {sorted(expected_shapes)}"
            )
        for name, shape in expected_shapes.items():
            if params[name][1] != tuple(shape):
                raise CheckpointError(
                    f"{path}: params/{name} has shape {params[name][1]}; expected {tuple(shape)}"
                )
    if params_like is not None:
        for name, template in params_like.items():
            want = _dtype_name(template.dtype)
            if params[name][0] != want:
                raise CheckpointError(
                    f"{path}: params/{name} is stored as {params[name][0]}; expected {want} "
                    f"(the model's dtype {template.dtype}; a checkpoint is never cast on loading)"
                )
    if len(dtypes := sorted({dtype for dtype, _ in params.values()})) > 1:
        raise CheckpointError(
            f"{path}: params of several dtypes ({', '.join(dtypes)}); expected one"
        )
    if opt_like is not None:
        specs = {k: (_dtype_name(v.dtype), tuple(v.shape)) for k, v in opt_like.items()}
        if set(opt) != set(specs):
            raise CheckpointError(
                f"{path}: optimiser state {sorted(opt)}; expected {sorted(specs)} (this "
                "run's optimiser)"
            )
        for key, spec in specs.items():
            if opt[key] != spec:
                raise CheckpointError(
                    f"{path}: opt/{key} is {_spec(*opt[key])}; expected {_spec(*spec)}"
                )
    for key, (dtype, shape) in opt.items():
        _, _, name = key.partition("/")
        if not name:  # a per-optimiser counter such as opt/step
            if shape != ():
                raise CheckpointError(
                    f"{path}: opt/{key} has shape {shape}; expected a scalar (shape ())"
                )
            continue
        if name not in params:
            raise CheckpointError(f"{path}: opt/{key} belongs to no parameter (no params/{name})")
        if (dtype, shape) != params[name]:
            raise CheckpointError(
                f"{path}: opt/{key} is {_spec(dtype, shape)}; expected "
                f"{_spec(*params[name])} like params/{name}"
            )


# --- a run directory ----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointDir:
    """`last.safetensors` and `best.safetensors` in one run directory.

    The caller decides what "best" is; save_best records the metric as metadata
    `metric` (repr of the float) so that a resumed run can read it back.
    """

    root: Path

    @property
    def last_path(self) -> Path:
        return Path(self.root) / "last.safetensors"

    @property
    def best_path(self) -> Path:
        return Path(self.root) / "best.safetensors"

    def save_last(
        self,
        params: Mapping[str, np.ndarray],
        opt_state: Mapping[str, np.ndarray],
        step: int,
        rng: np.random.Generator,
        config: Mapping[str, Any],
        extra_metadata: Mapping[str, str] | None = None,
        extra_arrays: Mapping[str, np.ndarray] | None = None,
    ) -> Path:
        Path(self.root).mkdir(parents=True, exist_ok=True)
        return save_checkpoint(
            self.last_path, params, opt_state, step, rng, config, extra_metadata, extra_arrays
        )

    def save_best(
        self,
        metric: float,
        params: Mapping[str, np.ndarray],
        opt_state: Mapping[str, np.ndarray],
        step: int,
        rng: np.random.Generator,
        config: Mapping[str, Any],
        extra_metadata: Mapping[str, str] | None = None,
        extra_arrays: Mapping[str, np.ndarray] | None = None,
    ) -> Path:
        if not math.isfinite(metric):
            raise CheckpointError(f"{self.best_path}: metric: got {metric!r}; expected finite")
        Path(self.root).mkdir(parents=True, exist_ok=True)
        extra = {**(extra_metadata or {}), "metric": repr(float(metric))}
        return save_checkpoint(
            self.best_path, params, opt_state, step, rng, config, extra, extra_arrays
        )

    def load_last(
        self,
        expected_shapes: Mapping[str, tuple[int, ...]] | None = None,
        *,
        params_like: Mapping[str, np.ndarray] | None = None,
        opt_like: Mapping[str, np.ndarray] | None = None,
    ) -> Checkpoint | None:
        """The last checkpoint, or None if there is none yet."""
        return _load_if_saved(self.last_path, expected_shapes, params_like, opt_like)

    def load_best(
        self,
        expected_shapes: Mapping[str, tuple[int, ...]] | None = None,
        *,
        params_like: Mapping[str, np.ndarray] | None = None,
        opt_like: Mapping[str, np.ndarray] | None = None,
    ) -> Checkpoint | None:
        """The best checkpoint (its metric in .metadata["metric"]), or None if none yet."""
        return _load_if_saved(self.best_path, expected_shapes, params_like, opt_like)


def _load_if_saved(
    path: Path,
    expected_shapes: Mapping[str, tuple[int, ...]] | None,
    params_like: Mapping[str, np.ndarray] | None,
    opt_like: Mapping[str, np.ndarray] | None,
) -> Checkpoint | None:
    # lexists: a link to nothing or a link loop is an error, not "no checkpoint yet"
    if not os.path.lexists(path):
        return None
    return load_checkpoint(path, expected_shapes, params_like=params_like, opt_like=opt_like)
