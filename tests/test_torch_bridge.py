"""The PyTorch bridge: the unrolled twin equals the fused modules and the numpy engine, watch()
equals gradient_flow, and a diagnostic pass (or a monitored training run) changes nothing."""

from __future__ import annotations

import importlib.util
import random
import warnings

import numpy as np
import pytest

from conftest import need

torch = need("torch")  # under CI=1 a failure, not a skip
F = torch.nn.functional
nn = torch.nn

import rnnlab.torch as rt  # noqa: E402
from rnnlab.diagnostics import (  # noqa: E402
    DiagnosisOptions,
    RunInfo,
    Thresholds,
    diagnose,
    lag_profile,
)
from rnnlab.experiments.store import Store  # noqa: E402
from rnnlab.tasks import get as get_task  # noqa: E402
from rnnlab.torch.diagnosis import lstm_projection_jacobian  # noqa: E402
from rnnlab.torch.steps import caches, lstm_step  # noqa: E402
from rnnlab.torch.twin import twinned  # noqa: E402

f64 = torch.float64
MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These graphs are tiny: with a busy machine, waiting on torch's intra-op threads cost
    more than the work (40 ms per backward pass); one thread runs them in microseconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rel_err(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-300))


class Head(nn.Module):
    """A recurrent module and a linear readout, time-major or batch-first."""

    def __init__(self, rnn, K):
        super().__init__()
        self.rnn = rnn
        S = getattr(rnn, "proj_size", 0) or rnn.hidden_size
        self.readout = nn.Linear(S, K, dtype=rnn.weight_hh_l0.dtype)

    def forward(self, x):
        return self.readout(self.rnn(x)[0])


def engine_loss_fn(kind, batch_first):
    """The engine's loss L = Σ_t Σ_b m_tb L_tb / B, for batches (X, Y, mask) time-major."""

    def loss_fn(model, batch):
        X, Y, mask = (torch.from_numpy(a) for a in batch)
        o = model(X.transpose(0, 1) if batch_first else X)
        o = o.transpose(0, 1) if batch_first else o
        B = X.shape[1]
        if kind == "mse":
            return (mask * ((o - Y) ** 2).mean(-1)).sum() / B
        logp = F.log_softmax(o, dim=-1).gather(-1, Y[..., None])[..., 0]
        return -(mask * logp).sum() / B

    return loss_fn


# -- the twin runs PyTorch's equations -------------------------------------------------------


def test_twin_equals_fused_module_outputs_and_gradients():
    """Outputs, returned states, ∂L/∂x and ∂L/∂hx through the twin equal the fused module's,
    and the pass's ‖∂L/∂θ‖ (W_hh, b_hh, W_hr formed once per layer) equals the fused one."""
    torch.manual_seed(0)
    configs = [
        (cls, kw)
        for cls in (nn.RNN, nn.LSTM, nn.GRU)
        for kw in ({}, {"bidirectional": True}, {"batch_first": True}, {"bias": False})
    ]
    configs += [(nn.RNN, {"nonlinearity": "relu"}), (nn.LSTM, {"proj_size": 3})]
    configs += [(nn.LSTM, {"proj_size": 2, "bidirectional": True, "batch_first": True})]
    for cls, kw in configs:
        m = cls(4, 5, num_layers=2, dtype=f64, **kw)
        D = 2 if m.bidirectional else 1
        S = kw.get("proj_size") or 5
        for batched in (False, True):
            shape = ((3, 6, 4) if m.batch_first else (6, 3, 4)) if batched else (6, 4)
            x = torch.randn(shape, dtype=f64, requires_grad=True)  # B = 3, T = 6
            h = torch.randn((2 * D, 3, S) if batched else (2 * D, S), dtype=f64)
            h.requires_grad_()
            c = torch.randn(h.shape[:-1] + (5,), dtype=f64, requires_grad=True)
            hx = (h, c) if cls is nn.LSTM else h
            leaves = [x, h, c] if cls is nn.LSTM else [x, h]
            for state in (None, hx):

                def loss_fn(m, x, state=state):
                    out, hn = m(x, state)
                    parts = hn if isinstance(hn, tuple) else (hn,)
                    loss = (out**2).sum() + sum((p * p.cos()).sum() for p in parts)
                    return loss, [out, *parts]

                def run(loss_fn=loss_fn, m=m, x=x, state=state, leaves=leaves):
                    loss, results = loss_fn(m, x)
                    used = leaves if state is not None else [x]
                    return results + list(torch.autograd.grad(loss, used))

                fused = run()
                with twinned({"m": m}):
                    twin = run()
                for a, b in zip(fused, twin, strict=True):
                    assert a.shape == b.shape
                    assert (a - b).abs().max().item() < 1e-12, (cls.__name__, kw, batched)
                assert "forward" not in m.__dict__
        # the last loss_fn (batched, with hx): its ‖∂L/∂θ‖ through the twin, fused
        fused_grads = torch.autograd.grad(loss_fn(m, x)[0], list(m.parameters()))
        norm = float(torch.stack([g.norm() for g in fused_grads]).norm())
        got = rt.trace(m, x, lambda m, x, f=loss_fn: f(m, x)[0])[""].grad_norm
        assert abs(got - norm) < 1e-12 * norm, (cls.__name__, kw)


