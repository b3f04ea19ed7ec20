"""Clipping at the threshold: exact norms, nothing changed at or under it, no hidden NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnlab.train import clip, global_norm, param_norms

SHAPES = {"U": (4, 3), "W": (4, 4), "b": (4,)}


def _grads(scale: float, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in SHAPES.items()}


def _norm(grads) -> float:
    return float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values())))


grads_strategy = st.dictionaries(
    st.sampled_from(["U", "W", "b", "V"]),
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
        elements=st.floats(-1e6, 1e6, allow_nan=False),
    ),
    min_size=1,
)


def test_global_norm_and_param_norms():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]]), "c": np.zeros((0, 2))}
    assert global_norm(g) == 5.0
    assert param_norms(g) == {"a": 3.0, "b": 4.0, "c": 0.0}


def test_norms_accumulate_in_float64():
    # 1e20² overflows float32; in float64 it is fine
    g = {"W": np.full((3,), 1e20, dtype=np.float32)}
    assert global_norm(g) == pytest.approx(math.sqrt(3) * 1e20, rel=1e-6)
    # 1e-30² underflows float32 to 0
    assert global_norm({"W": np.full((4,), 1e-30, dtype=np.float32)}) == pytest.approx(2e-30)


def test_huge_but_finite_float64_gradients_still_clip():
    g = {"W": np.array([3e200, 4e200]), "b": np.array([0.0])}
    assert global_norm(g) == pytest.approx(5e200, rel=1e-15)
    clipped, norm = clip(g, "norm", 1.0)
    assert norm == pytest.approx(5e200, rel=1e-15)
    assert global_norm(clipped) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("c", [1e-3, 0.5, 1.0, 7.0])
def test_norm_mode_clips_to_exactly_c(c):
    grads = _grads(10.0)
    pre = _norm(grads)
    assert pre > c
    clipped, norm = clip(grads, "norm", c)
    assert norm == pytest.approx(pre, rel=1e-15)
    assert abs(global_norm(clipped) - c) <= 1e-12
    # direction is kept: one common factor c/‖g‖
    for k in grads:
        np.testing.assert_allclose(clipped[k], grads[k] * (c / pre), rtol=1e-15)


def test_norm_mode_float32_keeps_dtype():
    clipped, _ = clip(_grads(10.0, dtype=np.float32), "norm", 1.0)
    assert all(g.dtype == np.float32 for g in clipped.values())
    assert global_norm(clipped) == pytest.approx(1.0, rel=1e-6)


def test_at_or_under_threshold_nothing_changes():
    grads = _grads(0.1)
    pre = global_norm(grads)
    for c in (pre, 2 * pre):
        clipped, norm = clip(grads, "norm", c)
        assert norm == pre
        for k in grads:
            np.testing.assert_array_equal(clipped[k], grads[k])


def test_value_mode_clips_elements():
    g = {"W": np.array([-9.0, -5.0, -1.0, 0.0, 2.0, 5.0, 6.0]), "b": np.array([0.5])}
    clipped, norm = clip(g, "value", 5.0)
    np.testing.assert_array_equal(clipped["W"], [-5.0, -5.0, -1.0, 0.0, 2.0, 5.0, 5.0])
    np.testing.assert_array_equal(clipped["b"], [0.5])
    assert norm == global_norm(g)


def test_none_mode_measures_only():
    grads = _grads(100.0)
    clipped, norm = clip(grads, "none")
    assert norm == global_norm(grads) > 100
    for k in grads:
        np.testing.assert_array_equal(clipped[k], grads[k])


@pytest.mark.parametrize("mode", ["norm", "value", "none"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nonfinite_stays_nonfinite(mode, bad):
    grads = _grads(10.0)
    grads["W"] = grads["W"].copy()
    grads["W"][1, 2] = bad
    before = {k: v.copy() for k, v in grads.items()}
    clipped, norm = clip(grads, mode, 1.0)
    assert math.isnan(norm) if np.isnan(bad) else norm == math.inf
    assert not np.isfinite(clipped["W"][1, 2])
    assert not all(np.all(np.isfinite(g)) for g in clipped.values())
    for k in grads:  # input untouched
        np.testing.assert_array_equal(grads[k], before[k])


def test_nan_beats_inf_in_the_norm():
    g = {"a": np.array([np.inf]), "b": np.array([np.nan])}
    assert math.isnan(global_norm(g))
    assert param_norms(g)["a"] == math.inf


@pytest.mark.parametrize(
    ("mode", "threshold", "word"),
    [
        ("l2", 1.0, "mode"),
        ("norm", 0.0, "threshold"),
        ("value", None, "threshold"),
        ("norm", float("inf"), "threshold"),
        ("value", -1.0, "threshold"),
    ],
)
def test_bad_arguments(mode, threshold, word):
    with pytest.raises(ValueError, match=word):
        clip(_grads(1.0), mode, threshold)


@settings(max_examples=60, deadline=None)
@given(grads=grads_strategy, c=st.floats(1e-3, 1e3))
def test_property_norm_mode(grads, c):
    before = {k: v.copy() for k, v in grads.items()}
    clipped, norm = clip(grads, "norm", c)
    assert norm == pytest.approx(_norm(grads), rel=1e-12, abs=1e-300)
    after = global_norm(clipped)
    if norm > c:
        assert abs(after - c) <= 1e-12 * max(1.0, c)
    else:
        for k in grads:
            np.testing.assert_array_equal(clipped[k], grads[k])
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


@settings(max_examples=60, deadline=None)
@given(grads=grads_strategy, v=st.floats(1e-3, 1e3))
def test_property_value_mode(grads, v):
    clipped, _ = clip(grads, "value", v)
    for k, g in grads.items():
        assert np.all(np.abs(clipped[k]) <= v)
        inside = np.abs(g) <= v
        np.testing.assert_array_equal(clipped[k][inside], g[inside])
        np.testing.assert_array_equal(np.sign(clipped[k]), np.sign(g))
