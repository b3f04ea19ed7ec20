"""watch() follows a user's own torch implementation of a registered cell, declared with
rnnlab.torch.cell: its step Jacobians equal torch autograd's of the user's step, its lag
profile, activation statistics and remedies equal the engine's on the same weights, its
spectra equal numpy's on the weights; mistakes in the declaration are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need

torch = need("torch")  # under CI=1 a failure, not a skip
nn = torch.nn

import rnnlab.torch as rt  # noqa: E402
from rnnlab.diagnostics import Thresholds, diagnose  # noqa: E402
from rnnlab.engine.cells import CELLS, make_cell  # noqa: E402
from rnnlab.engine.model import SequenceModel  # noqa: E402
from rnnlab.torch.diagnosis import step_jacobians  # noqa: E402

f64 = torch.float64
T, B, D, H, K, L = 10, 3, 3, 4, 2, 2
SHORT = Thresholds(vanishing=0.05)  # over T = 10 steps, a ratio below 1/20 is vanishing


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the user's modules: each cell's equations (its file's docstring), written plainly -------


def g(x):
    """minGRU / minLSTM's positive map: x + ½ for x ≥ 0, σ(x) below."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


class MyIndRNN(nn.Module):
    """h_t = relu(U x_t + u ⊙ h_{t−1} + b)."""

    def __init__(self, d, h):
        super().__init__()
        self.inp = nn.Linear(d, h, dtype=f64)
        self.u = nn.Parameter(torch.rand(h, dtype=f64) * 0.6)  # |u| < 1: it vanishes
        with torch.no_grad():
            self.inp.bias.fill_(1.0)  # most units on: J_t's product stays nonzero

    def forward(self, x, h):
        return torch.relu(self.inp(x) + self.u * h)


class MyExpRNN(nn.Module):
    """h_t = modReLU(U x_t + exp(S) h_{t−1} + b), S = A − Aᵀ over A's upper triangle."""

    def __init__(self, d, h):
        super().__init__()
        self.U = nn.Linear(d, h, dtype=f64)
        self.A = nn.Parameter(torch.randn(h, h, dtype=f64))
        self.b_mod = nn.Parameter(torch.full((h,), -0.3, dtype=f64))  # some units off

    def W(self):
        upper = torch.triu(self.A, diagonal=1)
        return torch.linalg.matrix_exp(upper - upper.T)

    def forward(self, x, h):
        z = self.U(x) + h @ self.W().T
        return torch.sign(z) * torch.relu(z.abs() + self.b_mod)


class MyMinGRU(nn.Module):
    """z = σ(k_z), h̃ = g(k_h), h_t = (1 − z) ⊙ h_{t−1} + z ⊙ h̃; two Linears."""

    def __init__(self, d, h):
        super().__init__()
        self.to_z, self.to_h = nn.Linear(d, h, dtype=f64), nn.Linear(d, h, dtype=f64)
        with torch.no_grad():
            self.to_z.bias.fill_(2.0)  # z near 1: h_{t−1} is forgotten, it vanishes

    def forward(self, x, h):
        z = torch.sigmoid(self.to_z(x))
        return (1 - z) * h + z * g(self.to_h(x))


class MyMinLSTM(nn.Module):
    """f, i = σ(k_f), σ(k_i) normalised to f + i = 1; h_t = f' ⊙ h_{t−1} + i' ⊙ g(k_h)."""

    def __init__(self, d, h):
        super().__init__()
        self.lin = nn.Linear(d, 3 * h, dtype=f64)
        with torch.no_grad():
            self.lin.bias[:h] = -2.0  # forget gate mostly shut: it vanishes

    def forward(self, x, h):
        k_f, k_i, k_h = self.lin(x).chunk(3, dim=-1)
        f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
        return f / (f + i) * h + i / (f + i) * g(k_h)


def numpy(t):
    return t.detach().numpy().copy()


