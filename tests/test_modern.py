"""The modern cells beyond the battery (tests/test_conformance.py runs that on every cell):
expRNN's orthogonality and its Jacobian products of norm 1, and minGRU/minLSTM's parallel
scan against the step loop, to float64 precision."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.diagnostics import weight_spectra
from rnnlab.diagnostics.jacobian import jacobian_products
from rnnlab.engine.cells import make_cell
from rnnlab.engine.model import SequenceModel, build
from rnnlab.engine.sequence import backprop, scan, unroll
from rnnlab.train.optim import make_optimizer


def _model(cell, H=6, D=3, K=2, L=1, seed=0, **kw) -> SequenceModel:
    return SequenceModel(
        cell=cell,
        input_size=D,
        hidden_size=H,
        output_size=K,
        num_layers=L,
        dtype="float64",
        seed=seed,
        **kw,
    )


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


# --- expRNN -------------------------------------------------------------------------------


def test_exprnn_w_stays_orthogonal_through_training_updates():
    rng = np.random.default_rng(0)
    model = _model("exprnn", H=7, L=2)
    opt = make_optimizer("adam")
    state = opt.init(model.params)
    X, Y = rng.standard_normal((12, 4, 3)), rng.integers(0, 2, (12, 4))
    for _ in range(5):
        grads = model.loss_and_grads(X, Y).grads
        for layer in range(2):  # the ignored part of A gets no gradient
            g = grads[f"A_{layer}"]
            np.testing.assert_array_equal(g, np.triu(g, 1))
        params, state = opt.update(model.params, grads, state, lr=0.05)
        model.set_params(model.project(params))
    for layer in range(2):
        W = model.cell.recurrent_matrix(model.layer_params(layer))
        assert np.abs(W.T @ W - np.eye(7)).max() < 1e-12
    for s in weight_spectra(model):
        np.testing.assert_allclose(np.abs(s.eigenvalues), 1, atol=1e-12)
        assert s.spectral_radius == pytest.approx(1, abs=1e-12)
        np.testing.assert_allclose(s.singular_values, 1, atol=1e-12)


@pytest.mark.parametrize("init", ["pytorch", "normal", "orthogonal"])
def test_linear_exprnn_jacobian_products_have_norm_one_at_every_lag(init):
    """J_t = W orthogonal: ‖W^τ‖₂ = 1 for every τ, what the theory says, measured."""
    rng = np.random.default_rng(1)
    model = _model("exprnn", H=8, nonlinearity="identity", init=init, init_scale=0.7)
    T = 60
    X = rng.standard_normal((T, 5, 3))
    trace = model.loss_and_grads(X, rng.integers(0, 2, (T, 5))).trace
    (jp,) = jacobian_products(model, trace, sequences=None)
    assert jp.log_norm.shape == (T + 1, 5)
    np.testing.assert_allclose(np.exp(jp.log_norm), 1.0, rtol=0, atol=1e-12)


def test_exprnn_modrelu_is_its_definition_and_refuses_a_spectral_radius():
    rng = np.random.default_rng(2)
    model = _model("exprnn", H=5, init="normal", init_scale=0.5)
    p = model.layer_params(0)
    p["b_mod"] = rng.uniform(-0.5, 0.5, 5)
    from scipy.linalg import expm

    S = np.triu(p["A"], 1) - np.triu(p["A"], 1).T
    ax, h_prev = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    z = ax + h_prev @ expm(S).T
    (h,), _ = model.cell.step(ax, (h_prev,), model.cell.prepare(p))
    np.testing.assert_allclose(h, np.sign(z) * np.maximum(np.abs(z) + p["b_mod"], 0), rtol=1e-13)
    with pytest.raises(ValueError, match=r"^spectral_radius: got 0.9, but the expRNN"):
        _model("exprnn", spectral_radius=0.9)
    with pytest.raises(ValueError, match=r"^nonlinearity: got 'gelu'"):
        make_cell("exprnn", nonlinearity="gelu")


# --- minGRU and minLSTM: the scan against the loop ------------------------------------------


def _loop_recurrence(a, b, h0):
    h = [h0]
    for t in range(a.shape[0]):
        h.append(a[t] * h[-1] + b[t])
    return np.stack(h)


@pytest.mark.parametrize("T", [1, 5, 64, 65, 200])
def test_scan_solves_the_linear_recurrence_with_any_signs(T):
    rng = np.random.default_rng(T)
    a = rng.uniform(-1.2, 1.2, (T, 3, 4))
    a[T // 2, 0, 0] = 0.0  # a product that is exactly 0 from there on
    b = rng.standard_normal((T, 3, 4))
    h0 = rng.standard_normal((3, 4))
    loop = _loop_recurrence(a, b, h0)
    ours = scan(a, b, h0)
    assert ours.dtype == np.float64 and ours.shape == (T + 1, 3, 4)
    np.testing.assert_allclose(ours, loop, rtol=1e-11, atol=1e-12 * np.abs(loop).max())


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
@pytest.mark.parametrize(("T", "L", "loss"), [(7, 1, "cross_entropy"), (150, 2, "mse")])
def test_scan_and_loop_give_the_same_outputs_and_gradients(name, T, L, loss):
    """To 1e−12 relative in float64, with a signed initial state: outputs, final state,
    every gradient, ∂L/∂h0, ∂L/∂X and every δ_t."""
    rng = np.random.default_rng(3)
    B, D, H, K = 4, 3, 6, 2
    loop = _model(name, H=H, D=D, K=K, L=L, seed=5, init="normal", init_scale=0.8)
    par = build(loop.config | {"scan": True}, seed=5)
    assert par.cell.scan and not loop.cell.scan
    par.set_params(loop.params)
    X = rng.standard_normal((T, B, D))
    Y = rng.standard_normal((T, B, K)) if loss == "mse" else rng.integers(0, K, (T, B))
    h0 = rng.standard_normal((L, B, H))  # both signs
    o1, s1 = loop.forward(X, h0)
    o2, s2 = par.forward(X, h0)
    assert _rel(o2, o1) <= 1e-12 and _rel(s2, s1) <= 1e-12
    r1 = loop.loss_and_grads(X, Y, loss=loss, h0=h0, input_grad=True)
    r2 = par.loss_and_grads(X, Y, loss=loss, h0=h0, input_grad=True)
    assert r2.loss == pytest.approx(r1.loss, rel=1e-12)
    for k, g in r1.grads.items():
        assert _rel(r2.grads[k], g) <= 1e-12, k
    assert _rel(r2.dh0, r1.dh0) <= 1e-12
    assert _rel(r2.trace.dX, r1.trace.dX) <= 1e-12
    for l1, l2 in zip(r1.trace.layers, r2.trace.layers, strict=True):
        assert _rel(l2.h, l1.h) <= 1e-12 and _rel(l2.delta, l1.delta) <= 1e-12
        for c1, c2 in zip(l1.caches, l2.caches, strict=True):  # what the diagnostics read
            for x1, x2 in zip(c1, c2, strict=True):
                np.testing.assert_allclose(x2, x1, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_stacked_backprop_by_scan_matches_the_loop(name):
    rng = np.random.default_rng(4)
    T, n, D, H = 30, 3, 2, 5
    loop = make_cell(name)
    par = make_cell(name, scan=True)
    p = loop.init_layer(rng, D, H, _model(name).scheme)
    ax = rng.standard_normal((T, n, D)) @ p["U"].T + p["b"]
    h0 = (rng.standard_normal((n, H)),)
    dh = rng.standard_normal((T, n, H))
    tr = unroll(loop, p, ax, h0)
    d1, dax1 = backprop(loop, p, loop.stack(tr.caches), dh)
    d2, dax2 = backprop(par, p, par.stack(unroll(par, p, ax, h0).caches), dh)
    assert _rel(d2[0], d1[0]) <= 1e-12 and _rel(dax2, dax1) <= 1e-12


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_gated_linear_jacobian_product_is_the_product_of_the_carries(name):
    """J_t = diag(a_t): ‖Π J‖₂ = max_j Π_t a_{t,j}, to 1e−12, and no spectra."""
    rng = np.random.default_rng(5)
    T = 40
    model = _model(name, H=5, init="normal", init_scale=1.0)
    trace = model.loss_and_grads(rng.standard_normal((T, 3, 3)), rng.integers(0, 2, (T, 3))).trace
    (jp,) = jacobian_products(model, trace, sequences=None)
    a = model.cell.coefficients(model.cell.stack(trace.layers[0].caches))[0]  # (T, 3, 5)
    for tau in range(T + 1):
        expected = np.log(np.prod(a[T - tau :], axis=0).max(axis=-1))  # (3,)
        np.testing.assert_allclose(jp.log_norm[tau], expected, rtol=0, atol=1e-12)
    assert weight_spectra(model) == []
    with pytest.raises(ValueError, match=r"^spectral_radius: got 0.9, but the min"):
        _model(name, spectral_radius=0.9)
    with pytest.raises(ValueError, match=r"^scan: got 'yes'"):
        make_cell(name, scan="yes")
