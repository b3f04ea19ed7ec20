"""Engine behaviour beyond the gradient oracles: float32, initialisers, state, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.engine.init import spectral_radius

from conftest import CELLS, make_model


@pytest.mark.parametrize(("cell", "nonlinearity"), CELLS)
def test_float32_forward_agrees_with_float64(cell, nonlinearity):
    m64 = make_model(
        cell,
        nonlinearity,
        input_size=4,
        hidden_size=16,
        output_size=3,
        num_layers=2,
        dtype="float64",
        seed=0,
    )
    m32 = make_model(
        cell,
        nonlinearity,
        input_size=4,
        hidden_size=16,
        output_size=3,
        num_layers=2,
        dtype="float32",
        seed=0,
    )
    X = np.random.default_rng(1).standard_normal((20, 5, 4))
    o64, _ = m64.forward(X)
    o32, _ = m32.forward(X.astype(np.float32))
    assert o32.dtype == np.float32
    assert np.abs(o32 - o64).max() / np.abs(o64).max() <= 1e-5


def test_same_seed_same_params_and_rng_alternative():
    a = rnnlab.LSTM(input_size=2, hidden_size=3, output_size=1, seed=5)
    b = rnnlab.LSTM(input_size=2, hidden_size=3, output_size=1, rng=np.random.default_rng(5))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_pytorch_default_init_range():
    m = rnnlab.GRU(input_size=3, hidden_size=25, output_size=2, dtype="float64", seed=0)
    for k, v in m.params.items():
        assert np.abs(v).max() <= 1 / 5, k  # U(±1/√H)
        assert np.abs(v).max() > 0.15, k  # and really spread over it


def test_identity_orthogonal_and_spectral_radius():
    irnn = rnnlab.RNN(
        input_size=2,
        hidden_size=6,
        output_size=1,
        nonlinearity="relu",
        init="identity",
        dtype="float64",
    )
    np.testing.assert_array_equal(irnn.params["W_0"], np.eye(6))
    assert not irnn.params["b_0"].any()
    orth = rnnlab.LSTM(
        input_size=2, hidden_size=6, output_size=1, init="orthogonal", dtype="float64"
    )
    for block in np.split(orth.params["W_0"], 4):
        np.testing.assert_allclose(block @ block.T, np.eye(6), atol=1e-12)
    for init in ("pytorch", "glorot", "normal", "orthogonal", "identity"):
        m = rnnlab.GRU(
            input_size=2,
            hidden_size=8,
            output_size=1,
            init=init,
            spectral_radius=1.5,
            dtype="float64",
            seed=3,
        )
        for block in np.split(m.params["W_0"], 3):
            assert spectral_radius(block) == pytest.approx(1.5, rel=1e-10), init


def test_forget_bias_sets_the_f_block_only():
    m = rnnlab.LSTM(input_size=2, hidden_size=4, output_size=1, forget_bias=1.0, init="glorot")
    np.testing.assert_array_equal(m.params["b_0"][4:8], 1.0)
    assert not m.params["b_0"][:4].any() and not m.params["b_0"][8:].any()


def test_final_state_continues_a_sequence():
    """Running 10 steps, then 5 more from the final state, equals running 15 at once."""
    for cell, nl in CELLS:
        m = make_model(
            cell, nl, input_size=3, hidden_size=4, output_size=2, num_layers=2, dtype="float64"
        )
        X = np.random.default_rng(0).standard_normal((15, 2, 3))
        o_all, s_all = m.forward(X)
        o1, s1 = m.forward(X[:10])
        o2, s2 = m.forward(X[10:], s1)
        np.testing.assert_allclose(np.concatenate([o1, o2]), o_all, rtol=1e-13, atol=1e-14)
        for a, b in zip(
            s2 if isinstance(s2, tuple) else (s2,),
            s_all if isinstance(s_all, tuple) else (s_all,),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_trace_holds_states_and_deltas():
    """trace.delta[t] = ∂L/∂h_t; with the loss on the last step only, δ_T = Vᵀ(ŷ_T − y_T)/B."""
    m = rnnlab.RNN(input_size=2, hidden_size=3, output_size=4, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 2, 2)), rng.integers(0, 4, (6, 2))
    mask = np.zeros((6, 2))
    mask[-1] = 1
    res = m.loss_and_grads(X, Y, mask=mask)
    layer = res.trace.layers[0]
    assert layer.h.shape == layer.delta.shape == (7, 2, 3)
    o = res.trace.outputs[-1]
    p = np.exp(o - o.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[np.arange(2), Y[-1]] -= 1
    np.testing.assert_allclose(layer.delta[-1], p @ m.params["V"] / 2, rtol=1e-12)
    np.testing.assert_array_equal(layer.delta[0], res.dh0[0])


def _model(**kw):
    return rnnlab.RNN(**{"input_size": 2, "hidden_size": 3, "output_size": 2} | kw)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: _model(nonlinearity="gelu"), r"nonlinearity: got 'gelu'; expected one of tanh"),
        (lambda: _model(init="he"), r"init: got 'he'; expected one of pytorch"),
        (lambda: _model(dtype="float16"), r"dtype: got 'float16'"),
        (lambda: _model(hidden_size=0), r"hidden_size: got 0; expected a positive integer"),
        (lambda: _model(seed=1, rng=np.random.default_rng()), r"seed, rng: got both"),
        (lambda: _model(forget_bias=1.0), r"forget_bias: .*only an LSTM"),
        (
            lambda: _model().forward(np.zeros((4, 2), dtype=np.float32)),
            r"X: got shape \(4, 2\) of float32; expected \(T, B, 2\) floats or \(T, B\) integer",
        ),
        (
            lambda: _model().forward(np.zeros((4, 2, 3), dtype=np.float32)),
            r"X: got shape \(4, 2, 3\) of float32; expected \(T, B, 2\)",
        ),
        (
            lambda: _model().forward(np.zeros((4, 2, 2))),
            r"X: got dtype float64; expected float32 \(the model's dtype\)",
        ),
        (
            lambda: _model().forward(np.full((4, 2, 2), np.nan, dtype=np.float32)),
            r"X: got a non-finite value nan at index \(0, 0, 0\)",
        ),
        (
            lambda: _model().forward(np.array([[0, 1], [2, 1]])),
            r"X: got token id 2; expected 0 <= id < 2 \(the vocabulary size\)",
        ),
        (lambda: _model().forward(np.array([[0, -1]])), r"X: got token id -1"),
        (
            lambda: _model().forward(
                np.zeros((4, 2, 2), np.float32), np.zeros((2, 2, 3), np.float32)
            ),
            r"h0: got \(2, 2, 3\); expected \(1, 2, 3\)",
        ),
        (
            lambda: _model().loss_and_grads(
                np.zeros((4, 2, 2), np.float32), np.zeros((4, 2), int), loss="nll"
            ),
            r"loss: got 'nll'",
        ),
        (
            lambda: _model().loss_and_grads(np.zeros((4, 2, 2), np.float32), np.full((4, 2), 5)),
            r"Y: got class id 5; expected 0 <= id < 2",
        ),
        (
            lambda: _model().loss_and_grads(
                np.zeros((4, 2, 2), np.float32), np.zeros((4, 2), int), mask=np.ones(4)
            ),
            r"mask: got \(4,\); expected",
        ),
        (
            lambda: _model().loss_and_grads(
                np.zeros((4, 2, 2), np.float32), np.zeros((4, 2, 2)), loss="mse"
            ),
            r"Y: got dtype float64; expected float32",
        ),
    ],
)
def test_bad_input_gets_a_one_line_error(call, message):
    with pytest.raises(ValueError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_lstm_state_must_be_a_pair():
    m = rnnlab.LSTM(input_size=2, hidden_size=3, output_size=1)
    with pytest.raises(ValueError, match=r"h0: got ndarray; expected a tuple \(h0, c0\)"):
        m.forward(np.zeros((3, 1, 2), np.float32), np.zeros((1, 1, 3), np.float32))


@pytest.mark.parametrize(("cell", "nonlinearity"), CELLS)
def test_backprop_over_stacked_caches_equals_bptt(cell, nonlinearity):
    """The diagnostics' backward pass (local derivatives for all steps at once, caches
    stacked, a subset of the batch) gives bptt's δ's and dax for those sequences."""
    from rnnlab.engine.sequence import backprop, bptt

    model = make_model(
        cell, nonlinearity, input_size=3, hidden_size=8, output_size=2, dtype="float64", seed=0
    )
    rng = np.random.default_rng(2)
    X = rng.standard_normal((12, 5, 3))
    res = model.loss_and_grads(X, rng.integers(0, 2, size=(12, 5)))
    layer, p = res.trace.layers[0], model.layer_params(0)
    dh_above = rng.standard_normal((12, 5, 8))
    dax, _ = bptt(model.cell, p, layer, dh_above)
    index = slice(1, 4)
    caches = layer.caches[0]._make(  # the cell's cache type, its arrays (T, n, ·)
        np.stack([c[k][index] for c in layer.caches]) for k in range(len(layer.caches[0]))
    )
    deltas, dax_sub = backprop(model.cell, p, caches, dh_above[:, index])
    assert len(deltas) == len(layer.deltas)
    for got, want in zip(deltas, layer.deltas, strict=True):
        np.testing.assert_allclose(got, want[:, index], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dax_sub, dax[:, index], rtol=1e-12, atol=1e-15)