# name: (module class, the rnnlab.torch.cell keywords, the engine params read independently)
CASES = {
    "indrnn": (
        MyIndRNN,
        lambda m: dict(U="inp.weight", u="u", b="inp.bias"),
        lambda m: {"U": numpy(m.inp.weight), "u": numpy(m.u), "b": numpy(m.inp.bias)},
    ),
    "exprnn": (
        MyExpRNN,
        lambda m: dict(U="U.weight", A=m.A, b="U.bias", b_mod="b_mod"),  # a tensor, too
        lambda m: {
            "U": numpy(m.U.weight),
            "A": numpy(m.A),
            "b": numpy(m.U.bias),
            "b_mod": numpy(m.b_mod),
        },
    ),
    "mingru": (
        MyMinGRU,
        lambda m: dict(U=("to_z.weight", "to_h.weight"), b=("to_z.bias", "to_h.bias")),
        lambda m: {
            "U": np.concatenate([numpy(m.to_z.weight), numpy(m.to_h.weight)]),
            "b": np.concatenate([numpy(m.to_z.bias), numpy(m.to_h.bias)]),
        },
    ),
    "minlstm": (
        MyMinLSTM,
        lambda m: dict(U="lin.weight", b="lin.bias"),
        lambda m: {"U": numpy(m.lin.weight), "b": numpy(m.lin.bias)},
    ),
}


def run_loop(w, cells, readout, x, h0, y):
    """The user's stacked loop under watch: per layer the inputs it got and its states."""
    state = [w.step(h0[layer], layer=layer) for layer in range(L)]
    inputs, states = [[] for _ in range(L)], [[s] for s in state]
    outputs = []
    for k in range(T):
        inp = x[k]
        for layer in range(L):
            inputs[layer].append(inp)
            state[layer] = w.step(cells[layer](inp, state[layer]), layer=layer)
            states[layer].append(state[layer])
            inp = state[layer]
        outputs.append(readout(inp))
    o = torch.stack(outputs)
    loss = ((o - y) ** 2).mean(-1).sum() / B  # the engine's MSE, every step carrying loss
    return loss, inputs, states


def engine_diagnosis(model, x, y, h0):
    """rnnlab's own diagnosis of the loop's data, as the watched loop scores it (MSE on
    every step), every sequence's Jacobians."""
    mask = np.ones((T, B))
    return diagnose(
        model,
        x.numpy(),
        y.numpy(),
        mask,
        loss="mse",
        h0=h0.numpy(),
        jacobian_sequences=B,
        thresholds=SHORT,
    )


def autograd_step_jacobians(module, inputs, states):
    """J_t = ∂h_t/∂h_{t−1} of the user's step, by torch autograd, (B, H, H) per step t."""
    out = []
    for x_t, h_prev in zip(inputs, states[:-1], strict=True):
        J = torch.autograd.functional.jacobian(lambda h, x_t=x_t: module(x_t, h), h_prev.detach())
        out.append(np.stack([J[b, :, b, :].numpy() for b in range(B)]))  # rows don't mix
    return out


