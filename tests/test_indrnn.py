"""IndRNN (Li et al. 2018), the cell added through the registry's door: both gradient
oracles, its step Jacobian, its constraint, and the layers above that read the registry."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.diagnostics import RunInfo, diagnose, remedies, weight_spectra
from rnnlab.diagnostics.jacobian import pascanu_bound
from rnnlab.engine.cells import CELLS, IndRNNCell
from rnnlab.engine.gradcheck import check_gradients, numerical_grad, relative_error
from rnnlab.engine.model import SequenceModel, build
from rnnlab.experiments.config import ConfigError
from rnnlab.experiments.prepared import build as build_run
from rnnlab.experiments.prepared import validate
from rnnlab.tasks import get as get_task
from rnnlab.train import TrainConfig, fit

SHAPES = [  # (T, B, D, H, K, layers, nonlinearity)
    (6, 3, 2, 4, 3, 1, "relu"),
    (5, 2, 3, 5, 2, 2, "tanh"),
    (7, 4, 1, 3, 4, 3, "sigmoid"),
    (4, 2, 2, 6, 1, 2, "identity"),
]


def _model(T, B, D, H, K, L, nonlinearity, seed=0, **kw) -> SequenceModel:
    return SequenceModel(
        cell="indrnn",
        nonlinearity=nonlinearity,
        input_size=D,
        hidden_size=H,
        output_size=K,
        num_layers=L,
        dtype="float64",
        seed=seed,
        **kw,
    )


def _problem(shape, seed):
    T, B, D, H, K, L, nl = shape
    rng = np.random.default_rng(seed)
    model = _model(T, B, D, H, K, L, nl, seed=seed, init="normal", init_scale=0.5)
    # u ∈ ±[0.5, 1.2]: some units grow, some shrink, none is near 0
    for layer in range(L):
        u = rng.uniform(0.5, 1.2, H) * rng.choice([-1.0, 1.0], H)
        model.params[f"u_{layer}"] = u
    X = rng.standard_normal((T, B, D))
    Y = rng.integers(0, K, (T, B))
    h0 = rng.standard_normal((L, B, H)) * 0.5
    return model, X, Y, h0


def _min_abs_preactivation(model, X, Y, h0) -> float:
    trace, inputs, out = model.loss_and_grads(X, Y, h0=h0).trace, X, []
    for layer, lt in enumerate(trace.layers):
        p = model.layer_params(layer)
        out.append(np.abs(inputs @ p["U"].T + p["u"] * lt.h[:-1] + p["b"]).min())
        inputs = lt.h[1:]
    return float(min(out))


@pytest.mark.parametrize("shape", SHAPES)
def test_bptt_matches_finite_differences(shape):
    """Every parameter, h0 and X, at 1e-6 relative (sixth-order differences, float64)."""
    for seed in range(100):  # ReLU: a problem whose pre-activations all stay off the kink
        model, X, Y, h0 = _problem(shape, seed)
        if shape[-1] != "relu" or _min_abs_preactivation(model, X, Y, h0) > 2e-2:
            break
    errors = check_gradients(model, X, Y, h0=h0, eps=1e-3)
    assert set(errors) == set(model.params) | {"h0", "X"}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-6, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize("shape", SHAPES)
def test_bptt_matches_torch_autograd(shape):
    """The same equations written in torch; autograd's gradients agree to 1e-10."""
    torch = pytest.importorskip("torch")
    model, X, Y, h0 = _problem(shape, seed=2)
    result = model.loss_and_grads(X, Y, h0=h0, input_grad=True)
    phi = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}.get(
        shape[-1], lambda a: a
    )
    P = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    Xt = torch.tensor(X, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    inputs = Xt
    for layer in range(model.num_layers):
        U, u, b = P[f"U_{layer}"], P[f"u_{layer}"], P[f"b_{layer}"]
        h, hs = h0t[layer], []
        for t in range(X.shape[0]):
            h = phi(inputs[t] @ U.T + u * h + b)
            hs.append(h)
        inputs = torch.stack(hs)
    o = inputs @ P["V"].T + P["c"]
    loss = (
        torch.nn.functional.cross_entropy(
            o.reshape(-1, o.shape[-1]), torch.tensor(Y).reshape(-1), reduction="sum"
        )
        / X.shape[1]
    )
    loss.backward()
    assert loss.item() == pytest.approx(result.loss, rel=1e-12)
    for k, p in P.items():
        assert relative_error(result.grads[k], p.grad.numpy(), floor=1e-12) <= 1e-10, k
    assert relative_error(result.dh0, h0t.grad.numpy(), floor=1e-12) <= 1e-10
    assert relative_error(result.trace.dX, Xt.grad.numpy(), floor=1e-12) <= 1e-10


def test_step_jacobian_is_diag_of_dphi_times_u_against_both_oracles():
    """∂h_t/∂h_{t−1} = diag(φ'(a_t) ⊙ u): by finite differences of one step, and by torch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    cell, H, B = IndRNNCell("tanh"), 5, 2
    p = {"u": rng.uniform(-1.5, 1.5, H)}
    ax, h_prev = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    (h,), cache = cell.step(ax, (h_prev,), p)
    J = cell.jacobian(cache, p)  # (B, H, H)
    assert np.count_nonzero(J - J * np.eye(H)) == 0  # diagonal
    for b in range(B):
        rows = []
        for i in range(H):
            x = h_prev[b].copy()

            def f(x=x, i=i, b=b):
                return float(cell.step(ax[b : b + 1], (x[None],), p)[0][0][0, i])

            rows.append(numerical_grad(f, x, eps=1e-3))
        np.testing.assert_allclose(J[b], np.array(rows), rtol=1e-9, atol=1e-11)
        jt = torch.autograd.functional.jacobian(
            lambda hp, b=b: torch.tanh(torch.tensor(ax[b]) + torch.tensor(p["u"]) * hp),
            torch.tensor(h_prev[b]),
        )
        assert relative_error(J[b], jt.numpy(), floor=1e-12) <= 1e-12


def test_recurrent_max_bounds_u_at_initialisation_and_through_training():
    """The paper's constraint |u_j| ≤ recurrent_max holds after every update: a large step
    on the adding task pushes u against the bound, and the bound holds it there."""
    cap = 2 ** (1 / 20)  # 2^{1/T}, T = 20
    task = get_task("adding", T=20, val_size=64, dtype="float64")
    model = build(
        {
            "cell": "indrnn",
            "recurrent_max": cap,
            "input_size": 2,
            "hidden_size": 16,
            "output_size": 1,
            "dtype": "float64",
        },
        seed=0,
    )
    assert np.all(np.abs(model.params["u_0"]) <= cap)
    fit(
        model,
        task,
        TrainConfig(optimizer="sgd", lr=5.0, steps=20, batch_size=8),
        quiet=True,
        diagnostics=None,
    )
    u = model.params["u_0"]
    assert np.all(np.abs(u) <= cap)
    assert np.isclose(np.abs(u).max(), cap)  # the constraint was active, not idle


def test_diagnostics_read_u_through_the_registry():
    """Spectra of diag(u) are |u| and u; the Pascanu bound's σ_max is max |u_j| with the
    cell's γ; the lag profile of a linear IndRNN with max |u| = 0.8 falls as 0.8^τ, under the
    article's 0.8^50 at τ = 50."""
    H, T = 4, 60
    model = _model(T, 8, 2, H, 1, 1, "identity")
    u = np.array([0.8, -0.8, 0.5, 0.3])
    model.params["u_0"] = u
    spectrum = weight_spectra(model)[0]
    assert spectrum.block == "W"
    np.testing.assert_allclose(spectrum.singular_values, [0.8, 0.8, 0.5, 0.3])
    np.testing.assert_allclose(sorted(spectrum.eigenvalues.real), sorted(u))
    gamma, sigma, bound = pascanu_bound(model, 0, T)
    assert (gamma, sigma) == (1.0, pytest.approx(0.8))
    assert bound[10] == pytest.approx(10 * np.log(0.8))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((T, 8, 2))
    Y = rng.standard_normal((T, 8, 1))
    mask = np.zeros((T, 8))
    mask[-1] = 1
    d = diagnose(model, X, Y, loss="mse", mask=mask, dependency_length=50)
    # only the |u| = 0.8 units survive far back: the profile's tail decays as 0.8
    assert d.flow.decay_factor == pytest.approx(0.8, rel=0.05)
    assert 1e-7 < d.flow.ratio <= 0.8**50 * (1 + 1e-9)  # Π J = diag(u^τ), here ≤ 1.43e-5
    assert d.verdict.label == "vanishing"
    assert [r.name for r in d.verdict.remedies][:2] == ["relu_identity", "gated_cell"]


def test_configs_take_the_cell_and_its_options():
    config = validate({"model": {"cell": "indrnn", "recurrent_max": 1}, "task": {"T": 10}})
    assert config.model.cell_options == {"nonlinearity": "relu", "recurrent_max": 1.0}
    model, _ = build_run(config)
    assert model.kind == "indrnn" and set(model.layer_params(0)) == {"U", "u", "b"}
    assert build(model.config).config == model.config
    with pytest.raises(ConfigError, match=r"^model\.recurrent_max: got -1; expected a finite"):
        validate({"model": {"cell": "indrnn", "recurrent_max": -1}})
    with pytest.raises(ConfigError, match=r"^model\.forget_bias: got 1\.0, but only an LSTM"):
        validate({"model": {"cell": "indrnn", "forget_bias": 1.0}})


def test_the_registry_is_the_one_list_of_kinds():
    """RunInfo, remedies and configs accept every registered kind and nothing else."""
    for name, cls in CELLS.items():
        assert cls.name == name
        RunInfo(cell=name)
        assert remedies("vanishing", RunInfo(cell=name), 1.0)
        validate({"model": {"cell": name}})
    with pytest.raises(ValueError, match=r"^cell: got 'elman'; expected one of rnn, lstm"):
        RunInfo(cell="elman")