# -- exact against the numpy engine ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("batch_first", [False, True])
def test_deltas_lag_profiles_and_diagnosis_equal_the_engine(kind, layers, batch_first):
    torch.manual_seed(layers)
    T, B, D, H, K = 9, 3, 4, 5, 3
    model = Head(MODULES[kind](D, H, num_layers=layers, batch_first=batch_first, dtype=f64), K)
    engine = rt.from_torch(model.rnn, model.readout)
    rng = np.random.default_rng(layers)
    X = rng.standard_normal((T, B, D))
    for loss in ("cross_entropy", "mse"):
        Y = (
            rng.integers(0, K, (T, B))
            if loss == "cross_entropy"
            else rng.standard_normal((T, B, K))
        )
        mask = (rng.random((T, B)) < 0.7).astype(float)
        mask[-1] = mask[4] = 1
        loss_fn = engine_loss_fn(loss, batch_first)
        res = engine.loss_and_grads(X, Y, loss=loss, mask=mask)
        for t in (None, 5):
            mt = rt.trace(model, (X, Y, mask), loss_fn, output_step=t)["rnn"]
            assert abs(mt.loss - res.loss) < 1e-12
            for k, name in enumerate(engine.cell.state_names):
                for layer in range(layers):
                    want = res.trace.layers[layer].deltas[k]
                    assert rel_err(mt.deltas[name][layer], want) < 1e-10
                    assert (
                        rel_err(mt.states[name][layer], res.trace.layers[layer].states[k]) < 1e-12
                    )
            lp = lag_profile(engine, res.trace, Y, loss=loss, mask=mask, step=t)
            d = rt.gradient_flow(model, (X, Y, mask), loss_fn, output_step=t)
            assert rel_err(d.flow.lag.norms, lp.norms) < 1e-10
            ref = diagnose(engine, X, Y, mask, loss=loss, step=t)
            for name in ref.flow.delta_norm:
                assert rel_err(d.flow.delta_norm[name], ref.flow.delta_norm[name]) < 1e-10
            assert np.allclose(d.flow.lag.profile, ref.flow.lag.profile, rtol=1e-10, atol=0)
            assert d.flow.horizon == ref.flow.horizon and d.label == ref.label
            for a, b in zip(d.jacobians, ref.jacobians, strict=True):
                assert np.allclose(a.log_norm, b.log_norm, rtol=0, atol=1e-10)
            for a, b in zip(d.spectra, ref.spectra, strict=True):
                assert (a.layer, a.block) == (b.layer, b.block)
                assert abs(a.sigma_max - b.sigma_max) < 1e-12
            for a, b in zip(d.activations, ref.activations, strict=True):
                assert abs(a.mean_dphi - b.mean_dphi) < 1e-12
            # torch's bias_ih and bias_hh each carry the engine's one b: ‖∂L/∂θ‖ counts it twice
            fused = torch.autograd.grad(loss_fn(model, (X, Y, mask)), list(model.parameters()))
            assert abs(d.grad_norm - float(torch.stack([g.norm() for g in fused]).norm())) < 1e-12


