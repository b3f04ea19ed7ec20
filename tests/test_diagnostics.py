"""Diagnostics against known answers: linear RNNs with W = ρQ, the Pascanu bound, finite
differences of h_t and L_t with respect to h_k, dead and saturated units, 10,000-step
products, and run histories."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnlab
from rnnlab.diagnostics import (
    Diagnosis,
    DiagnosisCallback,
    DiagnosisOptions,
    RunInfo,
    Thresholds,
    decay_factor,
    diagnose,
    gradient_flow,
    history_stats,
    horizon,
    jacobian_products,
    judge,
    lag_profile,
    product_log_norms,
    remedies,
    weight_contributions,
    weight_spectra,
)
from rnnlab.engine.init import orthogonal

from conftest import make_model


def linear_rnn(rho: float, H: int = 8, D: int = 3, K: int = 2, seed: int = 0) -> rnnlab.RNN:
    """Identity φ and W = ρQ: ∂L_T/∂h_{T−τ} = ∂L_T/∂h_T (ρQ)^τ, whose norm ratio is ρ^τ."""
    model = rnnlab.RNN(
        input_size=D,
        hidden_size=H,
        output_size=K,
        nonlinearity="identity",
        dtype="float64",
        seed=seed,
    )
    model.params["W_0"] = rho * orthogonal(np.random.default_rng(seed + 1), H)
    return model


def regression_batch(rng, T: int, B: int, D: int = 3, K: int = 2):
    return rng.standard_normal((T, B, D)), rng.standard_normal((T, B, K))


# -- known answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rho", "label"),
    [(0.5, "vanishing"), (0.9, "vanishing"), (1.0, "healthy"), (1.1, "exploding")],
)
def test_linear_rnn_lag_profile_is_rho_to_the_lag(rho, label):
    model = linear_rnn(rho)
    X, Y = regression_batch(np.random.default_rng(2), T=101, B=3)
    d = diagnose(model, X, Y, loss="mse", dependency_length=100)
    tau = np.arange(101)
    np.testing.assert_allclose(d.flow.lag.profile[0], rho**tau, rtol=1e-10, atol=0)
    assert d.label == label
    assert d.flow.decay_factor == pytest.approx(rho, rel=1e-10)
    assert d.flow.ratio == pytest.approx(rho**100, rel=1e-10)
    # Π (ρQ) has norm ρ^τ exactly, and the Pascanu bound (γ = 1) is tight
    jp = d.jacobians[0]
    lags = np.arange(102)  # τ = 0..t, down to h_0
    np.testing.assert_allclose(jp.log_norm, lags[:, None] * np.log(rho) * np.ones(3), atol=1e-11)
    np.testing.assert_allclose(jp.bound_log, lags * np.log(rho), atol=1e-11)
    np.testing.assert_allclose(jp.lyapunov, np.log(rho), atol=1e-13)
    spectrum = weight_spectra(model)[0]
    assert spectrum.spectral_radius == pytest.approx(rho)
    np.testing.assert_allclose(spectrum.singular_values, rho)


def test_tanh_lag_profile_stays_under_the_pascanu_bound():
    H = 16
    model = rnnlab.RNN(input_size=3, hidden_size=H, output_size=2, dtype="float64", seed=0)
    W = np.random.default_rng(5).standard_normal((H, H))
    model.params["W_0"] = 0.8 * W / np.linalg.norm(W, 2)  # σ_max(W) = 0.8, not orthogonal
    X, Y = regression_batch(np.random.default_rng(6), T=60, B=4)
    d = diagnose(model, X, Y, loss="mse", dependency_length=50, jacobian_sequences=4)
    bound = 0.8 ** np.arange(60)
    assert np.all(d.flow.lag.profile[0] <= bound * (1 + 1e-12))
    assert 0.8**50 == pytest.approx(1.43e-5, rel=2e-3)  # the seed's example
    assert d.flow.lag.profile[0][50] <= 0.8**50
    per_sequence = d.flow.lag.norms[0] / d.flow.lag.norms[0][:1]
    assert np.all(per_sequence <= bound[:, None] * (1 + 1e-12))
    jp = d.jacobians[0]
    assert jp.sigma_max == pytest.approx(0.8)
    assert np.all(jp.log_norm <= jp.bound_log[:, None] + 1e-12)
    assert d.label == "vanishing"
    assert any("vanishing is certain" in e for e in d.verdict.evidence)


# -- brute force: finite differences ---------------------------------------------------------


def _state_after(model, X, state_k):
    """The state after running X from state_k, flattened per sequence: (B, S)."""
    _, final = model.forward(X, h0=state_k)
    parts = final if isinstance(final, tuple) else (final,)
    return np.concatenate([p[-1] for p in parts], axis=1)


@pytest.mark.parametrize(("cell", "nonlinearity"), [("rnn", "tanh"), ("lstm", None), ("gru", None)])
def test_jacobian_products_match_finite_differences(cell, nonlinearity):
    H, T, B = 3, 6, 2
    model = make_model(
        cell, nonlinearity, input_size=2, hidden_size=H, output_size=2, dtype="float64", seed=3
    )
    rng = np.random.default_rng(4)
    X, Y = regression_batch(rng, T, B, D=2)
    trace = model.loss_and_grads(X, Y, loss="mse").trace
    (jp,) = jacobian_products(model, trace, sequences=None)
    states = trace.layers[0].states  # each (T+1, B, H)
    S, eps = len(states) * H, 1e-6
    for k in range(T):
        J = np.empty((B, S, S))
        for i in range(S):
            cols = []
            for sign in (1, -1):
                parts = [s[k][None].copy() for s in states]  # (1, B, H) each
                parts[i // H][0, :, i % H] += sign * eps
                h0 = tuple(parts) if len(parts) == 2 else parts[0]
                cols.append(_state_after(model, X[k:], h0))
            J[:, :, i] = (cols[0] - cols[1]) / (2 * eps)
        fd = np.linalg.norm(J, ord=2, axis=(1, 2))
        np.testing.assert_allclose(np.exp(jp.log_norm[T - k]), fd, rtol=1e-6)


def _losses_after_perturbing(model, trace, X, Y, t, layer, k, dh):
    """L_t of each sequence (the engine's cross-entropy, / B) when h^layer_k is moved by dh
    (B, H) and everything that depends on it is recomputed: layer `layer` from step k on,
    the layers above from step k (their step k reads h^layer_k)."""
    outs = None  # h of the current layer at steps k..T
    for lv in range(layer, model.num_layers):
        lt, p = trace.layers[lv], model.layer_params(lv)
        if lv == layer:
            state = tuple(s[k].copy() for s in lt.states)
            state = (state[0] + dh,) + state[1:]
            inputs = X[k:] if lv == 0 else trace.layers[lv - 1].h[k + 1 :]
            hs = [state[0]]
        else:
            state = tuple(s[k - 1] for s in lt.states)
            inputs, hs = outs, []
        for x in inputs:
            state, _ = model.cell.step(x @ p["U"].T + p["b"], state, p)
            hs.append(state[0])
        outs = np.stack(hs)
    o = outs[t - k] @ model.params["V"].T + model.params["c"]  # (B, K)
    B = o.shape[0]
    logz = np.log(np.exp(o - o.max(1, keepdims=True)).sum(1)) + o.max(1)
    return (logz - o[np.arange(B), Y[t - 1]]) / B


@pytest.mark.parametrize(("cell", "nonlinearity"), [("rnn", "tanh"), ("lstm", None), ("gru", None)])
@pytest.mark.parametrize("step", [None, 4])
def test_lag_profile_matches_finite_differences_of_L_t(cell, nonlinearity, step):
    H, T, B, L = 3, 6, 3, 2
    model = make_model(
        cell,
        nonlinearity,
        input_size=2,
        hidden_size=H,
        output_size=4,
        num_layers=L,
        dtype="float64",
        seed=7,
    )
    rng = np.random.default_rng(8)
    X = rng.standard_normal((T, B, 2))
    Y = rng.integers(0, 4, (T, B))
    res = model.loss_and_grads(X, Y)  # loss on every step: the lag profile needs its own pass
    lag = lag_profile(model, res.trace, Y, step=step)
    t = T if step is None else step
    eps = 1e-6
    for k in range(1, t + 1):
        for layer in range(L):
            grad = np.empty((B, H))
            for i in range(H):
                dh = np.zeros((B, H))
                dh[:, i] = eps  # every sequence at once: they are independent
                plus = _losses_after_perturbing(model, res.trace, X, Y, t, layer, k, dh)
                minus = _losses_after_perturbing(model, res.trace, X, Y, t, layer, k, -dh)
                grad[:, i] = (plus - minus) / (2 * eps)
            np.testing.assert_allclose(
                lag.norms[layer, t - k], np.linalg.norm(grad, axis=1), rtol=1e-6, atol=1e-12
            )
    normalised = (lag.norms / lag.norms[:, :1]).mean(axis=2)
    np.testing.assert_allclose(lag.profile, normalised, rtol=1e-12)


def test_reusing_a_last_step_trace_equals_the_masked_pass():
    model = rnnlab.GRU(
        input_size=3, hidden_size=5, output_size=2, num_layers=2, dtype="float64", seed=0
    )
    X, Y = regression_batch(np.random.default_rng(1), T=12, B=4)
    last = np.zeros((12, 4))
    last[-1] = 1
    reused = lag_profile(
        model,
        model.loss_and_grads(X, Y, "mse", last).trace,
        Y,
        loss="mse",
        mask=last,
        sequences=np.array([3, 1]),
    )
    recomputed = lag_profile(
        model, model.loss_and_grads(X, Y, "mse").trace, Y, loss="mse", sequences=np.array([3, 1])
    )
    assert reused.sequences == recomputed.sequences == [3, 1]
    np.testing.assert_allclose(reused.norms, recomputed.norms, rtol=1e-12)


@pytest.mark.parametrize(("cell", "token_ids"), [("gru", False), ("rnn", True)])
def test_weight_contributions_are_each_steps_share(cell, token_ids):
    T, B, H, D = 7, 5, 4, 6
    model = make_model(
        cell,
        "tanh",
        input_size=D,
        hidden_size=H,
        output_size=3,
        num_layers=2,
        dtype="float64",
        seed=2,
    )
    rng = np.random.default_rng(3)
    X = rng.integers(0, D, (T, B)) if token_ids else rng.standard_normal((T, B, D))
    res = model.loss_and_grads(X, rng.integers(0, 3, (T, B)))
    dW, dU = weight_contributions(model, res.trace, X)
    for layer, lt in enumerate(res.trace.layers):
        inputs = X if layer == 0 else res.trace.layers[layer - 1].h[1:]
        if token_ids and layer == 0:
            inputs = np.eye(D)[inputs]  # (T, B, D) one-hot
        W_parts = np.einsum("tbg,tbh->tgh", lt.dah, lt.h[:-1])
        U_parts = np.einsum("tbg,tbd->tgd", lt.dax, inputs)
        np.testing.assert_allclose(W_parts.sum(0), res.grads[f"W_{layer}"], atol=1e-12)
        np.testing.assert_allclose(U_parts.sum(0), res.grads[f"U_{layer}"], atol=1e-12)
        np.testing.assert_allclose(dW[layer], np.linalg.norm(W_parts, axis=(1, 2)), rtol=1e-10)
        np.testing.assert_allclose(dU[layer], np.linalg.norm(U_parts, axis=(1, 2)), rtol=1e-10)


# -- activations -----------------------------------------------------------------------------


def test_relu_with_very_negative_biases_is_dead_and_cuts_the_gradient():
    model = rnnlab.RNN(
        input_size=3, hidden_size=8, output_size=2, nonlinearity="relu", dtype="float64", seed=0
    )
    model.params["b_0"][:] = -100.0
    X, Y = regression_batch(np.random.default_rng(0), T=20, B=4)
    d = diagnose(model, X, Y, loss="mse")
    (a,) = d.activations
    assert a.dead_fraction == 1.0
    assert a.inactive_fraction == 1.0
    assert a.mean_dphi == 0.0
    assert np.all(d.flow.lag.profile[0][1:] == 0)
    assert d.flow.decay_factor == 0.0
    assert d.flow.horizon == 0
    assert d.label == "vanishing"
    assert np.all(d.jacobians[0].log_norm[1:] == -np.inf)
    json.dumps(d.to_dict(), allow_nan=False)  # −inf became None


def test_tanh_with_huge_U_is_saturated():
    model = rnnlab.RNN(input_size=3, hidden_size=8, output_size=2, dtype="float64", seed=0)
    model.params["U_0"] *= 1e4
    X, Y = regression_batch(np.random.default_rng(0), T=20, B=4)
    (a,) = diagnose(model, X, Y, loss="mse").activations
    assert a.saturation > 0.99
    assert a.mean_dphi < 0.01
    assert a.dead_fraction is None and a.gate is None


def test_forget_and_update_gates():
    X, Y = regression_batch(np.random.default_rng(0), T=10, B=3)
    lstm = rnnlab.LSTM(
        input_size=3, hidden_size=4, output_size=2, dtype="float64", seed=0, forget_bias=20.0
    )
    (a,) = diagnose(lstm, X, Y, loss="mse").activations
    assert a.gate == "f" and a.gate_mean == pytest.approx(1.0, abs=1e-6)
    assert a.gate_histogram[-1] == 1.0 and a.gate_histogram.sum() == pytest.approx(1.0)
    gru = rnnlab.GRU(input_size=3, hidden_size=4, output_size=2, dtype="float64", seed=0)
    gru.params["b_0"][4:8] = -30.0  # z ≈ 0
    (a,) = diagnose(gru, X, Y, loss="mse").activations
    assert a.gate == "z" and a.gate_mean < 1e-6 and a.gate_histogram[0] == 1.0


def test_spectra_of_gate_blocks():
    model = rnnlab.LSTM(input_size=2, hidden_size=5, output_size=2, num_layers=2, seed=0)
    spectra = weight_spectra(model)
    assert [s.block for s in spectra[:5]] == ["W", "W_i", "W_f", "W_g", "W_o"]
    W_f = model.params["W_1"][5:10].astype(np.float64)
    s = spectra[7]
    assert (s.layer, s.block) == (1, "W_f")
    assert s.sigma_max == pytest.approx(np.linalg.norm(W_f, 2))
    assert s.spectral_radius == pytest.approx(np.abs(np.linalg.eigvals(W_f)).max())
    assert spectra[5].spectral_radius is None


# -- stability -------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.5, 2.0])
def test_products_over_ten_thousand_steps_stay_finite(rho):
    T, H = 10_000, 3
    Q = orthogonal(np.random.default_rng(0), H)
    logs = product_log_norms(rho * Q[None] for _ in range(T))
    np.testing.assert_allclose(logs[:, 0], np.arange(T + 1) * np.log(rho), rtol=1e-12)
    # the same through a model: U = 0, b = 0, h0 = 0 keep h = 0, so J_t = diag(tanh'(0)) ρQ
    model = rnnlab.RNN(input_size=1, hidden_size=H, output_size=1, dtype="float64", seed=0)
    model.params |= {"W_0": rho * Q, "U_0": np.zeros((H, 1)), "b_0": np.zeros(H)}
    X = np.ones((T, 1, 1))
    trace = model.loss_and_grads(X, np.zeros((T, 1, 1)), "mse", np.zeros((T, 1))).trace
    (jp,) = jacobian_products(model, trace, sequences=1)
    assert np.all(np.isfinite(jp.log_norm))
    assert jp.log_norm[T, 0] == pytest.approx(T * np.log(rho), rel=1e-12)
    assert jp.lyapunov[0] == pytest.approx(np.log(rho), rel=1e-12)


def test_products_with_zero_or_non_finite_steps():
    J = np.stack([np.eye(2), np.eye(2), np.eye(2)])  # three sequences
    steps = [2 * J, J.copy(), J.copy()]
    steps[1][1] = 0.0  # sequence 1's product is exactly 0 from τ = 2
    steps[1][2, 0, 0] = np.nan  # sequence 2's is not finite from τ = 2
    logs = product_log_norms(steps)
    np.testing.assert_allclose(logs[:, 0], [0, np.log(2), np.log(2), np.log(2)])
    assert logs[1, 1] == np.log(2) and np.all(logs[2:, 1] == -np.inf)
    assert np.all(np.isnan(logs[2:, 2]))


# -- summary numbers, history, verdict -------------------------------------------------------


def test_summary_numbers_of_a_profile():
    p = 0.5 ** np.arange(20)
    assert decay_factor(p) == pytest.approx(0.5)
    assert horizon(p, 1e-3) == 9  # 0.5^9 ≈ 2e-3, 0.5^10 ≈ 9.8e-4
    assert horizon(np.ones(20)) == 19  # never drops: the whole window
    assert decay_factor(np.array([1.0, 0.1, 0.0])) == 0.0
    assert np.isnan(decay_factor(np.array([1.0])))


def test_history_spikes_and_non_finite_steps():
    norms = np.ones(100)
    norms[60] = 50.0  # > 10× the running median of 1
    norms[70] = 9.0  # under 10×: not a spike
    norms[80] = np.nan
    norms[2] = 100.0  # too early: fewer than 5 earlier norms
    h = history_stats(norms)
    assert h.spikes == [60]
    assert h.nonfinite_steps == 1
    assert h.median_norm == 1.0
    assert history_stats(norms, nonfinite_steps=3).nonfinite_steps == 3
    v = judge(run=RunInfo(cell="rnn", nonlinearity="tanh"), history=h)
    assert v.label == "exploding"
    assert v.suggested_clip == 2.0
    assert v.remedies[0].name == "clip_norm"
    assert "0.5–10" in v.remedies[0].action
    assert judge(run=RunInfo(cell="rnn"), history=history_stats(np.ones(50))).label == "healthy"


def test_remedies_are_ranked_and_say_what_is_in_use():
    tanh = RunInfo(cell="rnn", nonlinearity="tanh", init="pytorch")
    names = [r.name for r in remedies("vanishing", tanh, None)]
    modern = ["orthogonal_cell", "lru_cell"]
    assert names == ["relu_identity", "gated_cell", "orthogonal_w", *modern]
    irnn = RunInfo(cell="rnn", nonlinearity="relu", init="identity")
    ranked = remedies("vanishing", irnn, None)
    assert [(r.name, r.in_use) for r in ranked] == [
        ("gated_cell", False),
        ("orthogonal_cell", False),
        ("lru_cell", False),
        ("relu_identity", True),
        ("orthogonal_w", True),
    ]
    clipped = RunInfo(cell="lstm", clip_mode="norm", clip_threshold=1.0)
    ranked = remedies("exploding", clipped, 3.0)
    assert [(r.name, r.in_use) for r in ranked] == [
        ("orthogonal_w", False),
        ("orthogonal_cell", False),
        ("clip_norm", True),
        ("gated_cell", True),
    ]
    assert "6" in ranked[2].action  # 2 × the median norm 3
    # each modern remedy names its paper, and the cell that already is one says so
    for r in remedies("vanishing", RunInfo(cell="rnn", nonlinearity="tanh"), None)[-2:]:
        assert "20" in r.action and "cell='" in r.action
    lru = [(r.name, r.in_use) for r in remedies("vanishing", RunInfo(cell="lru"), None)]
    assert lru == [("ring_radius", False), ("train_longer", False)]
    long_range = RunInfo.from_model(
        rnnlab.SequenceModel(cell="lru", input_size=1, hidden_size=2, output_size=1, r_min=0.9)
    )
    ring = remedies("vanishing", long_range, None)
    assert [(r.name, r.in_use) for r in ring] == [("train_longer", False), ("ring_radius", True)]
    assert "learns how long it remembers" in ring[0].reason  # not "the gradient reaches"
    mingru = remedies("vanishing", RunInfo(cell="mingru"), None)
    assert [(r.name, r.in_use) for r in mingru] == [
        ("train_longer", False),
        ("lru_cell", False),
        ("min_cells", True),
        ("gated_cell", True),
    ]
    # a cell with no W to rescale is not told to rescale one when it explodes
    for cell in ("lru", "mingru", "minlstm", "exprnn"):
        names = [r.name for r in remedies("exploding", RunInfo(cell=cell), 1.0)]
        assert "orthogonal_w" not in names and names[0] == "clip_norm", cell


def test_diagnosis_is_json_safe_readable_and_changes_nothing():
    model = rnnlab.LSTM(input_size=3, hidden_size=4, output_size=2, num_layers=2, seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((15, 3, 3)).astype(np.float32)
    Y = rng.integers(0, 2, (15, 3))
    before = {k: v.copy() for k, v in model.params.items()}
    d = diagnose(
        model,
        X,
        Y,
        dependency_length=10,
        rng=np.random.default_rng(1),
        jacobian_sequences=2,
        grad_norms=[1.0, 2.0, np.inf],
    )
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
    out = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert out["verdict"]["label"] == d.label == "exploding"  # the history's non-finite step
    assert out["flow"]["lag"]["step"] == 15
    assert len(out["flow"]["delta_norm"]["c"]) == 2
    assert len(out["jacobians"][0]["log_norm"]) == 16
    assert len(out["jacobians"][0]["sequences"]) == 2
    assert isinstance(out["spectra"][1]["eigenvalues"][0], list)  # [real, imag]
    text = str(d)
    assert text.startswith("Diagnosis: EXPLODING")
    assert "remedies" in text and "τ = 10" in text


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_stored_diagnosis_reads_back_as_the_diagnosis_it_was(cell):
    model = make_model(cell, "relu", input_size=2, hidden_size=4, output_size=1, dtype="float64")
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((12, 3, 2)), rng.standard_normal((12, 3, 1))
    d = diagnose(model, X, Y, loss="mse", dependency_length=6, grad_norms=[1.0, np.inf])
    record = json.loads(json.dumps({"step": 7} | d.to_dict(), allow_nan=False))
    back = Diagnosis.from_dict(record)  # the step is not the Diagnosis's: ignored
    assert back.to_dict() == d.to_dict() and str(back) == str(d)
    np.testing.assert_array_equal(back.flow.lag.profile, d.flow.lag.profile)
    assert back.flow.lag.norms.size == 0  # to_dict leaves the per-sequence norms out
    for a, b in zip(back.spectra, d.spectra, strict=True):  # complex, from [real, imag]
        assert (a.eigenvalues is None) is (b.eigenvalues is None)
        if b.eigenvalues is not None:
            np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    assert back.verdict == d.verdict and back.run == d.run and back.thresholds == d.thresholds
    with pytest.raises(ValueError, match=r"^verdict\.label: got nothing; expected a str$"):
        Diagnosis.from_dict(record | {"verdict": {"evidence": []}})


def test_gradient_flow_of_a_training_step_with_sampled_sequences():
    model = linear_rnn(0.9)
    X, Y = regression_batch(np.random.default_rng(0), T=30, B=6)
    res = model.loss_and_grads(X, Y, "mse")
    flow = gradient_flow(model, res.trace, X, Y, loss="mse", sequences=2, dependency_length=20)
    assert flow.lag.norms.shape == (1, 30, 2)
    assert flow.ratio == pytest.approx(0.9**20, rel=1e-10)
    assert flow.delta_norm["h"].shape == (1, 31)
    np.testing.assert_allclose(
        flow.delta_norm["h"][0], np.linalg.norm(res.trace.layers[0].delta, axis=(1, 2))
    )


def test_callback_records_a_diagnosis_every_n_steps():
    model = linear_rnn(0.5)
    X, Y = regression_batch(np.random.default_rng(0), T=30, B=2)
    probe = DiagnosisCallback(model, X, Y, None, 3, loss="mse", dependency_length=20)
    norms = [1.0] * 8 + [50.0]  # a spike at step 9
    out = [probe(step, model, grad_norm=n) for step, n in enumerate(norms, 1)]
    assert [r is not None for r in out] == [False, False, True] * 3
    assert [r["step"] for r in probe.records] == [3, 6, 9]
    assert [r["verdict"]["label"] for r in probe.records] == ["vanishing"] * 2 + ["exploding"]
    assert probe.records[-1]["verdict"]["history"]["spikes"] == [8]  # 0-based
    assert probe.latest is not None and probe.latest.flow.ratio == pytest.approx(0.5**20)
    json.dumps(probe.records, allow_nan=False)


def test_spikes_in_a_clipped_run_are_evidence_not_the_verdict():
    history = history_stats([1.0] * 8 + [50.0])
    assert history.spikes == [8]
    clipped = RunInfo(cell="lstm", clip_mode="norm", clip_threshold=1.0)
    v = judge(run=clipped, history=history)
    assert v.label == "healthy"
    assert any("tamed by norm clipping" in e for e in v.evidence)
    assert judge(run=RunInfo(cell="lstm"), history=history).label == "exploding"
    nonfinite = history_stats([1.0] * 8 + [float("nan")])
    assert judge(run=clipped, history=nonfinite).label == "exploding"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": 1}, "step: got 1; expected an integer 2 <= step <= 10"),
        ({"dependency_length": 10}, "dependency_length: got 10; expected an integer 1 <="),
        ({"jacobian_sequences": -1}, "jacobian_sequences: got -1; expected an integer >= 0"),
        ({"mask": np.zeros((10, 2))}, "step: got 10; the mask gives L_10 no weight"),
        ({"grad_norms": [[1.0]]}, "grad_norms: got shape (1, 1); expected one norm per step"),
    ],
)
def test_bad_arguments_get_a_one_line_error(kwargs, message):
    model = linear_rnn(0.9)
    X, Y = regression_batch(np.random.default_rng(0), T=10, B=2)
    with pytest.raises(ValueError) as err:
        diagnose(model, X, Y, loss="mse", **kwargs)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Thresholds(vanishing=2e3), "vanishing: got 2000.0; expected below exploding"),
        (lambda: Thresholds(spike_window=0), "spike_window: got 0; expected an integer >= 1"),
        (lambda: RunInfo(cell="transformer"), "cell: got 'transformer'; expected one of rnn"),
        (lambda: RunInfo(cell="rnn", clip_mode="max"), "clip_mode: got 'max'; expected one of"),
        (lambda: horizon(np.ones(3), threshold=0), "threshold: got 0; expected a finite number"),
    ],
)
def test_bad_settings_get_a_one_line_error(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


# -- DiagnosisOptions: one object for the options of every entry point ----------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dependency_length": 0}, "dependency_length: got 0; expected an integer >= 1"),
        ({"dependency_length": 2.5}, "dependency_length: got 2.5; expected an integer >= 1"),
        ({"jacobian_sequences": -1}, "jacobian_sequences: got -1; expected an integer >= 0"),
        ({"jacobian_sequences": True}, "jacobian_sequences: got True; expected an integer >= 0"),
        ({"rng": 0}, "rng: got int; expected a numpy.random.Generator or None"),
        ({"run": "lstm"}, "run: got str; expected a RunInfo or None"),
        ({"thresholds": 1e-3}, "thresholds: got float; expected a Thresholds"),  # None: defaults
    ],
)
def test_bad_options_get_a_one_line_error_naming_the_option(options, message):
    model = linear_rnn(0.9)
    X, Y = regression_batch(np.random.default_rng(0), T=10, B=2)
    calls = [
        lambda: DiagnosisOptions(**options),
        lambda: diagnose(model, X, Y, loss="mse", **options),
        lambda: DiagnosisCallback(model, X, Y, loss="mse", **options),
        lambda: diagnose(model, X, Y, loss="mse", options=DiagnosisOptions(), **options),
    ]
    for call in calls:
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == message
    with pytest.raises(ValueError, match=r"^options: got dict; expected a DiagnosisOptions"):
        diagnose(model, X, Y, loss="mse", options=options)
    with pytest.raises(TypeError, match=r"^jacobian_sequence: unexpected keyword argument"):
        diagnose(model, X, Y, loss="mse", jacobian_sequence=2)


def test_options_and_their_keyword_form_give_the_same_diagnosis():
    model = rnnlab.LSTM(input_size=3, hidden_size=4, output_size=2, seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((12, 6, 3)), rng.integers(0, 2, (12, 6))
    settings = dict(
        dependency_length=7,
        jacobian_sequences=3,
        run=RunInfo(cell="lstm", clip_mode="norm", clip_threshold=1.0),
        thresholds=Thresholds(vanishing=0.05, horizon=0.01),
    )
    by_keywords = diagnose(model, X, Y, rng=np.random.default_rng(5), **settings)
    options = DiagnosisOptions(rng=np.random.default_rng(5), **settings)
    by_options = diagnose(model, X, Y, options=options)
    assert by_options.to_dict(per_sequence=True) == by_keywords.to_dict(per_sequence=True)
    # the options took effect: none of these is a default
    assert by_options.flow.ratio_lag == 7 and by_options.flow.horizon_threshold == 0.01
    assert by_options.run.clip_mode == "norm" and by_options.thresholds.vanishing == 0.05
    (jp,) = by_options.jacobians
    assert jp.sequences != [0, 1, 2] and len(jp.sequences) == 3  # drawn with the rng
    assert diagnose(model, X, Y).flow.ratio_lag == 11  # the defaults: the longest lag, t − 1


def test_a_keyword_beside_options_overrides_that_field_only():
    model = linear_rnn(0.9)
    X, Y = regression_batch(np.random.default_rng(0), T=30, B=4)
    base = DiagnosisOptions(dependency_length=20, jacobian_sequences=2)
    d = diagnose(model, X, Y, loss="mse", options=base, jacobian_sequences=0)
    assert d.jacobians == [] and d.flow.ratio_lag == 20
    assert d.flow.ratio == pytest.approx(0.9**20, rel=1e-10)
    same = diagnose(model, X, Y, loss="mse", dependency_length=20, jacobian_sequences=0)
    assert d.to_dict(per_sequence=True) == same.to_dict(per_sequence=True)
    assert base.jacobian_sequences == 2  # options are frozen: the call changed nothing


def test_callback_with_options_records_what_its_keyword_form_records():
    model = linear_rnn(0.5)
    X, Y = regression_batch(np.random.default_rng(0), T=30, B=4)
    by_keywords = DiagnosisCallback(
        model, X, Y, None, 2, loss="mse", dependency_length=20, jacobian_sequences=1
    )
    options = DiagnosisOptions(dependency_length=20, jacobian_sequences=1)
    by_options = DiagnosisCallback(model, X, Y, None, 2, loss="mse", options=options)
    assert by_options.options.run == RunInfo.from_model(model)  # the model's, as before
    for probe in (by_keywords, by_options):
        for step, norm in enumerate([1.0, 2.0, 1.0, 50.0], 1):
            probe(step, model, grad_norm=norm)
    assert [r["step"] for r in by_options.records] == [2, 4]
    assert by_options.records == by_keywords.records
    assert by_options.records[-1]["flow"]["ratio_lag"] == 20
    assert len(by_options.records[-1]["jacobians"][0]["sequences"]) == 1
    assert [by_options.due(s) for s in (1, 2, 3, 4)] == [False, True, False, True]


def test_a_vanishing_lstm_is_told_to_open_its_forget_gate_first():
    plain = rnnlab.LSTM(input_size=2, hidden_size=4, output_size=1)
    first = remedies("vanishing", RunInfo.from_model(plain), 1.0)[0]
    assert first.name == "forget_bias" and not first.in_use
    opened = rnnlab.LSTM(input_size=2, hidden_size=4, output_size=1, forget_bias=1.0)
    ranked = remedies("vanishing", RunInfo.from_model(opened), 1.0)
    assert [(r.name, r.in_use) for r in ranked] == [  # those in use move last
        ("chrono_init", False),
        ("orthogonal_w", False),
        ("forget_bias", True),
        ("gated_cell", True),
    ]
    chrono = rnnlab.LSTM(input_size=2, hidden_size=4, output_size=1, init="chrono", t_max=50)
    ranked = remedies("vanishing", RunInfo.from_model(chrono), 1.0)
    assert [(r.name, r.in_use) for r in ranked][-3:] == [  # chrono sets b_f: both in use
        ("forget_bias", True),
        ("chrono_init", True),
        ("gated_cell", True),
    ]
    assert "Tallec & Ollivier 2018" in ranked[-2].action
    rescaled = rnnlab.RNN(input_size=2, hidden_size=4, output_size=1, spectral_radius=0.9)
    assert RunInfo.from_model(rescaled).spectral_radius == 0.9


def test_decay_factor_tells_underflow_from_a_cut():
    underflow = np.concatenate([0.5 ** np.arange(120), np.zeros(30)])  # 0.5^119 ≈ 1.5e-36
    assert decay_factor(underflow) == pytest.approx(0.5, rel=1e-12)
    cut = np.array([1.0, 0.5, 0.25, 0.0, 0.0])  # dead units stop the gradient outright
    assert decay_factor(cut) == 0.0
