"""A diagnostics snapshot (nested dicts and lists of numbers and strings, JSON-safe) as the
bytes of an .npz archive, and back: how the results store keeps snapshots, without pickle."""

from __future__ import annotations

import io
import math
import zipfile
from typing import Any

import numpy as np


def _nan_for_none(value: Any) -> Any:
    if value is None:
        return math.nan
    if isinstance(value, list | tuple):
        return [_nan_for_none(v) for v in value]
    return value


def pack_arrays(snapshot: dict[str, Any]) -> bytes:
    """A JSON-safe snapshot (nested dicts and lists) as .npz bytes: one array per leaf path.

    Nested keys join with '/'; a list of numbers, bools or strings becomes one array, a list
    of dicts is numbered ('remedies/0/name'); None leaves are left out, and None inside a
    list of numbers (a non-finite number made JSON-safe) is NaN again. Nothing is pickled."""
    arrays: dict[str, np.ndarray] = {}

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}" if prefix else str(key), item)
        elif isinstance(value, list | tuple) and any(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                walk(f"{prefix}/{i}", item)
        else:
            try:
                array = np.asarray(value)
                if array.dtype == object:  # a non-finite number arrives as None (JSON-safe)
                    array = np.asarray(_nan_for_none(value), dtype=np.float64)
            except (ValueError, TypeError):  # ragged, or strings mixed with numbers
                array = np.empty(0, dtype=object)
            if array.dtype == object:
                raise ValueError(
                    f"diagnostics: {prefix} holds mixed or ragged values; expected numbers, "
                    "bools or strings of one shape"
                )
            arrays[prefix] = array

    walk("", snapshot)
    # np.savez stamps each member with the current time; a fixed stamp makes the same
    # snapshot the same bytes, so stores compare bit for bit
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return buffer.getvalue()


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
