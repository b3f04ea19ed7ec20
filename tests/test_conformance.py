"""The conformance battery (in the spirit of scikit-learn's check_estimator): every cell in
`rnnlab.engine.cells.CELLS` and every task in `rnnlab.tasks.names()` passes it by being
registered.

Cells, each with every value of its `nonlinearity` option where it has one:
- BPTT against float64 finite differences, on every parameter, h0 (and c0) and X, over
  several shapes, layer counts and both losses;
- BPTT against torch autograd of the cell's own equations, written independently in
  tests/references.py (a registered cell without a reference there fails, naming it);
- the step Jacobian, entry by entry, against finite differences of one step and against
  torch.autograd.functional.jacobian of the reference step;
- float32 gradients against float64 ones, within a stated tolerance;
- `engine.sequence.backprop` (the diagnostics' stacked-cache backward) against torch;
- a negative control: a vjp off by 1 % must fail check_gradients;
- every init scheme builds finite params of the reference's shapes; the spectra and the
  activation statistics equal what numpy and the reference compute;
- a config → `rnnlab run` → `rnnlab diagnose` → `rnnlab report` round trip.
Tasks: the baseline derived by hand, `solved`, the metrics against hand-computed values,
the layout, the fixed validation set and reproducible batches.

Nothing here uses a cell's own code as its oracle: finite differences perturb the model's
inputs and read only its loss; torch runs the references.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli.main import cli
from rnnlab.diagnostics import activation_stats, weight_spectra
from rnnlab.engine.activations import NONLINEARITIES
from rnnlab.engine.cells import CELLS
from rnnlab.engine.gradcheck import check_gradients, relative_error
from rnnlab.engine.init import INITS, Scheme
from rnnlab.engine.model import SequenceModel, build
from rnnlab.engine.sequence import backprop, unroll
from rnnlab.tasks import get as get_task
from rnnlab.tasks import names as task_names

from conftest import need

# --- the cases --------------------------------------------------------------------------


def variants(name: str) -> list[dict[str, Any]]:
    """The option sets a cell is checked with: every φ it offers where it has that option."""
    cls = CELLS[name]
    if "nonlinearity" in cls.option_names():
        return [{"nonlinearity": nl} for nl in getattr(cls, "nonlinearities", NONLINEARITIES)]
    return [{}]


# option sets beyond φ that change a cell's equations, checked as well
EQUATIONS = {
    "lru": [
        {"mixing": "none"},
        {"normalise": False},
        {"parameterisation": "direct", "normalise": False},
    ]
}

CASES = [
    pytest.param(name, opts, id="-".join([name, *map(str, opts.values())]))
    for name in CELLS
    for opts in variants(name) + EQUATIONS.get(name, [])
]
DEFAULTS = [pytest.param(name, {}, id=name) for name in CELLS]

# (T, B, D, H, K, layers, loss, masked)
SHAPES = [
    pytest.param((5, 2, 3, 4, 3, 1, "cross_entropy", False), id="T5-L1-ce"),
    pytest.param((4, 3, 2, 3, 2, 2, "mse", True), id="T4-L2-mse-masked"),
    pytest.param((3, 2, 2, 2, 4, 3, "cross_entropy", True), id="T3-L3-ce-masked"),
]

FD_TOL = 1e-6  # relative, sixth-order differences in float64 (eps 1e-3)
TORCH_TOL = 1e-10  # relative, the same equations in torch, float64
# float32 against float64 on a T = 20 sequence, 2 layers: ‖g32 − g64‖ / ‖g64‖ per parameter.
# float32 rounds at 6e-8; measured here, the worst of every cell and φ is 3.5e-7 (GRU b_1),
# so 5e-6 leaves a margin of 14 and still catches any float32-only error of 1e-5 or more.
F32_TOL = 5e-6
KINK = 0.02  # a ReLU problem keeps every pre-activation this far from 0 (see `problem`)


def reference(name: str):
    """The torch reference of cell `name`; a registered cell without one fails, naming it."""
    need("torch")
    from references import REFERENCES

    if name not in REFERENCES:
        pytest.fail(
            f"cell {name!r} is registered in rnnlab.engine.cells.CELLS but has no torch "
            f"reference in tests/references.py: add one written from its equations"
        )
    return REFERENCES[name]


def sized(name: str, H: int) -> int:
    """H rounded up to what the cell allows (the LRU's [Re x; Im x] needs an even H)."""
    m = CELLS[name].hidden_multiple
    return -(-H // m) * m


def model_for(name, opts, D, H, K, L, seed, dtype="float64", **kw) -> SequenceModel:
    kw = {"init": "normal", "init_scale": 0.5} | kw
    return SequenceModel(
        cell=name,
        **opts,
        input_size=D,
        hidden_size=H,
        output_size=K,
        num_layers=L,
        dtype=dtype,
        seed=seed,
        **kw,
    )


def _states(model: SequenceModel, h0: tuple[np.ndarray, ...]):
    return h0 if len(h0) > 1 else h0[0]


def relu_margin(name, opts, model, X, h0) -> float:
    """The smallest |input| of any ReLU in the reference's forward pass (inf without one)."""
    torch = need("torch")
    from references import ACT, layer_forward, layer_output

    seen = [math.inf]

    def relu(a):
        seen.append(float(a.abs().min()))
        return torch.relu(a)

    act = ACT | {"relu": relu}
    inputs = torch.tensor(X)
    for layer in range(model.num_layers):
        p = {k: torch.tensor(v) for k, v in model.layer_params(layer).items()}
        state0 = tuple(torch.tensor(s[layer]) for s in h0)
        states, _ = layer_forward(model.cell, reference(name), p, inputs, state0, act)
        inputs = layer_output(model.cell, reference(name), p, states, inputs)
    return min(seen)


def problem(name, opts, shape, seed):
    """A model and its data; with ReLU, one whose pre-activations all stay KINK from the kink,
    so that no finite difference straddles it."""
    T, B, D, H, K, L, loss, masked = shape
    H = sized(name, H)
    for attempt in range(200):
        rng = np.random.default_rng([seed, attempt])
        model = model_for(name, opts, D, H, K, L, seed=int(rng.integers(1 << 30)))
        X = rng.standard_normal((T, B, D))
        Y = rng.standard_normal((T, B, K)) if loss == "mse" else rng.integers(0, K, (T, B))
        mask = None
        if masked:
            mask = (rng.random((T, B)) < 0.5).astype(float)
            mask[-1] = 1
        h0 = tuple(rng.standard_normal((L, B, H)) * 0.5 for _ in model.cell.state_names)
        if relu_margin(name, opts, model, X, h0) > KINK:  # inf where nothing calls a ReLU
            return model, X, Y, mask, h0, loss
    raise RuntimeError("no ReLU problem away from the kink")  # pragma: no cover


# --- the registry and the references -------------------------------------------------------


@pytest.mark.parametrize("name", list(CELLS))
def test_every_registered_cell_has_a_torch_reference(name):
    ref = reference(name)
    cls = CELLS[name]
    assert cls.name == name
    # the reference declares the layer's parameters; the cell draws exactly those
    D, H = 3, 4
    p = cls().init_layer(np.random.default_rng(0), D, H, Scheme())
    assert {k: v.shape for k, v in p.items()} == ref.shapes(D, H)
    assert len(cls.gate_names) * H == p["U"].shape[0]


def test_a_cell_without_a_reference_fails_naming_it(monkeypatch):
    from rnnlab.engine.cells import RNNCell

    class Nameless(RNNCell):
        name = "nameless"

    monkeypatch.setitem(CELLS, "nameless", Nameless)
    with pytest.raises(pytest.fail.Exception, match=r"cell 'nameless' is registered .* no torch"):
        reference("nameless")


# --- gradients: finite differences and torch ----------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("name", "opts"), CASES)
def test_bptt_matches_finite_differences(name, opts, shape):
    """Every parameter, h0 (c0) and X against sixth-order central differences."""
    model, X, Y, mask, h0, loss = problem(name, opts, shape, seed=1)
    errors = check_gradients(model, X, Y, loss=loss, mask=mask, h0=_states(model, h0), eps=1e-3)
    states = {"h0"} | ({"c0"} if len(h0) == 2 else set())
    assert set(errors) == set(model.params) | states | {"X"}
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] <= FD_TOL, f"{name} {opts}: {worst} relative error {errors[worst]:.2e}"


def torch_loss_and_grads(name, model, X, Y, mask, h0, loss):
    """The reference's loss and its autograd gradients: params, h0 parts, X."""
    torch = need("torch")
    from references import forward_loss

    P = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    Xt = torch.tensor(X, requires_grad=True)
    h0t = tuple(torch.tensor(s, requires_grad=True) for s in h0)
    Yt = torch.tensor(Y)
    T, B = X.shape[:2]
    mt = torch.ones((T, B), dtype=torch.float64) if mask is None else torch.tensor(mask)
    L = forward_loss(model.cell, reference(name), P, model.num_layers, Xt, Yt, mt, h0t, loss)
    L.backward()
    return L.item(), {k: v.grad.numpy() for k, v in P.items()}, [s.grad.numpy() for s in h0t], Xt


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("name", "opts"), CASES)
def test_bptt_matches_torch_autograd_of_the_reference(name, opts, shape):
    model, X, Y, mask, h0, loss = problem(name, opts, shape, seed=2)
    result = model.loss_and_grads(
        X, Y, loss=loss, mask=mask, h0=_states(model, h0), input_grad=True
    )
    L, grads, dh0, Xt = torch_loss_and_grads(name, model, X, Y, mask, h0, loss)
    assert result.loss == pytest.approx(L, rel=1e-12)
    assert set(result.grads) == set(grads)
    for k, g in grads.items():
        err = relative_error(result.grads[k], g, floor=1e-12)
        assert err <= TORCH_TOL, f"{name} {opts}: {k} relative error {err:.2e}"
    ours = result.dh0 if isinstance(result.dh0, tuple) else (result.dh0,)
    for part, theirs in zip(ours, dh0, strict=True):
        assert relative_error(part, theirs, floor=1e-12) <= TORCH_TOL
    assert relative_error(result.trace.dX, Xt.grad.numpy(), floor=1e-12) <= TORCH_TOL


