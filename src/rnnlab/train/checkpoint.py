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

Loading parses the header itself (so a truncated or garbled file gets a precise message),
then checks names, finiteness, shapes and the digest; any problem raises CheckpointError,
one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from rnnlab._atomic import atomic_write
from rnnlab.checks import check_int

__all__ = [
    "Checkpoint",
    "CheckpointDir",
    "CheckpointError",
    "load_checkpoint",
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


def _digest(header: Mapping[str, Any], data: bytes) -> str:
    # Canonical JSON of the header makes the digest independent of key order and padding.
    meta = {k: v for k, v in header.get("__metadata__", {}).items() if k != "sha256"}
    canonical = json.dumps({**header, "__metadata__": meta}, sort_keys=True).encode()
    h = hashlib.sha256(len(canonical).to_bytes(8, "little") + canonical)
    h.update(data)
    return h.hexdigest()


def _split(blob: bytes) -> tuple[dict[str, Any], bytes]:
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


def _rng_from_json(text: str) -> np.random.Generator:
    def decode(obj: Any) -> Any:
        if isinstance(obj, dict):
            if "__ndarray__" in obj:
                if obj["__ndarray__"] not in _STATE_DTYPES:
                    raise ValueError(f"array dtype {obj['__ndarray__']!r}")
                return np.array(obj["data"], dtype=np.dtype(obj["__ndarray__"]))
            return {k: decode(v) for k, v in obj.items()}
        return obj

    state = decode(json.loads(text))
    bit_generator = _BIT_GENERATORS[state["bit_generator"]]()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _read_header(path: Path, blob: bytes) -> tuple[dict[str, Any], bytes]:
    if len(blob) < 8:
        raise CheckpointError(f"{path}: truncated: {len(blob)} bytes, not even a header")
    n = int.from_bytes(blob[:8], "little")
    if 8 + n > len(blob):
        raise CheckpointError(
            f"{path}: truncated or corrupted: header claims {n} bytes, file has {len(blob)}"
        )
    try:
        header, data = _split(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupted header: not valid JSON ({e})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnlab checkpoint (no format={FORMAT!r} header)")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')!r}; expected {VERSION!r}"
        )
    try:
        needed = max(
            (int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0
        )
    except (TypeError, KeyError, IndexError, ValueError):
        raise CheckpointError(f"{path}: corrupted header: bad data_offsets") from None
    if len(data) < needed:
        raise CheckpointError(
            f"{path}: truncated: data has {len(data)} bytes, the header needs {needed}"
        )
    return header, data


def load_checkpoint(
    path: str | os.PathLike[str],
    expected_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> Checkpoint:
    """Read and verify a checkpoint; raise CheckpointError on anything wrong.

    Checks, in order: the header parses and covers the file; tensor names; every float
    array is finite; params have exactly the keys and shapes of `expected_shapes` (if
    given) and every optimiser slot `opt/<slot>/<name>` has the shape of params/<name>;
    step, config and rng decode; the sha256 digest matches.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    header, data = _read_header(path, blob)
    try:
        tensors = safetensors.numpy.load(blob)
    except (safetensors.SafetensorError, ValueError, TypeError) as e:
        first_line = (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{path}: corrupted: {first_line}") from None

    params: dict[str, np.ndarray] = {}
    opt_state: dict[str, np.ndarray] = {}
    arrays: dict[str, np.ndarray] = {}
    groups = {"params": params, "opt": opt_state, "extra": arrays}
    for name in sorted(tensors):
        group, _, key = name.partition("/")
        if group not in groups or not key:
            raise CheckpointError(
                f"{path}: unexpected tensor {name!r}; expected params/<name>, opt/<key> "
                "and extra/<key>"
            )
        groups[group][key] = tensors[name]
    _check_finite(path, tensors)
    _check_shapes(path, params, opt_state, expected_shapes)

    meta = header["__metadata__"]
    try:
        step = int(meta["step"])
        config = json.loads(meta["config"])
        rng = _rng_from_json(meta["rng"])
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise CheckpointError(f"{path}: corrupted metadata ({type(e).__name__}: {e})") from None
    if step < 0 or not isinstance(config, dict):
        raise CheckpointError(f"{path}: corrupted metadata (step {step}, config {config!r:.40})")
    if meta.get("sha256") != _digest(header, data):
        raise CheckpointError(f"{path}: corrupted: sha256 digest does not match the contents")
    extra = {k: v for k, v in meta.items() if k not in _RESERVED}
    return Checkpoint(path, params, opt_state, step, rng, config, extra, arrays)


def _check_finite(path: Path, tensors: Mapping[str, np.ndarray]) -> None:
    for name, a in sorted(tensors.items()):
        if bad := _nonfinite(a):
            raise CheckpointError(f"{path}: {name} has {bad}")


def _check_shapes(
    path: Path,
    params: Mapping[str, np.ndarray],
    opt_state: Mapping[str, np.ndarray],
    expected_shapes: Mapping[str, tuple[int, ...]] | None,
) -> None:
    if expected_shapes is not None:
        if set(params) != set(expected_shapes):
            raise CheckpointError(
                f"{path}: params {sorted(params)}; expected {sorted(expected_shapes)}"
            )
        for name, shape in expected_shapes.items():
            if params[name].shape != tuple(shape):
                raise CheckpointError(
                    f"{path}: params/{name} has shape {params[name].shape}; expected {tuple(shape)}"
                )
    for key, a in opt_state.items():
        _, _, name = key.partition("/")
        if not name:  # a per-optimiser scalar such as opt/step
            continue
        if name not in params:
            raise CheckpointError(f"{path}: opt/{key} belongs to no parameter (no params/{name})")
        if a.shape != params[name].shape:
            raise CheckpointError(
                f"{path}: opt/{key} has shape {a.shape}; expected {params[name].shape} "
                f"like params/{name}"
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
        self, expected_shapes: Mapping[str, tuple[int, ...]] | None = None
    ) -> Checkpoint | None:
        """The last checkpoint, or None if there is none yet."""
        return _load_if_saved(self.last_path, expected_shapes)

    def load_best(
        self, expected_shapes: Mapping[str, tuple[int, ...]] | None = None
    ) -> Checkpoint | None:
        """The best checkpoint (its metric in .metadata["metric"]), or None if none yet."""
        return _load_if_saved(self.best_path, expected_shapes)


def _load_if_saved(
    path: Path, expected_shapes: Mapping[str, tuple[int, ...]] | None
) -> Checkpoint | None:
    return load_checkpoint(path, expected_shapes) if path.exists() else None
