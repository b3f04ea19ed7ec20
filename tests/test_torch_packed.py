"""A PackedSequence through the bridge: the twin returns what the module returns, the
parameter gradients are the module's, and steps past a sequence's end are masked out (each
sequence measures as if run alone, its own length long)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need

torch = need("torch")  # under CI=1 a failure, not a skip
nn = torch.nn
pack = nn.utils.rnn.pack_padded_sequence
unpack = nn.utils.rnn.pad_packed_sequence

import rnnlab.torch as rt  # noqa: E402
from rnnlab.diagnostics import layer_activation_stats, profile_from_norms  # noqa: E402
from rnnlab.torch.measure import _add_step_weight_grads, _Pass, _targets  # noqa: E402
from rnnlab.torch.twin import twinned  # noqa: E402

f64 = torch.float64
T, B, D_in, H = 7, 5, 3, 4
LENGTHS = [4, 7, 2, 7, 5]  # unsorted, two of full length
FULL = [1, 3]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny graphs: torch's intra-op threads would cost more than the work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def finals(hn):
    return hn if isinstance(hn, tuple) else (hn,)


CONFIGS = [
    (cls, kw)
    for cls in (nn.RNN, nn.LSTM, nn.GRU)
    for kw in ({}, {"bidirectional": True}, {"batch_first": True})
] + [
    (nn.RNN, {"nonlinearity": "relu", "bidirectional": True}),
    (nn.LSTM, {"proj_size": 2, "bidirectional": True}),
    (nn.GRU, {"bias": False, "bidirectional": True}),
]


def make(cls, kw, seed=0):
    torch.manual_seed(seed)
    return cls(D_in, H, num_layers=2, dtype=f64, **kw)


def out_size(m):
    """S of h_t, D·S of the output."""
    S = getattr(m, "proj_size", 0) or H
    return S, (2 if m.bidirectional else 1) * S


def initial_state(m, kind_is_lstm):
    D = 2 if m.bidirectional else 1
    h = torch.randn(2 * D, B, out_size(m)[0], dtype=f64, requires_grad=True)
    c = torch.randn(2 * D, B, H, dtype=f64, requires_grad=True)
    return (h, c) if kind_is_lstm else h


# -- (1) the twin returns what the module returns ---------------------------------------------


@pytest.mark.parametrize(("cls", "kw"), CONFIGS)
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_twin_returns_the_modules_packed_output_and_final_states(cls, kw, enforce_sorted):
    m = make(cls, kw)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    x = torch.randn(T, B, D_in, dtype=f64)
    packed = pack(x, lengths, enforce_sorted=enforce_sorted)
    data = packed.data.detach().requires_grad_()
    packed = nn.utils.rnn.PackedSequence(
        data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
    )
    hx = initial_state(m, cls is nn.LSTM)
    leaves = [data, *finals(hx)]
    for state in (None, hx):

        def run(state=state):
            out, hn = m(packed, state)
            loss = (out.data * out.data.sin()).sum() + sum((p**3).sum() for p in finals(hn))
            used = leaves if state is not None else [data]
            return out, [*finals(hn), *torch.autograd.grad(loss, used)]

        out, results = run()
        with twinned({"m": m}):
            out_twin, results_twin = run()
        assert isinstance(out_twin, nn.utils.rnn.PackedSequence)
        assert torch.equal(out_twin.batch_sizes, out.batch_sizes)
        for a, b in [
            (out_twin.sorted_indices, out.sorted_indices),
            (out_twin.unsorted_indices, out.unsorted_indices),
        ]:
            assert (a is None and b is None) or torch.equal(a, b)
        assert (out_twin.data - out.data).abs().max().item() < 1e-12
        for a, b in zip(results_twin, results, strict=True):  # h_n[, c_n], ∂L/∂x, ∂L/∂hx
            assert a.shape == b.shape
            assert (a - b).abs().max().item() < 1e-12, (cls.__name__, kw)
    assert "forward" not in m.__dict__


def test_dropout_between_layers_applies_to_packed_input():
    """dropout = 1 zeroes the second layer's input in both, so the results agree exactly in
    training mode: the twin applies it between the layers and not on top."""
    m = nn.LSTM(D_in, H, num_layers=2, dropout=1.0, bidirectional=True, dtype=f64)
    packed = pack(torch.randn(T, B, D_in, dtype=f64), LENGTHS, enforce_sorted=False)
    out, (h, c) = m(packed)
    with twinned({"m": m}):
        out_twin, (h_twin, c_twin) = m(packed)
    assert out.data.abs().max() > 0
    for a, b in [(out_twin.data, out.data), (h_twin, h), (c_twin, c)]:
        assert (a - b).abs().max().item() < 1e-12


# -- (2) the parameter gradients are the module's ---------------------------------------------


def twin_param_grads(m, loss_fn):
    """∂L/∂θ per parameter as a diagnostic pass forms it: autograd through the twin, plus
    W_hh, b_hh, W_hr formed once per layer (measure.py)."""
    params = list(m.parameters())
    with twinned({"m": m}) as recs:
        loss = loss_fn(m)
        rec = recs["m"]
        targets = _targets(rec)
        grads = torch.autograd.grad(loss, targets + params, allow_unused=True)
        found = {id(p): g for p, g in zip(params, grads[len(targets) :], strict=True)}
        _add_step_weight_grads(_Pass(rec, grads[: len(targets)], None), found)
    return [found[id(p)] for p in params]


@pytest.mark.parametrize(("cls", "kw"), CONFIGS)
def test_parameter_gradients_through_the_twin_equal_the_modules(cls, kw):
    m = make(cls, kw, seed=1)
    packed = pack(torch.randn(T, B, D_in, dtype=f64), LENGTHS, enforce_sorted=False)
    hx = initial_state(m, cls is nn.LSTM)
    target = torch.randn(sum(LENGTHS), out_size(m)[1], dtype=f64)

    def loss_fn(m, batch=None):
        out, hn = m(packed, hx)
        return ((out.data - target) ** 2).sum() + sum((p * p.cos()).sum() for p in finals(hn))

    want = torch.autograd.grad(loss_fn(m), list(m.parameters()))
    got = twin_param_grads(m, loss_fn)
    for (name, _), g, w in zip(m.named_parameters(), got, want, strict=True):
        assert rel_err(g, w) < 1e-10, (cls.__name__, kw, name)
    norm = float(torch.stack([w.norm() for w in want]).norm())
    assert abs(rt.trace(m, None, loss_fn)[""].grad_norm - norm) < 1e-10 * norm


# -- (3) the measurements: each sequence as if run alone, masked out past its end -------------


def separable_loss(A, W):
    """A loss that is a sum of one term per sequence: Σ_t out_tb·A_tb + Σ h_n,b·W_b (and c_n),
    so every sequence's gradients are its own. Takes a packed or a padded batch."""

    def loss_fn(m, batch):
        out, hn = m(batch)
        if isinstance(out, nn.utils.rnn.PackedSequence):
            out = unpack(out)[0]  # zeros past each sequence's end
        return (out * A).sum() + sum((p * w).sum() for p, w in zip(finals(hn), W, strict=True))

    return loss_fn


