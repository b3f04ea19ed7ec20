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


def dumps(snapshot: dict[str, Any]) -> str:
    """The snapshot as compact, strict JSON: a non-finite number must be None already."""
    try:
        return json.dumps(snapshot, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"diagnostics: {err}; expected a JSON-safe record (a non-finite number as None)"
        ) from None


def loads(text: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(text)
    return record


def read_npz(blob: bytes) -> dict[str, Any]:
    """The record an .npz snapshot was packed from: nested again from the '/'-joined paths,
    numbered levels as lists again, NaN (how a non-finite number was packed) as None again.
    Leaves that were None are not in the archive, so they stay out."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
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


def _none_for_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_none_for_nan(v) for v in value]
    return value