@pytest.mark.parametrize(("name", "opts"), CASES)
def test_float32_gradients_agree_with_float64(name, opts):
    """The default dtype: the same weights and data in float32, within F32_TOL per parameter
    (normwise), and the loss within 1e-5."""
    T, B, D, H, K = 20, 4, 3, 8, 2
    rng = np.random.default_rng(4)
    m64 = model_for(name, opts, D, H, K, 2, seed=3, init="pytorch")
    m32 = build(m64.config | {"dtype": "float32"})
    m32.set_params(m64.params)
    X = rng.standard_normal((T, B, D))
    Y = rng.integers(0, K, (T, B))
    r64 = m64.loss_and_grads(X, Y)
    r32 = m32.loss_and_grads(X.astype(np.float32), Y)
    assert r32.loss == pytest.approx(r64.loss, rel=1e-5)
    for k, g64 in r64.grads.items():
        g32 = r32.grads[k]
        assert g32.dtype == np.float32, k
        err = np.linalg.norm(g32 - g64) / np.linalg.norm(g64)
        assert err <= F32_TOL, f"{name} {opts}: {k} float32 vs float64 {err:.1e}"


# --- the step Jacobian, entry by entry ------------------------------------------------------

_STENCIL = (np.array([-3, -2, -1, 1, 2, 3]), np.array([-1, 9, -45, 45, -9, 1]) / 60)