def test_a_recurrent_weight_used_outside_the_module_still_counts_in_the_grad_norm():
    torch.manual_seed(13)
    model = Head(nn.LSTM(3, 4, dtype=f64), 2)
    x = torch.randn(6, 2, 3, dtype=f64)

    def loss_fn(m, x):  # a penalty on W_hh: the twin forms its step gradient apart
        return m(x).square().sum() + 0.1 * m.rnn.weight_hh_l0.square().sum()

    fused = torch.autograd.grad(loss_fn(model, x), list(model.parameters()))
    want = float(torch.stack([g.norm() for g in fused]).norm())
    assert abs(rt.trace(model, x, loss_fn)["rnn"].grad_norm - want) < 1e-12 * want


def test_bidirectional_directions_are_layers_each_in_its_own_time():
    """The reverse direction of a bidirectional module equals a one-way module with its
    weights run on the flipped sequence; its output step t is position T + 1 − t."""
    torch.manual_seed(3)
    T, B, D, H = 8, 3, 2, 4
    bi = nn.GRU(D, H, bidirectional=True, dtype=f64)
    fwd, rev = nn.GRU(D, H, dtype=f64), nn.GRU(D, H, dtype=f64)
    with torch.no_grad():
        for name, p in bi.named_parameters():
            target = rev if name.endswith("_reverse") else fwd
            getattr(target, name.removesuffix("_reverse")).copy_(p)
    x = torch.randn(T, B, D, dtype=f64)
    a, b = torch.randn(T, B, H, dtype=f64), torch.randn(T, B, H, dtype=f64)
    both = rt.trace(
        bi, x, lambda m, x: ((m(x)[0] - torch.cat([a, b], 2)) ** 2).sum(), output_step=6
    )
    one = rt.trace(fwd, x, lambda m, x: ((m(x)[0] - a) ** 2).sum(), output_step=6)
    flip = rt.trace(rev, x.flip(0), lambda m, x: ((m(x)[0] - b.flip(0)) ** 2).sum(), output_step=6)
    assert both[""].layers == ["l0", "l0_reverse"]
    for i, single in ((0, one[""]), (1, flip[""])):
        assert rel_err(both[""].deltas["h"][i], single.deltas["h"][0]) < 1e-12
        assert rel_err(both[""].lag[i], single.lag[0]) < 1e-12


def test_lstm_projection_jacobian_equals_autograd():
    torch.manual_seed(4)
    H, P, B = 5, 3, 2
    m = nn.LSTM(4, H, proj_size=P, dtype=f64)
    ax = F.linear(torch.randn(B, 4, dtype=f64), m.weight_ih_l0, m.bias_ih_l0)
    h, c = torch.randn(B, P, dtype=f64), torch.randn(B, H, dtype=f64)

    def step(ax, h, c):
        ah = F.linear(h, m.weight_hh_l0, m.bias_hh_l0)
        return ah, lstm_step(ax, ah, (h, c), m.weight_hr_l0)

    ah, new = step(ax, h, c)
    cache = caches("lstm", ax, ah, (h, c), new)
    J = lstm_projection_jacobian(
        tuple(a.numpy() for a in cache),
        m.weight_hh_l0.detach().numpy(),
        m.weight_hr_l0.detach().numpy(),
    )
    for b in range(B):

        def one_step(s, b=b):
            _, (h2, c2) = step(ax[b : b + 1], s[None, :P], s[None, P:])
            return torch.cat([h2[0], c2[0]])

        want = torch.autograd.functional.jacobian(one_step, torch.cat([h[b], c[b]]))
        assert np.abs(want.detach().numpy() - J[b]).max() < 1e-14
    d = rt.gradient_flow(
        Head(m, 2), torch.randn(7, B, 4, dtype=f64), lambda m, x: m(x).square().sum()
    )
    assert np.all(np.isfinite(d.jacobians[0].log_norm)) and d.spectra[-1].block == "W_hr"


# -- watch() on a cell loop equals gradient_flow on the module ------------------------------