def alone(m, x, A, W, b, n):
    """Sequence b on its own, its n steps, unpacked: (batch, loss_fn)."""
    loss = separable_loss(A[:n, b : b + 1], [w[:, b : b + 1] for w in W])
    return x[:n, b : b + 1], loss


@pytest.mark.parametrize(
    ("cls", "kw"),
    [
        (nn.RNN, {}),
        (nn.LSTM, {"bidirectional": True}),
        (nn.GRU, {"bidirectional": True}),
        (nn.LSTM, {"proj_size": 2}),
    ],
)
def test_each_sequence_measures_as_if_run_alone_and_is_masked_past_its_end(cls, kw):
    m = make(cls, kw, seed=2)
    torch.manual_seed(3)
    x = torch.randn(T, B, D_in, dtype=f64)
    A = torch.randn(T, B, out_size(m)[1], dtype=f64)
    hn = m(x)[1]
    W = [torch.randn_like(p) for p in finals(hn)]
    packed = pack(x, LENGTHS, enforce_sorted=False)
    loss = separable_loss(A, W)
    for t in (None, 4):
        mt = rt.trace(m, packed, loss, output_step=t)[""]
        d = rt.gradient_flow(m, packed, loss, output_step=t, jacobian_sequences=B)
        t = t or T
        assert mt.lengths.tolist() == LENGTHS and mt.step == t
        reach = [b for b, n in enumerate(LENGTHS) if n >= t]
        rows = []
        for b, n in enumerate(LENGTHS):
            # states and δ: the sequence's own run up to its end, zero after it
            single = rt.trace(m, *alone(m, x, A, W, b, n))[""]
            for name in mt.states:
                got, want = mt.states[name][:, :, b], single.states[name][:, :, 0]
                assert rel_err(got[:, : n + 1], want) < 1e-12
                assert not got[:, n + 1 :].any()
                got, want = mt.deltas[name][:, :, b], single.deltas[name][:, :, 0]
                assert rel_err(got[:, : n + 1], want) < 1e-12
                assert not got[:, n + 1 :].any()
            # the lag profile of step t: the sequences that reach t (with their h_n when
            # they end at t), as if alone; the others have none
            if n < t:
                assert not mt.lag[:, :, b].any() and b not in d.flow.lag.sequences
                continue
            xb, loss_b = alone(m, x, A, W, b, n)
            single = rt.trace(m, xb, loss_b, output_step=t)[""]
            ds = rt.gradient_flow(m, xb, loss_b, output_step=t, jacobian_sequences=1)
            assert rel_err(mt.lag[:, :, b], single.lag[:, :, 0]) < 1e-12
            got = d.flow.lag.norms[:, :, d.flow.lag.sequences.index(b)]
            assert rel_err(got, ds.flow.lag.norms[:, :, 0]) < 1e-12
            for jp, jp_single in zip(d.jacobians, ds.jacobians, strict=True):
                col = jp.sequences.index(b)
                assert rel_err(jp.log_norm[:, col], jp_single.log_norm[:, 0]) < 1e-10
            rows.append(ds.flow.lag.norms[:, :, 0])
        assert d.jacobians[0].sequences == reach == d.flow.lag.sequences
        want = profile_from_norms(t, np.stack(rows, axis=2), reach)
        assert rel_err(d.flow.lag.profile, want.profile) < 1e-12
        # δ norms over the batch: the sequences still running at each step
        for name, norms in d.flow.delta_norm.items():
            L = norms.shape[0]
            want = np.sqrt(np.square(mt.deltas[name].reshape(L, T + 1, B, -1)).sum(axis=(2, 3)))
            assert rel_err(norms, want) < 1e-12
            assert norms[:, -1].any()
        # activation statistics: the steps taken, as if the runs alone were one batch
        singles = [rt.trace(m, *alone(m, x, A, W, b, n))[""] for b, n in enumerate(LENGTHS)]
        for layer, stats in enumerate(d.activations):
            h = np.concatenate([s.states["h"][layer, 1:, 0] for s in singles])  # (N, S)
            h = np.stack([np.zeros_like(h), h])  # one step of N rows, after an unused h_0
            steps = [tuple(a[0] for a in c) for s in singles for c in s.caches[layer]]
            cache = [tuple(np.stack(a) for a in zip(*steps, strict=True))]
            want = layer_activation_stats(layer, mt.kind, h, cache, mt.nonlinearity)
            assert abs(stats.mean_dphi - want.mean_dphi) < 1e-12
            assert stats.saturation == want.saturation
            if want.gate_mean is not None:
                assert abs(stats.gate_mean - want.gate_mean) < 1e-12