def fd_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, eps: float) -> np.ndarray:
    """∂f/∂x (len f(x), len x) by sixth-order central differences, column by column."""
    steps, weights = _STENCIL
    cols = []
    for j in range(x.size):
        values = []
        for s in steps:
            xp = x.copy()
            xp[j] += s * eps
            values.append(f(xp))
        cols.append(np.tensordot(weights, np.array(values), axes=1) / eps)
    return np.stack(cols, axis=-1)


def one_step(name, opts, seed, B=3, D=3, H=4):
    """A layer's params, ax = U x + b and a previous state (each (B, H)), with every ReLU
    input at least 0.05 from its kink."""
    torch = need("torch")
    from references import ACT

    cls = CELLS[name]
    cell = cls(**opts)
    ref = reference(name)
    for attempt in range(200):
        rng = np.random.default_rng([seed, attempt])
        p = cell.init_layer(rng, D, H, Scheme("normal", 0.6))
        if "u" in p:  # a recurrent vector: signs and sizes on both sides of 1
            p["u"] = rng.uniform(0.5, 1.3, H) * rng.choice([-1.0, 1.0], H)
        ax = rng.standard_normal((B, D)) @ p["U"].T + p["b"]
        state = tuple(rng.standard_normal((B, H)) for _ in cell.state_names)
        seen = [math.inf]

        def relu(a, seen=seen):
            seen.append(float(a.abs().min()))
            return torch.relu(a)

        P = {k: torch.tensor(v) for k, v in p.items()}
        ref.step(cell, P, torch.tensor(ax), tuple(map(torch.tensor, state)), ACT | {"relu": relu})
        if min(seen) > 0.05:
            return cell, ref, p, ax, state
    raise RuntimeError("no step away from the kink")  # pragma: no cover