def product_log_norms(Js):
    """ln σ_max(J_t ⋯ J_{t−τ+1}) for τ = 0..t, from J_1..J_t."""
    M, logs = None, [np.zeros(B)]
    for J in reversed(Js):
        M = J if M is None else M @ J
        logs.append(np.log(np.linalg.norm(M, ord=2, axis=(1, 2))))
    return np.stack(logs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_watch_follows_a_users_own_cell_as_the_engine_does(name):
    torch.manual_seed(3)
    cls, keywords, engine_params = CASES[name]
    cells = [cls(D if layer == 0 else H, H) for layer in range(L)]
    readout = nn.Linear(H, K, dtype=f64)
    x, y = torch.randn(T, B, D, dtype=f64), torch.randn(T, B, K, dtype=f64)
    h0 = 0.5 * torch.randn(L, B, H, dtype=f64)  # signed: the min cells take any h_0

    declared = [rt.cell(name, m, **keywords(m)) for m in cells]
    with rt.watch(cells=declared) as w:
        loss, inputs, states = run_loop(w, cells, readout, x, h0, y)
        d = w.diagnose(loss, jacobian_sequences=B, thresholds=SHORT)
        mt = w.trace(loss)
    loss.backward()  # the graph is still the user's
    assert all(not m._forward_hooks for m in cells)

    # the step Jacobians: the engine cell's, on the caches rebuilt from the recorded steps
    for layer in range(L):
        want = autograd_step_jacobians(cells[layer], inputs[layer], states[layer])
        got = list(step_jacobians(mt, layer))[::-1]  # J_1 … J_T
        assert len(got) == T
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            d.jacobians[layer].log_norm, product_log_norms(want), rtol=0, atol=1e-6
        )

    # the engine on the same weights: lag profile, δ norms, Jacobians, activations, verdict
    model = SequenceModel(
        cell=make_cell(name),
        input_size=D,
        hidden_size=H,
        output_size=K,
        num_layers=L,
        dtype="float64",
    )
    params = {
        f"{k}_{layer}": v for layer, m in enumerate(cells) for k, v in engine_params(m).items()
    }
    model.set_params(params | {"V": numpy(readout.weight), "c": numpy(readout.bias)})
    ref = engine_diagnosis(model, x, y, h0)
    assert abs(d.loss - ref.loss) < 1e-12
    np.testing.assert_allclose(d.flow.lag.profile, ref.flow.lag.profile, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(d.flow.lag.norms, ref.flow.lag.norms, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(d.flow.delta_norm["h"], ref.flow.delta_norm["h"], rtol=1e-10)
    for a, b in zip(d.jacobians, ref.jacobians, strict=True):
        np.testing.assert_allclose(a.log_norm, b.log_norm, rtol=0, atol=1e-10)
        assert (a.gamma, a.sigma_max) == pytest.approx((b.gamma, b.sigma_max))
    assert len(d.activations) == len(ref.activations) == L
    for a, b in zip(d.activations, ref.activations, strict=True):
        assert (a.nonlinearity, a.gate) == (b.nonlinearity, b.gate)
        assert a.mean_dphi == pytest.approx(b.mean_dphi, abs=1e-12)
        assert a.gate_mean == pytest.approx(b.gate_mean, abs=1e-12)
        assert a.dead_fraction == b.dead_fraction and a.saturation == b.saturation

    # the spectra: numpy on the user's weights (none for a cell without a recurrent matrix)
    recurrent = {
        "indrnn": lambda m: np.diag(numpy(m.u)),
        "exprnn": lambda m: numpy(m.W()),
    }
    if name in recurrent:
        assert [(s.layer, s.block) for s in d.spectra] == [(layer, "W") for layer in range(L)]
        for s, m in zip(d.spectra, cells, strict=True):
            W = recurrent[name](m)
            sv = np.linalg.svd(W, compute_uv=False)
            np.testing.assert_allclose(s.singular_values, sv, rtol=0, atol=1e-12)
            eig = np.sort_complex(np.linalg.eigvals(W))
            np.testing.assert_allclose(np.sort_complex(s.eigenvalues), eig, rtol=0, atol=1e-10)
            assert s.spectral_radius == pytest.approx(np.abs(eig).max(), abs=1e-12)
    else:
        assert d.spectra == []
    assert [s.block for s in d.spectra] == [s.block for s in ref.spectra]
    assert [s.sigma_max for s in d.spectra] == pytest.approx([s.sigma_max for s in ref.spectra])

    # the verdict and the cell's own remedies, not a plain recurrence's
    assert d.label == ref.label == "vanishing"
    names = [r.name for r in d.verdict.remedies]
    assert names == [r.name for r in ref.verdict.remedies]
    assert sorted(names) == sorted(CELLS[name].remedies["vanishing"])
    assert d.model["cell"] == name and d.model["num_layers"] == L and d.model["hidden_size"] == H
    with rt.watch() as plain:  # the same loop without cells: a plain recurrence's remedies
        loss, _, _ = run_loop(plain, cells, readout, x, h0, y)
        anonymous = plain.diagnose(loss, thresholds=SHORT)
    assert anonymous.model["cell"] == "custom" and anonymous.spectra == []
    np.testing.assert_allclose(anonymous.flow.lag.profile, d.flow.lag.profile, rtol=1e-12)
    assert [r.name for r in anonymous.verdict.remedies] == list(CELLS["rnn"].remedies["vanishing"])


def test_a_hand_written_elman_rnn_declared_rnn_equals_nn_rnncell():
    """Any registered cell can be declared, the article's own too: a hand-written tanh RNN
    named "rnn" gets the Diagnosis nn.RNNCell gets."""
    torch.manual_seed(4)

    class MyRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.U, self.W = nn.Linear(D, H, dtype=f64), nn.Linear(H, H, bias=False, dtype=f64)

        def forward(self, x, h):
            return torch.tanh(self.U(x) + self.W(h))

    mine = MyRNN()
    theirs = nn.RNNCell(D, H, dtype=f64)
    with torch.no_grad():
        theirs.weight_ih.copy_(mine.U.weight)
        theirs.weight_hh.copy_(mine.W.weight)
        theirs.bias_ih.copy_(mine.U.bias)
        theirs.bias_hh.zero_()
    x = torch.randn(T, B, D, dtype=f64)
    got = []
    for cell, declared in [
        (mine, rt.cell("rnn", mine, U="U.weight", W="W.weight", b="U.bias", nonlinearity="tanh")),
        (theirs, theirs),
    ]:
        with rt.watch(cells=declared) as w:
            h = w.step(torch.zeros(B, H, dtype=f64))
            outs = []
            for k in range(T):
                h = w.step(cell(x[k], h))
                outs.append(h)
            got.append(w.diagnose(torch.stack(outs).sin().sum()))
    a, b = got
    np.testing.assert_allclose(a.flow.lag.profile, b.flow.lag.profile, rtol=1e-12)
    np.testing.assert_allclose(a.jacobians[0].log_norm, b.jacobians[0].log_norm, atol=1e-12)
    assert a.spectra[0].sigma_max == pytest.approx(b.spectra[0].sigma_max, abs=1e-12)
    assert a.activations[0].mean_dphi == pytest.approx(b.activations[0].mean_dphi, abs=1e-12)
    assert [r.name for r in a.verdict.remedies] == [r.name for r in b.verdict.remedies]


# -- hostile declarations: one line naming the argument, what was given, what is allowed ----


def one_line(call, pattern):
    with pytest.raises(ValueError, match=pattern) as err:
        call()
    assert "\n" not in str(err.value)


def test_a_wrong_declaration_is_one_line():
    ind, gru = MyIndRNN(D, H), MyMinGRU(D, H)
    one_line(
        lambda: rt.cell("mingur", gru, U="to_z.weight", b="to_z.bias"),
        r"^cell: got 'mingur'; expected one of rnn, .*mingru, minlstm",
    )
    one_line(
        lambda: rt.cell("indrnn", ind, U="inp.weight", b="inp.bias"),
        r"^u: missing; an IndRNN needs each of its parameters U, u, b named",
    )
    one_line(
        lambda: rt.cell("indrnn", ind, U="inp.weight", u="inp.weight", b="inp.bias"),
        r"^u: got shape \(4, 3\); expected \(4,\) for an IndRNN with H = 4, D = 3",
    )
    one_line(
        lambda: rt.cell("indrnn", ind, U="inp.weigth", u="u", b="inp.bias"),
        r"^U: got 'inp.weigth'; MyIndRNN has no tensor there \(its parameters: u, inp.weight, "
        r"inp.bias\)",
    )
    one_line(
        lambda: rt.cell("mingru", gru, U="to_z.weight", W="to_h.weight", b="to_z.bias"),
        r"^W: got 'to_h.weight', but a minGRU has no parameter or option 'W'; expected its "
        r"parameters U, b \(options: scan\)",
    )
    one_line(
        lambda: rt.cell("mingru", gru, U=("to_z.weight", "to_h.weight"), b="to_z.bias"),
        r"^b: got shape \(4,\); expected \(8,\) for a minGRU with H = 4, D = 3",
    )
    one_line(
        lambda: rt.cell("minlstm", gru, U=("to_z.weight", "to_h.weight"), b="to_z.bias"),
        r"^U: got shape \(8, 3\); expected \(G·H, D\) with G = 3 for a minLSTM",
    )
    one_line(
        lambda: rt.cell("indrnn", ind, U="inp.weight", u=3, b="inp.bias"),
        r"^u: got int; expected a path in the module \(str\), a tensor, or a tuple",
    )
    one_line(
        lambda: rt.cell("indrnn", ind, U="inp.weight", u="u", b="inp.bias", nonlinearity="swish"),
        r"^nonlinearity: got 'swish'; expected one of",
    )
    one_line(
        lambda: rt.cell("indrnn", "not a module", U="inp.weight"),
        r"^module: got str; expected the torch.nn.Module that runs one step of an IndRNN",
    )
    one_line(
        lambda: rt.watch(cells=[ind]).__enter__(),
        r"^cells: got MyIndRNN; expected nn.RNNCell, .* or rnnlab.torch.cell",
    )


def test_a_module_that_is_not_the_cell_declared_is_one_line_at_diagnose():
    torch.manual_seed(5)
    gru = MyMinGRU(D, H)
    x = torch.randn(T, B, D, dtype=f64)

    def loop(declared, call=lambda m, x, h: m(x, h)):
        with rt.watch(cells=declared) as w:
            h = w.step(torch.zeros(B, H, dtype=f64))
            outs = []
            for k in range(T):
                h = w.step(call(gru, x[k], h))
                outs.append(h)
            return w.diagnose(torch.stack(outs).sum())

    # the gate blocks named in the wrong order: the equations do not give the module's h_t
    swapped = rt.cell("mingru", gru, U=("to_h.weight", "to_z.weight"), b=("to_h.bias", "to_z.bias"))
    one_line(
        lambda: loop(swapped),
        r"^cells: layer 0's minGRU equations on the weights given to rnnlab.torch.cell give "
        r"h_1 .* away from what MyMinGRU returned; expected the module to compute them",
    )
    right = rt.cell("mingru", gru, U=("to_z.weight", "to_h.weight"), b=("to_z.bias", "to_h.bias"))
    assert loop(right).model["cell"] == "mingru"

    # a module that takes the state first: x_t must be its first argument
    class StateFirst(MyMinGRU):
        def forward(self, h, x):
            return super().forward(x, h)

    gru = StateFirst(D, H)
    right = rt.cell("mingru", gru, U=("to_z.weight", "to_h.weight"), b=("to_z.bias", "to_h.bias"))
    one_line(
        lambda: loop(right, call=lambda m, x, h: m(h, x)),
        r"^cells: layer 0's StateFirst got shape \(3, 4\) as its first argument; expected "
        r"x_t \(B, 3\) first",
    )


def test_a_float32_module_is_followed_in_its_own_precision():
    """float32 rounding is not a different equation: the rerun steps pass the check, and the
    diagnosis agrees with the float64 one to float32's precision."""
    torch.manual_seed(6)
    m64 = MyMinLSTM(D, H)
    m32 = MyMinLSTM(D, H).float()
    m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
    x = torch.randn(T, B, D, dtype=f64)
    got = []
    for m, dtype in ((m64, f64), (m32, torch.float32)):
        with rt.watch(cells=rt.cell("minlstm", m, U="lin.weight", b="lin.bias")) as w:
            h = w.step(torch.zeros(B, H, dtype=dtype))
            outs = []
            for k in range(T):
                h = w.step(m(x[k].to(dtype), h))
                outs.append(h)
            got.append(w.diagnose(torch.stack(outs).sin().sum()))
    a, b = got
    np.testing.assert_allclose(b.flow.lag.profile, a.flow.lag.profile, rtol=1e-4)
    np.testing.assert_allclose(b.jacobians[0].log_norm, a.jacobians[0].log_norm, atol=1e-4)
    assert b.activations[0].gate_mean == pytest.approx(a.activations[0].gate_mean, abs=1e-5)


class MyLRU(nn.Module):
    """x_t = λ x_{t−1} + γ (B u_t) in complex arithmetic, the state handed on as
    [Re x; Im x]; the layer's output y = Re(C x) + D u, out = y + GELU(M y + m)."""

    def __init__(self, d, h):
        super().__init__()
        n = h // 2
        self.B = nn.Linear(d, h, dtype=f64)  # rows [Re B; Im B], and a bias
        self.nu = nn.Parameter(torch.log(-torch.log(torch.rand(n, dtype=f64) * 0.3 + 0.6)))
        self.theta = nn.Parameter(torch.log(torch.rand(n, dtype=f64) * 3))
        self.C = nn.Parameter(torch.randn(h, h, dtype=f64) / n**0.5)  # [Re C | −Im C]
        self.D = nn.Parameter(torch.randn(h, d, dtype=f64) / d**0.5)
        self.mix = nn.Linear(h, h, dtype=f64)

    def forward(self, x, h):
        n = h.shape[-1] // 2
        lam = torch.exp(torch.complex(-torch.exp(self.nu), torch.exp(self.theta)))
        gamma = torch.sqrt(1 - lam.abs() ** 2)
        v = self.B(x)
        s = lam * torch.complex(h[..., :n], h[..., n:]) + gamma * torch.complex(
            v[..., :n], v[..., n:]
        )
        return torch.cat([s.real, s.imag], dim=-1)

    def output(self, x, h):
        y = h @ self.C.T + x @ self.D.T
        return y + torch.nn.functional.gelu(self.mix(y), approximate="tanh")


def test_watch_follows_a_users_own_lru_and_its_output_map():
    """The LRU's layer hands on its output map, not its state: the loop feeds `output` to
    the layer above and the readout; the lag profile, Jacobians (diag(λ) in real form),
    spectra (λ and λ̄) and the theory rate max|λ| equal the engine's on the same weights."""
    torch.manual_seed(5)
    cells = [MyLRU(D if layer == 0 else H, H) for layer in range(L)]
    readout = nn.Linear(H, K, dtype=f64)
    x, y = torch.randn(T, B, D, dtype=f64), torch.randn(T, B, K, dtype=f64)
    h0 = 0.5 * torch.randn(L, B, H, dtype=f64)
    declared = [
        rt.cell(
            "lru",
            m,
            U="B.weight",
            b="B.bias",
            nu="nu",
            theta="theta",
            C="C",
            D="D",
            M="mix.weight",
            m="mix.bias",
        )
        for m in cells
    ]
    with rt.watch(cells=declared) as w:
        state = [w.step(h0[layer], layer=layer) for layer in range(L)]
        outputs = []
        for k in range(T):
            inp = x[k]
            for layer in range(L):
                state[layer] = w.step(cells[layer](inp, state[layer]), layer=layer)
                inp = cells[layer].output(inp, state[layer])
            outputs.append(readout(inp))
        loss = ((torch.stack(outputs) - y) ** 2).mean(-1).sum() / B
        d = w.diagnose(loss, jacobian_sequences=B, thresholds=SHORT)
    model = SequenceModel(
        cell="lru", input_size=D, hidden_size=H, output_size=K, num_layers=L, dtype="float64"
    )
    params = {}
    for layer, m in enumerate(cells):
        p = {
            "U": m.B.weight,
            "b": m.B.bias,
            "nu": m.nu,
            "theta": m.theta,
            "C": m.C,
            "D": m.D,
            "M": m.mix.weight,
            "m": m.mix.bias,
        }
        params |= {f"{k}_{layer}": numpy(v) for k, v in p.items()}
    model.set_params(params | {"V": numpy(readout.weight), "c": numpy(readout.bias)})
    ref = engine_diagnosis(model, x, y, h0)
    assert abs(d.loss - ref.loss) < 1e-12
    # the top layer's: watch backpropagates from h^top_t, so below it the path the layer
    # above's D u takes straight to its output is not in the watched profile (README)
    np.testing.assert_allclose(d.flow.lag.profile[-1], ref.flow.lag.profile[-1], rtol=1e-10)
    for a, b in zip(d.jacobians, ref.jacobians, strict=True):
        np.testing.assert_allclose(a.log_norm, b.log_norm, rtol=0, atol=1e-10)
        assert a.exact_rate == pytest.approx(b.exact_rate, rel=1e-12)  # max |λ_j|, the theory
    assert any("theory gives" in note for note in d.verdict.evidence)
    for s, m in zip(d.spectra, cells, strict=True):
        lam = torch.exp(torch.complex(-torch.exp(m.nu), torch.exp(m.theta))).detach().numpy()
        assert s.spectral_radius == pytest.approx(np.abs(lam).max(), rel=1e-12)
    assert [r.name for r in d.verdict.remedies] == [r.name for r in ref.verdict.remedies]
