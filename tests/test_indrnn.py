"""IndRNN (Li et al. 2018), the cell added through the registry's door: what is its own
beyond the conformance battery (tests/test_conformance.py, which proves its gradients
against both oracles and its step Jacobian entry by entry): its constraint, and the layers
above that read the registry."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.diagnostics import RunInfo, diagnose, remedies, weight_spectra
from rnnlab.diagnostics.jacobian import pascanu_bound
from rnnlab.engine.cells import CELLS
from rnnlab.engine.model import SequenceModel, build
from rnnlab.experiments.config import ConfigError
from rnnlab.experiments.prepared import build as build_run
from rnnlab.experiments.prepared import validate
from rnnlab.tasks import get as get_task
from rnnlab.train import TrainConfig, fit


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
    assert [r.name for r in d.verdict.remedies][:2] == ["orthogonal_w", "gated_cell"]


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