def test_full_length_sequences_measure_as_in_the_padded_batch():
    """The packed batch gives the full-length sequences the δ norms and lag norms of the same
    batch given padded (every sequence T steps long); with every length T, the whole
    Diagnosis is the padded batch's."""
    m = make(nn.LSTM, {"bidirectional": True}, seed=4)
    torch.manual_seed(5)
    x = torch.randn(T, B, D_in, dtype=f64)
    A = torch.randn(T, B, 2 * H, dtype=f64)
    W = [torch.randn(4, B, H, dtype=f64) for _ in range(2)]
    loss = separable_loss(A, W)
    packed = pack(x, LENGTHS, enforce_sorted=False)
    d_packed = rt.gradient_flow(m, packed, loss, jacobian_sequences=B)
    d_padded = rt.gradient_flow(m, x, loss, jacobian_sequences=B)
    mt_packed, mt_padded = rt.trace(m, packed, loss)[""], rt.trace(m, x, loss)[""]
    for name in ("h", "c"):
        per_step = [
            np.linalg.norm(mt.deltas[name][:, :, FULL], axis=3) for mt in (mt_packed, mt_padded)
        ]  # (L, T+1, full): ‖∂L/∂h_k‖ per sequence and step
        assert rel_err(*per_step) < 1e-12
    assert d_packed.flow.lag.sequences == FULL  # only they reach step T
    assert rel_err(d_packed.flow.lag.norms, d_padded.flow.lag.norms[:, :, FULL]) < 1e-12
    assert d_packed.jacobians[0].sequences == FULL
    for jp, jq in zip(d_packed.jacobians, d_padded.jacobians, strict=True):
        assert rel_err(jp.log_norm, jq.log_norm[:, FULL]) < 1e-10

    same = pack(x, [T] * B)
    a, b = rt.gradient_flow(m, same, loss), rt.gradient_flow(m, x, loss)
    for name in ("h", "c"):
        assert rel_err(a.flow.delta_norm[name], b.flow.delta_norm[name]) < 1e-12
    assert rel_err(a.flow.lag.profile, b.flow.lag.profile) < 1e-12
    assert a.flow.horizon == b.flow.horizon and a.label == b.label
    for sa, sb in zip(a.activations, b.activations, strict=True):
        assert abs(sa.gate_mean - sb.gate_mean) < 1e-12


def test_packed_input_in_a_module_called_step_by_step_gets_a_one_line_error():
    lstm = nn.LSTM(D_in, H, dtype=f64)
    packed = pack(torch.randn(T, B, D_in, dtype=f64), LENGTHS, enforce_sorted=False)

    def twice(m, p):
        out, state = m(p)
        return m(p, state)[0].data.sum()

    with pytest.raises(ValueError, match=r"^input: got a PackedSequence .* step by step"):
        rt.trace(lstm, packed, twice)
    assert "forward" not in lstm.__dict__
