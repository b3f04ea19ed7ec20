"""First oracle: BPTT gradients against float64 central differences, for every parameter,
h0 and X; every cell and nonlinearity; 1–3 layers; three losses; T >= 6."""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.engine.activations import DPHI
from rnnlab.engine.gradcheck import check_gradients, numerical_grad, relative_error
from rnnlab.tasks import get

from conftest import CELLS, engine_loss, make_model, make_problem, preactivations

TOL = 1e-6
EPS = 3e-3  # sixth-order stencil: truncation ~EPS⁶, round-off ~1e-16·|L|/EPS


def _problem(cell, nonlinearity, layers, loss, seed, **init):
    """A problem whose ReLU pre-activations all stay > 0.02 from the kink (0), so a finite
    difference never straddles it; other cells take the first seed."""
    for attempt in range(200):
        rng = np.random.default_rng(1000 * seed + attempt)
        model = make_model(
            cell,
            nonlinearity,
            input_size=3,
            hidden_size=4,
            output_size=3,
            num_layers=layers,
            dtype="float64",
            seed=int(rng.integers(1 << 30)),
            **init,
        )
        X, Y, mask, h0 = make_problem(rng, model, T=6, B=2, loss=loss)
        if nonlinearity != "relu":
            return model, X, Y, mask, h0
        if min(np.abs(a).min() for a in preactivations(model, X, h0)) > 0.02:
            return model, X, Y, mask, h0
    raise RuntimeError("no ReLU problem away from the kink")  # pragma: no cover


@pytest.mark.parametrize("loss", ["ce_all", "ce_last", "mse"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize(("cell", "nonlinearity"), CELLS)
def test_bptt_matches_finite_differences(cell, nonlinearity, layers, loss):
    model, X, Y, mask, h0 = _problem(cell, nonlinearity, layers, loss, seed=layers)
    errors = check_gradients(model, X, Y, loss=engine_loss(loss), mask=mask, h0=h0, eps=EPS)
    expected = set(model.params) | {"h0", "X"} | ({"c0"} if cell == "lstm" else set())
    assert set(errors) == expected
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize(("nonlinearity", "scale"), [("tanh", 2.0), ("sigmoid", 4.0)])
def test_saturated_preactivations(nonlinearity, scale):
    """Large weights push |a| into the flat tails of tanh/σ, where φ' is tiny."""
    model, X, Y, mask, h0 = _problem(
        "rnn", nonlinearity, 2, "ce_all", seed=7, init="normal", init_scale=scale
    )
    h = np.concatenate([lt.h[1:] for lt in model.loss_and_grads(X, Y, h0=h0).trace.layers])
    dphi = DPHI[nonlinearity](h) / (1.0 if nonlinearity == "tanh" else 0.25)
    assert np.mean(dphi < 0.05) > 0.3  # the case really is saturated
    # steep tails have large high derivatives: a smaller step keeps truncation down
    errors = check_gradients(model, X, Y, mask=mask, h0=h0, eps=1e-3)
    assert max(errors.values()) <= TOL


def test_saturated_lstm_and_gru():
    for cell in ("lstm", "gru"):
        model, X, Y, mask, h0 = _problem(
            cell, None, 2, "mse", seed=3, init="normal", init_scale=2.0
        )
        errors = check_gradients(model, X, Y, loss="mse", mask=mask, h0=h0, eps=1e-3)
        assert max(errors.values()) <= TOL, cell


def test_token_id_inputs():
    """Token ids index columns of U; their gradient is a scatter-add."""
    rng = np.random.default_rng(0)
    for cell, nl in CELLS[::2] + CELLS[4:]:
        model = make_model(
            cell, nl, input_size=5, hidden_size=4, output_size=5, num_layers=2, dtype="float64"
        )
        X = rng.integers(0, 5, (7, 3))
        Y = rng.integers(0, 5, (7, 3))
        errors = check_gradients(model, X, Y, eps=EPS)
        assert "X" not in errors
        assert max(errors.values()) <= TOL


def test_numerical_grad_of_a_known_function():
    A = np.array([[0.3, -1.2], [2.0, 0.5]])
    g = numerical_grad(lambda: float(np.sum(np.sin(A) * A)), A)
    np.testing.assert_allclose(g, np.cos(A) * A + np.sin(A), rtol=1e-10)
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 2e-6])) == pytest.approx(
        1e-6, rel=1e-3
    )


def test_numerical_grad_of_a_strided_view_sees_its_perturbations():
    """A batch slice X[:, :4] is not contiguous: the perturbations must reach it (a flat
    copy would give a zero gradient and a relative error of 1)."""
    base = np.random.default_rng(0).standard_normal((5, 8, 2))
    A = base[:, :4]
    assert not A.flags.c_contiguous
    g = numerical_grad(lambda: float(np.sum(np.sin(A) * A)), A)
    np.testing.assert_allclose(g, np.cos(A) * A + np.sin(A), rtol=1e-10)
    np.testing.assert_array_equal(A, base[:, :4])  # restored exactly


def test_check_gradients_on_a_batch_slice():
    task = get("adding", T=12, dtype="float64")
    X, Y, mask = task.batch(np.random.default_rng(0), 8)
    model = rnnlab.RNN(input_size=2, hidden_size=6, output_size=1, dtype="float64", seed=0)
    errors = check_gradients(model, X[:, :3], Y[:, :3], loss="mse", mask=mask[:, :3])
    assert max(errors.values()) <= TOL
