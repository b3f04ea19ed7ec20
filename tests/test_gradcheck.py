"""First oracle: BPTT gradients against float64 central differences, for every parameter,
h0 and X; every cell and nonlinearity; 1–3 layers; three losses; T >= 6.

One layer: every element of every gradient by its own finite difference. Two and three
layers: per gradient, the derivative along two random unit directions R̂ (six losses each,
not six per element), against ⟨g, R̂⟩: an error e in g shows as ⟨e, R̂⟩ ≈ ‖e‖/√n, so a
tolerance of 1e-8·‖g‖ still catches any error above ~1e-7 of the gradient's norm, and a
layer-to-layer error cannot hide, since every element moves in every direction."""

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
# |⟨g, R̂⟩ − ∂L/∂R̂| / max(‖g‖, 1e-4): for a tiny gradient an absolute 1e-12, as
# check_gradients' floor gives per element
DIRECTIONAL_TOL = 1e-8
# a step along R̂ moves many entries at once: a smaller ε keeps every ReLU input (≥ 0.02
# from the kink) on its side; truncation ~ε⁶ stays negligible, round-off ~1e-13
DIRECTIONAL_EPS = 1e-3


def directional_errors(
    model, X, Y, loss="cross_entropy", mask=None, h0=None, eps=DIRECTIONAL_EPS, seed=0
):
    """Per gradient (params, h0 parts, X when not ids): the worst over two random unit
    directions R̂ of |⟨g, R̂⟩ − (sixth-order difference of L along R̂)| / max(‖g‖, 1e-4)."""
    rng = np.random.default_rng(seed)
    if h0 is None:  # as check_gradients: zeros, so that ∂L/∂h0 is checked too
        zeros = np.zeros((model.num_layers, X.shape[1], model.hidden_size))
        h0 = (zeros, zeros.copy()) if len(model.cell.state_names) == 2 else zeros
    result = model.loss_and_grads(X, Y, loss=loss, mask=mask, h0=h0, input_grad=True)

    def f() -> float:
        return model.loss(X, Y, loss=loss, mask=mask, h0=h0)

    targets = [(k, v, result.grads[k]) for k, v in model.params.items()]
    parts = h0 if isinstance(h0, tuple) else (h0,)
    dparts = result.dh0 if isinstance(result.dh0, tuple) else (result.dh0,)
    targets += list(zip(("h0", "c0"), parts, dparts, strict=False))
    if result.trace.dX is not None:
        targets.append(("X", X, result.trace.dX))
    errors = {}
    for name, A, g in targets:
        worst = 0.0
        for _ in range(2):
            R = rng.standard_normal(A.shape)
            R /= np.linalg.norm(R)
            A0 = A.copy()
            values = []
            for step in (-3, -2, -1, 1, 2, 3):
                A[...] = A0 + step * eps * R
                values.append(f())
            A[...] = A0
            numeric = np.array([-1, 9, -45, 45, -9, 1]) / 60 @ np.array(values) / eps
            worst = max(worst, abs(float(np.sum(g * R)) - numeric) / max(np.linalg.norm(g), 1e-4))
        errors[name] = worst
    return errors


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
@pytest.mark.parametrize(("cell", "nonlinearity"), CELLS)
def test_bptt_matches_finite_differences(cell, nonlinearity, loss):
    """One layer, every element of every gradient."""
    model, X, Y, mask, h0 = _problem(cell, nonlinearity, 1, loss, seed=1)
    errors = check_gradients(model, X, Y, loss=engine_loss(loss), mask=mask, h0=h0, eps=EPS)
    expected = set(model.params) | {"h0", "X"} | ({"c0"} if cell == "lstm" else set())
    assert set(errors) == expected
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize("loss", ["ce_all", "ce_last", "mse"])
@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize(("cell", "nonlinearity"), CELLS)
def test_deeper_stacks_match_directional_derivatives(cell, nonlinearity, layers, loss):
    """Two and three layers, every gradient along random directions."""
    model, X, Y, mask, h0 = _problem(cell, nonlinearity, layers, loss, seed=layers)
    errors = directional_errors(model, X, Y, loss=engine_loss(loss), mask=mask, h0=h0)
    expected = set(model.params) | {"h0", "X"} | ({"c0"} if cell == "lstm" else set())
    assert set(errors) == expected
    worst = max(errors, key=errors.get)
    assert errors[worst] <= DIRECTIONAL_TOL, f"{worst}: error {errors[worst]:.2e}"


def test_the_directional_check_catches_a_one_percent_error_deep_in_the_stack(monkeypatch):
    """Its negative control: layer 0's ∂L/∂W of a 3-layer LSTM 1 % too large must fail it."""
    model, X, Y, mask, h0 = _problem("lstm", None, 3, "ce_all", seed=3)
    honest = model.loss_and_grads

    def off(*args, **kwargs):
        result = honest(*args, **kwargs)
        result.grads["W_0"] *= 1.01
        return result

    monkeypatch.setattr(model, "loss_and_grads", off)
    errors = directional_errors(model, X, Y, mask=mask, h0=h0)
    assert errors["W_0"] > 1e3 * DIRECTIONAL_TOL
    assert max(v for k, v in errors.items() if k != "W_0") <= DIRECTIONAL_TOL


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
    """Token ids index columns of U; their gradient is a scatter-add: every element for one
    layer, along random directions for two."""
    rng = np.random.default_rng(0)
    for cell, nl in CELLS[::2] + CELLS[4:]:
        for layers, check, tol in ((1, check_gradients, TOL), (2, directional_errors, None)):
            model = make_model(
                cell, nl, input_size=5, hidden_size=4, output_size=5, num_layers=layers,
                dtype="float64",
            )  # fmt: skip
            X = rng.integers(0, 5, (7, 3))
            Y = rng.integers(0, 5, (7, 3))
            errors = check(model, X, Y)
            assert "X" not in errors and "U_0" in errors
            assert max(errors.values()) <= (tol or DIRECTIONAL_TOL), (cell, layers)


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
