"""A diagnostics snapshot at rest: its record (nested dicts and lists of numbers, strings,
bools and None, JSON-safe as Diagnosis.to_dict() gives it) as compact JSON text, and back.

Stores of schema version 2 and before kept a snapshot as an .npz archive instead, one array
per leaf path ('flow/lag/profile', 'verdict/remedies/0/name'); read_npz reads one back into
the record it was made from, for the migration to version 3 and for readers of a store that
was not migrated yet (rnnlab.experiments.store). Nothing is pickled either way.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any

import numpy as np

# the most a snapshot may take, at rest and unpacked; a diagnosis of T = 10,000 steps and 3
# layers takes ~5 MB
MAX_BYTES = 64 << 20


def dumps(snapshot: dict[str, Any]) -> str:
    """The snapshot as compact, strict JSON: a non-finite number must be None already."""
    try:
        return json.dumps(snapshot, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"diagnostics: {err}; expected a JSON-safe record (a non-finite number as None)"
        ) from None


def loads(text: str) -> dict[str, Any]:
    """The record of a snapshot's JSON; a ValueError (one line) if it is not one."""
    if len(text) > MAX_BYTES:
        raise ValueError(
            f"diagnostics: a snapshot of {len(text)} characters; expected at most {MAX_BYTES}"
        )
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as err:
        why = "nested too deep" if isinstance(err, RecursionError) else str(err)
        raise ValueError(f"diagnostics: not a readable snapshot (not JSON: {why})") from None
    if not isinstance(record, dict):
        raise ValueError(f"diagnostics: not a readable snapshot (a {type(record).__name__})")
    return record


def read_npz(blob: bytes) -> dict[str, Any]:
    """The record an .npz snapshot was packed from: nested again from the '/'-joined paths,
    numbered levels as lists again, NaN (how a non-finite number was packed) as None again.
    Leaves that were None are not in the archive, so they stay out.

    Bounded: the archive and what it unpacks to are at most MAX_BYTES each, and every array
    holds no more than its member's bytes (a deflate bomb or a forged .npy header is refused
    before it is unpacked)."""
    try:
        arrays = _npz_arrays(blob)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"diagnostics: not a readable .npz snapshot ({err})") from None
    root: dict[str, Any] = {}
    for path, array in arrays.items():
        *parents, last = path.split("/")
        node = root
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = _none_for_nan(array.tolist())

    def lists(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        items = {k: lists(v) for k, v in node.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items

    return dict(lists(root))


def _npz_arrays(blob: bytes) -> dict[str, np.ndarray]:
    if len(blob) > MAX_BYTES:
        raise ValueError(f"{len(blob)} bytes, over the limit of {MAX_BYTES}")
    arrays = {}
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        members = archive.infolist()
        # the sizes the archive declares bound what zipfile unpacks (it stops there)
        unpacked = sum(m.file_size for m in members)
        if unpacked > MAX_BYTES:
            raise ValueError(f"it unpacks to {unpacked} bytes, over the limit of {MAX_BYTES}")
        for member in members:
            if not member.filename.endswith(".npy"):
                raise ValueError(f"member {member.filename!r} is not an .npy array")
            data = archive.read(member)
            npy = io.BytesIO(data)
            version = np.lib.format.read_magic(npy)
            if version not in ((1, 0), (2, 0)):  # what np.savez wrote for rnnlab's arrays
                raise ValueError(f"member {member.filename!r} is .npy version {version}")
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(npy)
            if dtype.hasobject:
                raise ValueError(f"member {member.filename!r} holds Python objects")
            if math.prod(shape) * dtype.itemsize > len(data) - npy.tell():
                raise ValueError(f"member {member.filename!r} claims more than it holds")
            npy.seek(0)
            arrays[member.filename[: -len(".npy")]] = np.lib.format.read_array(
                npy, allow_pickle=False
            )
    return arrays


def _none_for_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_none_for_nan(v) for v in value]
    return value
