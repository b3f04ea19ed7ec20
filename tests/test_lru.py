"""What is the LRU's own (its gradients are the conformance battery's): the theory its
diagnosis prints beside the measurement, the ring initialisation, token inputs and options."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnlab
from rnnlab.diagnostics import jacobian_products, weight_spectra
from rnnlab.diagnostics.record import exact_rate
from rnnlab.engine.gradcheck import check_gradients
from rnnlab.engine.model import SequenceModel


def model_of(cell, **kw):
    kw = {"input_size": 3, "hidden_size": 8, "output_size": 2, "dtype": "float64", "seed": 0} | kw
    return SequenceModel(cell=cell, **kw)


def lru(**kw):
    return model_of("lru", **kw)


def moduli(model, layer=0):
    lam_re, lam_im = model.cell.eigenvalues(model.layer_params(layer))
    return np.hypot(lam_re, lam_im)


@pytest.mark.parametrize(
    ("cell", "opts"),
    [
        ("lru", {"r_min": 0.5, "r_max": 0.99}),
        ("lru", {"parameterisation": "direct", "normalise": False}),
        ("indrnn", {"nonlinearity": "identity"}),
        ("exprnn", {"nonlinearity": "identity"}),
    ],
)
def test_the_jacobian_product_is_the_theory_to_1e_12(cell, opts):
    """A diagonal linear recurrence: Π of τ steps is diag(λ)^τ, of norm max|λ|^τ; an
    orthogonal W^τ has norm 1."""
    model = model_of(cell, **opts, num_layers=2, seed=4)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 3, 3)), rng.standard_normal((40, 3, 2))
    trace = model.loss_and_grads(X, Y, loss="mse").trace
    for jp in jacobian_products(model, trace, sequences=3):
        p = model.layer_params(jp.layer)
        if cell == "lru":
            rate = moduli(model, jp.layer).max()
        else:
            rate = abs(p["u"]).max() if cell == "indrnn" else 1.0
        assert jp.exact_rate == pytest.approx(rate, rel=1e-15)
        tau = np.arange(41)[:, None]
        np.testing.assert_allclose(np.exp(jp.log_norm), rate**tau * np.ones(3), rtol=1e-12)


def test_a_nonlinear_cell_has_no_exact_law():
    for cell, opts in [
        ("rnn", {"nonlinearity": "identity"}),
        ("indrnn", {}),
        ("exprnn", {}),
        ("lstm", {}),
        ("mingru", {}),
    ]:
        model = model_of(cell, **opts)
        assert model.cell.exact_rate(model.layer_params(0)) is None, cell


def test_spectra_read_lambda_and_its_conjugate():
    model = lru(r_min=0.3, r_max=0.9)
    lam_re, lam_im = model.cell.eigenvalues(model.layer_params(0))
    lam = lam_re + 1j * lam_im
    (w,) = weight_spectra(model)
    expected = np.concatenate([lam, lam.conj()])
    np.testing.assert_allclose(
        np.sort_complex(w.eigenvalues), np.sort_complex(expected), atol=1e-14
    )
    assert w.spectral_radius == pytest.approx(np.abs(lam).max(), rel=1e-12)
    assert w.sigma_max == pytest.approx(np.abs(lam).max(), rel=1e-12)  # a normal matrix


def test_ring_initialisation_draws_the_annulus_and_the_phase_range():
    model = lru(hidden_size=4000, r_min=0.4, r_max=0.95, theta_max=math.pi / 10, seed=3)
    r = moduli(model)
    assert r.min() >= 0.4 and r.max() <= 0.95
    # |λ|² uniform on [r_min², r_max²]: its quartiles within 0.02 of the uniform's
    q = np.quantile((r**2 - 0.16) / (0.9025 - 0.16), [0.25, 0.5, 0.75])
    np.testing.assert_allclose(q, [0.25, 0.5, 0.75], atol=0.02)
    phase = np.exp(model.layer_params(0)["theta"])
    assert phase.min() >= 0 and phase.max() <= math.pi / 10
    assert np.quantile(phase, 0.5) == pytest.approx(math.pi / 20, rel=0.05)
    # γ = √(1 − |λ|²) keeps a mode's stationary variance at its input's: Σ γ²|λ|^{2k} = 1
    p = model.cell.prepare(model.layer_params(0))
    np.testing.assert_allclose(p["gamma2"][:2000] ** 2, 1 - r**2, rtol=1e-12)


def test_token_ids_take_the_columns_of_b_and_d():
    model = lru(input_size=5, hidden_size=4, output_size=5, num_layers=2, seed=1)
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 5, (6, 3))
    errors = check_gradients(model, ids, rng.integers(0, 5, (6, 3)))
    assert max(errors.values()) < 1e-6, errors
    one_hot = np.eye(5)[ids]
    np.testing.assert_allclose(model.forward(ids)[0], model.forward(one_hot)[0], rtol=1e-12)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"hidden_size": 7}, r"^hidden_size: got 7; an LRU needs a multiple of 2$"),
        (
            {"parameterisation": "direct"},
            r"^normalise: got true \(the default\) with .* set normalise = false$",
        ),
        ({"r_min": 0.9, "r_max": 0.5}, r"^r_max: got 0.5; expected in \(r_min = 0.9, 1\]"),
        ({"theta_max": 7.0}, r"^theta_max: got 7.0"),
        ({"mixing": "glu"}, r"^mixing: got 'glu'; expected one of mlp, none"),
        ({"init": "identity"}, r"^init: got 'identity', but the LRU draws λ from its ring"),
        ({"spectral_radius": 0.9}, r"^spectral_radius: got 0.9, but the LRU's radius"),
    ],
)
def test_bad_options_are_one_line(kw, message):
    with pytest.raises(ValueError, match=message) as raised:
        lru(**kw)
    assert "\n" not in str(raised.value)


def test_the_diagnosis_prints_the_theory_and_the_figure_draws_it():
    need = pytest.importorskip  # matplotlib is the report extra
    need("matplotlib")
    from rnnlab.diagnostics.figures import lag_profile
    from rnnlab.diagnostics.record import Snapshot

    model = lru(r_min=0.8, r_max=0.95, hidden_size=16)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 4, 3)), rng.standard_normal((30, 4, 2))
    d = rnnlab.diagnose(model, X, Y, loss="mse")
    rate = moduli(model).max()
    assert exact_rate(d) == pytest.approx(rate, rel=1e-12)
    (note,) = [n for n in d.verdict.evidence if "theory gives" in n]
    assert f"{rate:.4g}^τ exactly" in note
    # the lag profile lies under ‖Π J‖ = ρ^τ, which bounds it
    profile = d.flow.lag.profile[-1]
    assert np.all(profile <= rate ** np.arange(profile.size) * (1 + 1e-9))
    fig = lag_profile([Snapshot(0, d)])
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert f"‖ΠJ‖ = {rate:.4g}^τ (theory)" in labels


def test_the_label_says_what_differs_from_the_paper():
    assert lru().cell.label() == "LRU"
    assert lru(parameterisation="direct", normalise=False).cell.label() == "LRU (λ direct, no γ)"
    assert lru(r_min=0.9, r_max=0.999).cell.label() == "LRU (|λ| ∈ [0.9, 0.999])"