@pytest.mark.parametrize(("name", "opts"), CASES)
def test_step_jacobian_entry_by_entry(name, opts):
    """cell.jacobian (B, S, S) against finite differences of cell.step and against torch's
    jacobian of the reference step: every entry, not norms (a transposed Jacobian, or
    blocks in the wrong order, have the same norms)."""
    torch = need("torch")
    from references import ACT

    cell, ref, p, ax, state = one_step(name, opts, seed=5)
    B, H = state[0].shape
    S = len(state) * H
    pp = cell.prepare(p)
    _, cache = cell.step(ax, state, pp)
    J = cell.jacobian(cache, pp)
    assert J.shape == (B, S, S)
    P = {k: torch.tensor(v) for k, v in p.items()}
    for b in range(B):
        flat = np.concatenate([s[b] for s in state])

        def f(x, b=b):
            parts = tuple(x[k * H : (k + 1) * H][None] for k in range(len(state)))
            return np.concatenate([s[0] for s in cell.step(ax[b : b + 1], parts, pp)[0]])

        np.testing.assert_allclose(J[b], fd_jacobian(f, flat, 1e-3), rtol=1e-8, atol=1e-10)

        def g(x, b=b):
            parts = tuple(x[k * H : (k + 1) * H][None] for k in range(len(state)))
            out, _ = ref.step(cell, P, torch.tensor(ax[b : b + 1]), parts, ACT)
            return torch.cat([s[0] for s in out])

        jt = torch.autograd.functional.jacobian(g, torch.tensor(flat)).numpy()
        np.testing.assert_allclose(J[b], jt, rtol=1e-12, atol=1e-14)


# --- the diagnostics' backward pass -----------------------------------------------------------


@pytest.mark.parametrize(("name", "opts"), CASES)
def test_backprop_over_stacked_caches_matches_torch(name, opts):
    """backprop(cell, p, caches (T, n, ·), dh_above) returns δ_k = ∂L/∂state_k for
    L = Σ_t ⟨dh_above_t, h_t⟩, and dax = ∂L/∂(U x_t + b): here against torch's gradients of
    the reference. For a state with several parts (LSTM's (h, c)) the δ of a part is the
    partial derivative for the state tuple: what flows into it from the next step (and,
    for h, from dh_above)."""
    torch = need("torch")
    from references import ACT

    T = 6
    cell, ref, p, _, _ = one_step(name, opts, seed=6)
    rng = np.random.default_rng(7)
    n, H, D = 3, p["U"].shape[0] // cell.gates, p["U"].shape[1]
    X = rng.standard_normal((T, n, D))
    ax = X @ p["U"].T + p["b"]
    state0 = tuple(rng.standard_normal((n, H)) * 0.5 for _ in cell.state_names)
    dh_above = rng.standard_normal((T, n, H))
    trace = unroll(cell, p, ax, state0)
    deltas, dax = backprop(cell, p, cell.stack(trace.caches), dh_above)

    P = {k: torch.tensor(v) for k, v in p.items()}
    axt = torch.tensor(ax, requires_grad=True)
    s0 = tuple(torch.tensor(s, requires_grad=True) for s in state0)
    state, kept, L = s0, [s0], torch.zeros((), dtype=torch.float64)
    for t in range(T):
        out, _ = ref.step(cell, P, axt[t], state, ACT)
        # h_t as it is (the loss reads it too); the other parts through a copy, whose
        # gradient is only what flows back from step t + 1
        state = (out[0], *(s.clone() for s in out[1:]))
        for s in state:
            s.retain_grad()
        kept.append(state)
        L = L + (torch.tensor(dh_above[t]) * out[0]).sum()
    L.backward()
    for k in range(len(state0)):
        np.testing.assert_allclose(
            trace.states[k][1:], np.stack([s[k].detach().numpy() for s in kept[1:]]), rtol=1e-12
        )
        theirs = np.stack(
            [np.zeros((n, H)) if s[k].grad is None else s[k].grad.numpy() for s in kept]
        )
        err = relative_error(deltas[k], theirs, floor=1e-12)
        assert err <= TORCH_TOL, f"{name} {opts}: δ of {cell.state_names[k]}, error {err:.1e}"
    assert relative_error(dax, axt.grad.numpy(), floor=1e-12) <= TORCH_TOL


# --- the negative control --------------------------------------------------------------