@pytest.mark.parametrize(
    "module, cell", [(nn.LSTM, nn.LSTMCell), (nn.GRU, nn.GRUCell), (nn.RNN, nn.RNNCell)]
)
def test_watch_on_a_cell_loop_equals_gradient_flow_on_the_module(module, cell):
    torch.manual_seed(5)
    T, B, D, H, K, L = 9, 4, 3, 5, 2, 2
    model = Head(module(D, H, num_layers=L, dtype=f64), K)
    cells = [cell(D if layer == 0 else H, H, dtype=f64) for layer in range(L)]
    with torch.no_grad():
        for layer, c in enumerate(cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(c, name).copy_(getattr(model.rnn, f"{name}_l{layer}"))
    x, y = torch.randn(T, B, D, dtype=f64), torch.randn(T, B, K, dtype=f64)
    zero = torch.zeros(B, H, dtype=f64)
    for t in (None, 4):
        want = rt.gradient_flow(model, x, lambda m, x: ((m(x) - y) ** 2).mean(), output_step=t)
        with rt.watch(cells=cells) as w:
            first = (zero, zero) if cell is nn.LSTMCell else zero
            state = [w.step(first, layer=layer) for layer in range(L)]
            outputs = []
            for k in range(T):
                inp = x[k]
                for layer in range(L):
                    state[layer] = w.step(cells[layer](inp, state[layer]), layer=layer)
                    inp = state[layer][0] if cell is nn.LSTMCell else state[layer]
                outputs.append(model.readout(inp))
            loss = ((torch.stack(outputs) - y) ** 2).mean()
            got = w.diagnose(loss, output_step=t)
        for name in want.flow.delta_norm:
            assert rel_err(got.flow.delta_norm[name], want.flow.delta_norm[name]) < 1e-10
        assert rel_err(got.flow.lag.norms, want.flow.lag.norms) < 1e-10
        for a, b in zip(got.jacobians, want.jacobians, strict=True):
            assert np.allclose(a.log_norm, b.log_norm, rtol=0, atol=1e-10)
        assert [s.sigma_max for s in got.spectra] == pytest.approx(
            [s.sigma_max for s in want.spectra]
        )
        for a, b in zip(got.activations, want.activations, strict=True):
            assert abs(a.mean_dphi - b.mean_dphi) < 1e-12
        assert got.label == want.label and abs(got.grad_norm - want.grad_norm) < 1e-12
        loss.backward()  # the graph is still the user's to train with
    assert not cells[0]._forward_hooks  # the hooks went with the block


def test_watch_without_cells_measures_a_hand_written_recurrence():
    torch.manual_seed(6)
    T, B, D, H = 7, 3, 2, 4
    rnn = nn.RNN(D, H, dtype=f64)
    x = torch.randn(T, B, D, dtype=f64)
    want = rt.trace(rnn, x, lambda m, x: m(x)[0].sin().sum())[""]
    with rt.watch() as w:
        h = w.step(torch.zeros(B, H, dtype=f64))
        outs = []
        for k in range(T):
            h = w.step(
                torch.tanh(
                    F.linear(x[k], rnn.weight_ih_l0, rnn.bias_ih_l0)
                    + F.linear(h, rnn.weight_hh_l0, rnn.bias_hh_l0)
                )
            )
            outs.append(h)
        got = w.trace(torch.stack(outs).sin().sum())
    assert rel_err(got.deltas["h"], want.deltas["h"]) < 1e-12
    assert rel_err(got.lag, want.lag) < 1e-12
    d = w.diagnose(torch.stack(outs).sin().sum())
    assert d.model["cell"] == "custom" and d.spectra == [] and d.jacobians == []


def test_the_bridge_takes_options_or_their_keyword_form_alike():
    torch.manual_seed(7)
    T, B, D, H = 8, 5, 2, 3
    gru, cell = nn.GRU(D, H, dtype=f64), nn.GRUCell(D, H, dtype=f64)
    x = torch.randn(T, B, D, dtype=f64)

    def loss_fn(m, x):
        return m(x)[0].sin().sum()

    settings = dict(
        dependency_length=5,
        jacobian_sequences=2,
        run=RunInfo(cell="gru", clip_mode="norm", clip_threshold=1.0),
        thresholds=Thresholds(horizon=0.01),
    )

    def loop(w):
        h = w.step(torch.zeros(B, H, dtype=f64))
        outs = []
        for k in range(T):
            h = w.step(cell(x[k], h))
            outs.append(h)
        return torch.stack(outs).sin().sum()

    def draws():
        return np.random.default_rng(3)

    pairs = []
    pairs.append(
        (
            rt.gradient_flow(gru, x, loss_fn, rng=draws(), **settings),
            rt.gradient_flow(gru, x, loss_fn, options=DiagnosisOptions(rng=draws(), **settings)),
        )
    )
    with rt.watch(cells=cell) as w:
        loss = loop(w)
        by_options = w.diagnose(loss, options=DiagnosisOptions(rng=draws(), **settings))
        pairs.append((w.diagnose(loss, rng=draws(), **settings), by_options))
    for by_keywords, by_options in pairs:
        assert by_options.to_dict(per_sequence=True) == by_keywords.to_dict(per_sequence=True)
        assert by_options.flow.ratio_lag == 5 and by_options.flow.horizon_threshold == 0.01
        assert by_options.run.clip_mode == "norm" and len(by_options.jacobians[0].sequences) == 2
    # the monitor leaves Jacobian products out unless asked; a keyword overrides options
    monitor = rt.GradientFlowMonitor(gru, every=1, loss_fn=loss_fn, dependency_length=5)
    assert monitor.options == DiagnosisOptions(dependency_length=5, jacobian_sequences=0)
    assert monitor.step(x).jacobians == [] and monitor.config["monitor"]["dependency_length"] == 5
    options = DiagnosisOptions(dependency_length=5, jacobian_sequences=2)
    asked = rt.GradientFlowMonitor(gru, every=1, loss_fn=loss_fn, options=options)
    assert len(asked.step(x).jacobians[0].sequences) == 2
    overridden = rt.GradientFlowMonitor(
        gru, every=1, loss_fn=loss_fn, options=options, jacobian_sequences=0
    )
    assert overridden.options == DiagnosisOptions(dependency_length=5, jacobian_sequences=0)
    with pytest.raises(ValueError, match=r"^jacobian_sequences: got -1; expected an integer >= 0$"):
        rt.gradient_flow(gru, x, loss_fn, jacobian_sequences=-1)


# -- a real composite model -----------------------------------------------------------------


class CharLM(nn.Module):
    """Embedding -> 2-layer LSTM -> linear, batch-first, with dropout between the layers."""

    def __init__(self, V, E=16, H=32, dropout=0.0):
        super().__init__()
        self.embed = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, num_layers=2, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(H, V)

    def forward(self, ids):
        return self.head(self.drop(self.lstm(self.embed(ids))[0]))


def charlm_loss(model, batch):
    ids, targets = batch
    return F.cross_entropy(model(ids).flatten(0, 1), targets.flatten())


def charlm_batches(n, B=4, T=20):
    task = get_task("charlm", T=T)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        X, Y, _ = task.batch(rng, B)  # (T, B) ids, time-major
        out.append((torch.from_numpy(X.T.copy()), torch.from_numpy(Y.T.copy())))
    return task.input_size, out


def test_composite_charlm_model_agrees_with_a_manual_lstmcell_unroll():
    torch.manual_seed(7)
    V, batches = charlm_batches(4)
    model = CharLM(V)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for batch in batches[:3]:  # a few training steps first
        opt.zero_grad()
        charlm_loss(model, batch).backward()
        opt.step()
    batch = batches[3]
    d = rt.gradient_flow(model, batch, charlm_loss)
    mt = rt.trace(model, batch, charlm_loss)["lstm"]
    assert np.isfinite(d.loss) and np.all(np.isfinite(d.flow.lag.profile))
    assert all(np.all(np.isfinite(v)) for v in d.flow.delta_norm.values())

    # the reference: the same weights in LSTMCells, h_k kept with retain_grad
    cells = [nn.LSTMCell(16 if layer == 0 else 32, 32) for layer in range(2)]
    with torch.no_grad():
        for layer, cell in enumerate(cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(model.lstm, f"{name}_l{layer}"))
    ids, targets = batch
    emb = model.embed(ids)  # (B, T, E)
    B, T = ids.shape
    state = [(torch.zeros(B, 32), torch.zeros(B, 32)) for _ in cells]
    kept = [[] for _ in cells]
    outs = []
    for k in range(T):
        inp = emb[:, k]
        for layer, cell in enumerate(cells):
            state[layer] = cell(inp, state[layer])
            state[layer][0].retain_grad()
            kept[layer].append(state[layer][0])
            inp = state[layer][0]
        outs.append(inp)
    logits = model.head(torch.stack(outs, 1))
    F.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
    for layer in range(2):
        want = torch.stack([h.grad for h in kept[layer]]).numpy()
        assert rel_err(mt.deltas["h"][layer, 1:], want) < 1e-5


# -- nothing changes ------------------------------------------------------------------------


def snapshot(model):
    return [t.detach().clone() for t in (*model.parameters(), *model.buffers())]


def test_gradient_flow_changes_no_parameter_grad_buffer_or_rng_stream():
    torch.manual_seed(8)
    model = nn.Sequential()
    model.lstm = nn.LSTM(3, 6, num_layers=2, dropout=0.5)  # dropout draws in training mode
    model.norm = nn.BatchNorm1d(6)

    def loss_fn(m, x):
        out = m.lstm(x)[0]  # (T, B, H)
        return m.norm(out.flatten(0, 1)).square().mean()

    x = torch.randn(10, 4, 3)
    loss_fn(model, x).backward()  # .grad holds something to keep
    params, grads = snapshot(model), [p.grad.clone() for p in model.parameters()]
    legacy = np.random  # the global streams a user's own code may draw from
    rng = (torch.get_rng_state(), legacy.get_state()[1].copy(), random.getstate())
    d = rt.gradient_flow(model, x, loss_fn)
    assert d.steps == 10 and np.isfinite(d.flow.ratio)
    assert all(torch.equal(a, b) for a, b in zip(params, snapshot(model), strict=True))
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    assert torch.equal(torch.get_rng_state(), rng[0])
    assert np.array_equal(legacy.get_state()[1], rng[1]) and random.getstate() == rng[2]
    assert "forward" not in model.lstm.__dict__ and model.training


def test_the_original_modules_are_restored_when_the_pass_raises():
    torch.manual_seed(9)
    model = Head(nn.GRU(2, 3), 2)
    original = model.rnn
    x = torch.randn(5, 2, 2)
    before = model(x).detach()

    def failing(m, x):
        m(x)
        raise RuntimeError("boom in the user's loss")

    with pytest.raises(RuntimeError, match="boom"):
        rt.gradient_flow(model, x, failing)
    assert model.rnn is original and "forward" not in original.__dict__
    assert type(model.rnn).forward is nn.GRU.forward
    assert torch.equal(model(x).detach(), before)
    with pytest.raises(ValueError, match="unrelated initial states"):  # raised by the twin
        rt.gradient_flow(model.rnn, x, lambda m, x: m(x)[1].sum() + m(x)[1].sum())
    assert "forward" not in original.__dict__


class FakeWriter:
    def __init__(self):
        self.scalars, self.texts = [], []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_text(self, tag, text, step):
        self.texts.append((tag, text, step))


def train_charlm(steps, monitor=None):
    torch.manual_seed(10)
    V, batches = charlm_batches(steps)
    model = CharLM(V, dropout=0.3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for batch in batches:
        opt.zero_grad()
        charlm_loss(model, batch).backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if monitor is not None:
            monitor(model).step(batch, grad_norm=norm)
        torch.rand(1)  # the loop's own RNG use after the monitor
    return model, opt


def test_a_monitored_training_run_is_bit_identical_and_recorded(tmp_path):
    plain, plain_opt = train_charlm(6)
    writer = FakeWriter()
    made = {}

    def monitor(model):
        if "m" not in made:
            made["m"] = rt.GradientFlowMonitor(
                model, every=2, loss_fn=charlm_loss, store=tmp_path, tensorboard=writer
            )
        return made["m"]

    watched, watched_opt = train_charlm(6, monitor)
    mon = made["m"]
    mon.close()
    for a, b in zip(plain.state_dict().values(), watched.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(plain_opt.state.values(), watched_opt.state.values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in mon.records] == [2, 4, 6] and len(mon.grad_norms) == 6
    assert any(tag.endswith("/ratio") for tag, _, _ in writer.scalars) and writer.texts
    with Store(tmp_path) as store:
        (run,) = store.runs()
        assert run.status == "done" and run.config["monitor"]["every"] == 2
        snapshots = store.diagnostics(run.id)
        assert [s for s, _ in snapshots] == [2, 4, 6]
        # the store holds the monitor's own diagnoses, verdict and all
        assert [snap["verdict"]["label"] for _, snap in snapshots] == [
            r["verdict"]["label"] for r in mon.records
        ]
        assert [snap["flow"]["ratio"] for _, snap in snapshots] == [
            r["flow"]["ratio"] for r in mon.records
        ]
        assert [s for s, _ in store.metrics(run.id)["grad_norm"]] == list(range(1, 7))


def test_tensorboard_folder_without_tensorboard_installed_is_skipped(tmp_path):
    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed here")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mon = rt.GradientFlowMonitor(
            nn.GRU(2, 3), every=1, loss_fn=lambda m, x: m(x)[0].sum(), tensorboard=tmp_path
        )
    assert any("tensorboard" in str(w.message) for w in caught)
    d = mon.step(torch.randn(4, 2, 2))  # the monitor still diagnoses, without TensorBoard
    assert d is not None and d.steps == 4 and [r["step"] for r in mon.records] == [1]
    mon.close()


# -- calls, shapes and bad input ------------------------------------------------------------


def test_a_module_called_step_by_step_is_followed_as_one_sequence():
    torch.manual_seed(11)
    lstm = nn.LSTM(2, 3, num_layers=2, dtype=f64)
    x = torch.randn(6, 2, 2, dtype=f64)
    whole = rt.trace(lstm, x, lambda m, x: m(x)[0].square().sum(), output_step=4)[""]

    def stepwise(m, x):
        state, outs = None, []
        for k in range(x.shape[0]):
            out, state = m(x[k : k + 1], state)
            outs.append(out)
        return torch.cat(outs).square().sum()

    steps = rt.trace(lstm, x, stepwise, output_step=4)[""]
    assert steps.info["calls"] == 6
    for name in ("h", "c"):
        assert rel_err(steps.deltas[name], whole.deltas[name]) < 1e-12
    assert rel_err(steps.lag, whole.lag) < 1e-12

    def unrelated(m, x):
        return m(x)[0].sum() + m(x)[0].sum()

    with pytest.raises(ValueError, match="unrelated initial states"):
        rt.trace(lstm, x, unrelated)


def test_unbatched_input_is_a_batch_of_one():
    torch.manual_seed(12)
    gru = nn.GRU(2, 3, dtype=f64)
    x = torch.randn(5, 2, dtype=f64)
    one = rt.trace(gru, x, lambda m, x: m(x)[0].sum())[""]
    batched = rt.trace(gru, x[:, None], lambda m, x: m(x)[0].sum())[""]
    assert one.deltas["h"].shape == (1, 6, 1, 3)
    assert rel_err(one.deltas["h"], batched.deltas["h"]) < 1e-14


def test_bad_input_gets_a_one_line_error():
    x = torch.randn(5, 2, 3)
    mlp = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(ValueError, match=r"no nn.RNN, nn.LSTM or nn.GRU.*watch"):
        rt.gradient_flow(mlp, x, lambda m, x: m(x).sum())
    looped = nn.Sequential()
    looped.cell = nn.LSTMCell(3, 3)
    with pytest.raises(ValueError, match="LSTMCell at 'cell'"):
        rt.gradient_flow(looped, x, lambda m, x: x.sum())

    class MyLSTM(nn.LSTM):
        def forward(self, input, hx=None):
            return super().forward(input, hx)

    with pytest.raises(ValueError, match="MyLSTM"):
        rt.gradient_flow(MyLSTM(3, 2), x, lambda m, x: m(x)[0].sum())
    gru = nn.GRU(3, 2)
    for loss_fn, pattern in [
        (lambda m, x: m(x)[0], r"shape \(5, 2, 2\); expected a scalar"),
        (lambda m, x: 1.0, "returned float; expected a scalar tensor"),
        (lambda m, x: m(x)[0].sum().detach(), "does not require grad"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            rt.gradient_flow(gru, x, loss_fn)
    with pytest.raises(ValueError, match="output_step: got 9"):
        rt.gradient_flow(gru, x, lambda m, x: m(x)[0].sum(), output_step=9)
    two = nn.Sequential(nn.GRU(3, 2), nn.GRU(2, 2))
    with pytest.raises(ValueError, match="module: got None.*'0', '1'"):
        rt.gradient_flow(two, x, lambda m, x: x.sum())
    with pytest.raises(ValueError, match="module: got 'dec'"):
        rt.gradient_flow(two, x, lambda m, x: x.sum(), module="dec")
    with pytest.raises(ValueError, match="every: got 0"):
        rt.GradientFlowMonitor(gru, every=0, loss_fn=lambda m, x: x.sum())
    with pytest.raises(ValueError, match="cells: got Linear"):
        with rt.watch(cells=nn.Linear(2, 2)):
            pass
    with rt.watch() as w, pytest.raises(ValueError, match="no state recorded"):
        w.diagnose(torch.ones((), requires_grad=True))