@pytest.mark.parametrize(("name", "opts"), DEFAULTS)
def test_check_gradients_rejects_a_vjp_off_by_one_percent(name, opts, monkeypatch):
    """A vjp whose ∂L/∂a is 1.01 times too large must fail the finite-difference check on
    the layer's params, while the readout's gradients, which do not pass through it, pass."""
    model, X, Y, mask, h0, loss = problem(name, opts, SHAPES[0].values[0], seed=8)
    cls = CELLS[name]
    vjp = cls.vjp

    def off(self, dstate, coef, p):
        dax, dah, dprev = vjp(self, dstate, coef, p)
        return dax * 1.01, dah * 1.01, dprev

    monkeypatch.setattr(cls, "vjp", off)
    errors = check_gradients(model, X, Y, loss=loss, mask=mask, h0=_states(model, h0), eps=1e-3)
    assert errors["b_0"] == pytest.approx(0.01 / 1.01, rel=0.05)  # |1.01 g − g| / |1.01 g|
    assert errors["U_0"] > 100 * FD_TOL
    assert errors["V"] <= FD_TOL and errors["c"] <= FD_TOL


# --- init, spectra, activation statistics ----------------------------------------------------


OWN_INIT = {"lru"}  # cells whose default draws are their paper's, not PyTorch's


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize(("name", "opts"), DEFAULTS)
def test_every_init_scheme_builds_finite_params_of_the_reference_shapes(name, opts, init):
    D, H, K, L = 3, sized(name, 5), 2, 2
    ref = reference(name)
    kw = {"init": init, "init_scale": None} | ({"t_max": 10} if init == "chrono" else {})
    if init == "chrono" and not CELLS[name].chrono:  # it sets gate biases the cell lacks
        with pytest.raises(ValueError, match=r"^init: got 'chrono', but only an LSTM or a GRU"):
            model_for(name, opts, D, H, K, L, seed=0, **kw)
        return
    try:
        model = model_for(name, opts, D, H, K, L, seed=0, dtype="float32", **kw)
    except ValueError as refused:  # a scheme that means nothing for the cell, saying why
        assert str(refused).startswith(f"init: got {init!r}, but "), refused
        return
    expected = {"V": (K, H), "c": (K,)}
    for layer in range(L):
        shapes = ref.shapes(D if layer == 0 else H, H)
        expected |= {f"{k}_{layer}": s for k, s in shapes.items()}
    assert {k: v.shape for k, v in model.params.items()} == expected
    for k, v in model.params.items():
        assert v.dtype == np.float32 and np.all(np.isfinite(v)), k
    for layer in range(L):
        p = model.layer_params(layer)
        blocks = ref.blocks({k: v.astype(np.float64) for k, v in p.items()}, H)
        if init == "identity":  # the IRNN: every recurrent block init_scale·I, default 1
            for block, W in blocks.items():
                np.testing.assert_array_equal(W, np.eye(H), err_msg=block)
        if init == "pytorch" and name not in OWN_INIT:  # U(±1/√H), inputs and biases
            assert np.abs(p["U"]).max() <= 1 / np.sqrt(H) and np.abs(p["b"]).max() <= 1 / np.sqrt(H)
            assert np.abs(p["U"]).max() > 0.5 / np.sqrt(H)  # drawn, not zeros
        elif init == "chrono":  # pytorch's draw, then its gate biases (tests/test_chrono.py)
            assert np.abs(p["U"]).max() <= 1 / np.sqrt(H)
        else:  # every other scheme zeroes the biases
            for k, v in p.items():
                if k.startswith("b"):
                    np.testing.assert_array_equal(v, 0, err_msg=k)
    again = model_for(name, opts, D, H, K, L, seed=0, dtype="float32", **kw)
    other = model_for(name, opts, D, H, K, L, seed=1, dtype="float32", **kw)
    for k, v in model.params.items():
        np.testing.assert_array_equal(again.params[k], v)
    assert any(not np.array_equal(other.params[k], v) for k, v in model.params.items())
    # a spectral radius ρ rescales every square recurrent block to exactly ρ; a cell whose
    # recurrence has no radius to set (an orthogonal W, or no W at all) refuses it, saying so
    try:
        rho = model_for(name, opts, D, H, K, L, seed=0, spectral_radius=0.9, **kw)
    except ValueError as refused:
        assert str(refused).startswith("spectral_radius: got 0.9, but "), refused
        return
    for layer in range(L):
        for block, W in ref.blocks(rho.layer_params(layer), H).items():
            assert np.abs(np.linalg.eigvals(W)).max() == pytest.approx(0.9, rel=1e-9), block


@pytest.mark.parametrize(("name", "opts"), DEFAULTS)
def test_weight_spectra_are_those_of_the_reference_blocks(name, opts):
    H, L = sized(name, 5), 2
    ref = reference(name)
    model = model_for(name, opts, 3, H, 2, L, seed=9)
    spectra = weight_spectra(model)
    expected = []
    for layer in range(L):
        blocks = ref.blocks(model.layer_params(layer), H)
        if len(blocks) > 1:  # a gated cell: the stacked W first, σ only
            expected.append((layer, "W", np.vstack(list(blocks.values())), False))
        expected += [(layer, k, W, True) for k, W in blocks.items()]
    assert [(s.layer, s.block) for s in spectra] == [(e[0], e[1]) for e in expected]
    for s, (_, block, W, square) in zip(spectra, expected, strict=True):
        sv = np.linalg.svd(W, compute_uv=False)
        np.testing.assert_allclose(s.singular_values, sv, rtol=1e-10, err_msg=block)
        assert s.sigma_max == pytest.approx(sv[0], rel=1e-12)
        if square:
            eig = np.linalg.eigvals(W)
            assert s.spectral_radius == pytest.approx(np.abs(eig).max(), rel=1e-10)
            np.testing.assert_allclose(np.sort_complex(s.eigenvalues), np.sort_complex(eig))
        else:
            assert s.spectral_radius is None and s.eigenvalues is None


@pytest.mark.parametrize(("name", "opts"), CASES)
def test_activation_stats_are_those_of_the_reference_forward(name, opts):
    """What the statistics read (φ's output, the carry gate) comes from the reference's
    forward pass; saturation, mean φ', dead units and the gate's histogram are computed
    here from their definitions."""
    torch = need("torch")
    from references import ACT, GAMMA, dphi, layer_forward, layer_output

    T, B, D, H, L = 12, 6, 3, 6, 2
    rng = np.random.default_rng(10)
    model = model_for(name, opts, D, H, 2, L, seed=10, init="normal", init_scale=1.5)
    for layer in range(L):  # two units pushed off in every gate block: dead under ReLU,
        for k in range(model.cell.gates):  # saturated under tanh/σ
            rows = slice(k * H, k * H + 2)
            for key in model.layer_params(layer):
                model.params[f"{key}_{layer}"][rows] *= 0.1
            model.params[f"b_{layer}"][rows] = -8.0
    X = rng.standard_normal((T, B, D))
    trace = model.loss_and_grads(X, rng.integers(0, 2, (T, B))).trace
    stats = activation_stats(model, trace)
    assert [s.layer for s in stats] == list(range(L))
    inputs = torch.tensor(X)
    for layer, s in enumerate(stats):
        p = {k: torch.tensor(v) for k, v in model.layer_params(layer).items()}
        zeros = tuple(torch.zeros((B, H), dtype=torch.float64) for _ in model.cell.state_names)
        states, probes = layer_forward(model.cell, reference(name), p, inputs, zeros, ACT)
        inputs = layer_output(model.cell, reference(name), p, states, inputs)
        nl = probes[0][0]
        phi = np.stack([pr[1].numpy() for pr in probes])  # (T, B, H)
        d = dphi(nl, phi)
        assert (s.nonlinearity, s.gamma) == (nl, GAMMA[nl])
        assert s.mean_dphi == pytest.approx(d.mean(), rel=1e-12)
        if nl in ("tanh", "sigmoid"):
            assert s.saturation == pytest.approx(np.mean(d < 0.05 * GAMMA[nl]), abs=1e-12)
            assert s.saturation > 0  # the units pushed off saturate
        else:
            assert s.saturation is None
        if nl == "relu":
            dead = np.mean(~(phi > 0).any(axis=(0, 1)))
            assert s.dead_fraction == pytest.approx(dead) and s.dead_fraction > 0
            assert s.inactive_fraction == pytest.approx(np.mean(phi <= 0))
        else:
            assert s.dead_fraction is None and s.inactive_fraction is None
        gate = probes[0][2]
        assert s.gate == gate
        if gate is None:
            assert s.gate_mean is None and s.gate_histogram is None
        else:
            g = np.stack([pr[3].numpy() for pr in probes])
            assert s.gate_mean == pytest.approx(g.mean(), rel=1e-12)
            hist = np.histogram(g, bins=10, range=(0, 1))[0] / g.size
            np.testing.assert_allclose(s.gate_histogram, hist, atol=1e-12)


# --- config → run → diagnose → report, through the command line ---------------------------

ROUND_TRIP = """
[model]
cell = "{name}"
hidden_size = 6

[task]
name = "adding"
T = 8
val_size = 16

[train]
optimizer = "adam"
lr = 1e-2
batch_size = 4
steps = 6
eval_every = 3
checkpoint_every = 3

[diagnostics]
every = 3
probe_size = 4
jacobians = 1
"""


@pytest.mark.parametrize("name", list(CELLS))
def test_config_run_diagnose_report_round_trip(name, tmp_path):
    need("matplotlib")
    config = tmp_path / f"{name}.toml"
    config.write_text(ROUND_TRIP.format(name=name))
    store = tmp_path / "store"
    runner = CliRunner()
    ran = runner.invoke(cli, ["run", str(config), "--out", str(store), "--quiet"])
    assert ran.exit_code == 0, ran.output
    (run_dir,) = (store / "runs").iterdir()
    run_id = run_dir.name
    assert f"run {run_id}: done" in ran.output
    history = json.loads((run_dir / "history.json").read_text())
    assert history["status"] == "done" and len(history["steps"]) == 6
    assert [d["step"] for d in history["diagnostics"]] == [0, 3, 6]
    assert {d["model"]["cell"] for d in history["diagnostics"]} == {name}

    diagnosed = runner.invoke(cli, ["diagnose", run_id, "--store", str(store), "--json"])
    assert diagnosed.exit_code == 0, diagnosed.output
    d = json.loads(diagnosed.stdout.strip().splitlines()[-1])
    assert f"(run {run_id}, step 6 of 6)" in diagnosed.stderr
    assert d["model"]["cell"] == name
    assert d["verdict"]["label"] in ("vanishing", "exploding", "stuck", "healthy")
    # the checkpoint's weights, not a fresh model: its σ_max is the stored one
    last = history["diagnostics"][-1]
    # (a cell without a recurrent matrix has no blocks in its spectra)
    assert len(d["spectra"]) == len(last["spectra"])
    for ours, stored in zip(d["spectra"], last["spectra"], strict=True):
        assert ours["sigma_max"] == pytest.approx(stored["sigma_max"])

    out = tmp_path / "report.html"
    reported = runner.invoke(cli, ["report", run_id, "--store", str(store), "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert f"Run {run_id}: {CELLS[name]().label()}" in html and "<img" in html
    # a cell whose equations give ‖Π J‖ exactly (the LRU's diag(λ)) is told so, not given
    # a bound that does not apply; the others keep the bound or the gated-cell wording
    rate = history["diagnostics"][-1]["jacobians"][0].get("exact_rate")
    assert ("Here: no bound is needed for" in html) is (rate is not None), name


# --- tasks ------------------------------------------------------------------------------------

T_TASK = 12


def _adding_baseline(task):
    return 1 / 6 if task.variant == "le2015" else 1 / 24


def _unigram_entropy(task):
    counts = np.bincount(task._splits["train"])
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _adding_memoryless(task, X, Y, mask):
    return np.full(Y.shape, 1.0)  # E[v_p1 + v_p2] = 1/2 + 1/2


def _copy_memoryless(task, X, Y, mask):
    o = np.full(X.shape + (10,), -60.0)
    o[: task.T + 10, :, 8] = 60.0  # blanks until the delimiter's echo
    o[task.T + 10 :, :, :8] = 0.0  # then uniform over the 8 data symbols
    return o


def _uniform_logits(task, X, Y, mask):
    return np.zeros(Y.shape + (task.output_size,))


def _unigram_logits(task, X, Y, mask):
    counts = np.bincount(task._splits["train"], minlength=task.output_size)
    logp = np.log(np.maximum(counts, 1e-300) / counts.sum())
    return np.broadcast_to(logp, Y.shape + (task.output_size,)).copy()


# name: (the baseline by analysis, the dependency length by its definition, the
#        memoryless predictor whose loss is the baseline, the tolerance of that match)
TASKS: dict[str, tuple[Callable, Callable, Callable, float]] = {
    "adding": (_adding_baseline, lambda t: t.T - t.T // 2, _adding_memoryless, 0.03),
    "copy": (
        lambda t: 10 * math.log(8) / (t.T + 20),
        lambda t: t.T + 10,
        _copy_memoryless,
        1e-12,
    ),
    "temporal_order": (
        lambda t: math.log(4),
        lambda t: t.T - math.ceil(0.2 * t.T),
        _uniform_logits,
        1e-12,
    ),
    "charlm": (_unigram_entropy, lambda t: t.T - 1, _unigram_logits, 0.05),
}


def facts(name):
    if name not in TASKS:
        pytest.fail(
            f"task {name!r} is registered in rnnlab.tasks but has no hand-derived baseline "
            f"and memoryless predictor in tests/test_conformance.py TASKS: add them"
        )
    return TASKS[name]


@pytest.fixture(scope="module", params=task_names())
def task(request):
    return get_task(request.param, T=T_TASK, val_size=2000 if request.param == "adding" else 256)


def test_the_battery_knows_every_task():
    for name in task_names():
        facts(name)


def test_baseline_by_analysis_and_the_memoryless_predictor_scores_it(task):
    baseline, dependency, memoryless, tol = facts(task.name)
    assert task.baseline == pytest.approx(baseline(task), rel=1e-12)
    assert task.baselines["loss"] == task.baselines[task.loss] == task.baseline
    assert task.dependency_length == dependency(task)
    X, Y, mask = task.validation
    m = task.metrics(memoryless(task, X, Y, mask), Y, mask)
    assert m["loss"] == pytest.approx(task.baseline, rel=tol)
    assert m[task.loss] == m["loss"]
    assert not task.solved(m)


def _perturbed(task, Y, mask, close: bool):
    """Outputs right at every masked step (close), or on the first half of the sequences
    only: cross-entropy logits z on the class, 0 elsewhere; regression off by 0.03 or 0.2."""
    B = Y.shape[1]
    wrong = np.zeros(B, dtype=bool) if close else np.arange(B) < B // 2
    if task.loss == "mse":
        return Y.astype(np.float64) + np.where(wrong, 0.2, 0.03)[None, :, None], wrong
    K = task.output_size
    target = np.where(wrong[None, :], (Y + 1) % K, Y)
    o = np.zeros(Y.shape + (K,))
    np.put_along_axis(o, target[..., None], 30.0, axis=-1)
    return o, wrong


def test_metrics_against_hand_computed_values_and_solved(task):
    X, Y, mask = task.validation
    Y = np.where(mask != 0, Y, 0) if task.loss == "cross_entropy" else Y
    for close in (True, False):
        o, wrong = _perturbed(task, Y, mask, close)
        m = task.metrics(o, Y, mask)
        frac = wrong.mean()
        if task.loss == "mse":
            expected = (1 - frac) * 0.03**2 + frac * 0.2**2
        else:
            K, z = task.output_size, 30.0
            right_ce = math.log1p((K - 1) * math.exp(-z))  # −log softmax, z on the class
            wrong_ce = math.log(math.exp(z) + K - 1)  # z on another class, 0 on this one
            expected = (1 - frac) * right_ce + frac * wrong_ce
        assert m["loss"] == pytest.approx(expected, rel=1e-6)
        assert m["accuracy"] == pytest.approx(1 - frac)
        assert task.solved(m) is close
        if task.name == "charlm":
            assert m["bits_per_char"] == pytest.approx(expected / math.log(2), rel=1e-6)
            assert m["perplexity"] == pytest.approx(math.exp(expected), rel=1e-6)


def test_layout(task):
    X, Y, mask = task.batch(np.random.default_rng(0), 5)
    T = task.length
    if task.input_ids:
        assert X.shape == (T, 5) and 0 <= X.min() and X.max() < task.input_size
    else:
        assert X.shape == (T, 5, task.input_size) and X.dtype == task.dtype
    assert mask.shape == (T, 5) and set(np.unique(mask)) <= {0.0, 1.0} and mask.sum() > 0
    if task.loss == "mse":
        assert Y.shape == (T, 5, task.output_size)
    else:
        assert Y.shape == (T, 5)
        assert 0 <= Y[mask != 0].min() and Y[mask != 0].max() < task.output_size


def test_validation_is_fixed_and_batches_are_reproducible(task):
    again = get_task(task.name, **task.params)
    for a, b in zip(task.validation, again.validation, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not a.flags.writeable
    assert task.validation is task.validation
    with pytest.raises(ValueError):
        task.validation.X[0] = 0  # read-only: no caller can change later evaluations
    other = get_task(task.name, **(task.params | {"seed": task.seed + 1}))
    assert not np.array_equal(other.validation.X, task.validation.X)
    b1 = task.batch(np.random.default_rng(3), 6)
    b2 = task.batch(np.random.default_rng(3), 6)
    b3 = task.batch(np.random.default_rng(4), 6)
    for a, b in zip(b1, b2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b1.X, b3.X)
    # training batches from the task's own seed are not the validation set
    first = task.batch(np.random.default_rng(task.seed), 6).X
    assert not np.array_equal(first, task.validation.X[:, :6])
