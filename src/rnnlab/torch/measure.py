"""One diagnostic pass: the user's loss through the twins, then ∂L/∂h_k and ∂L_t/∂h_k.

    traces = rnnlab.torch.trace(model, batch, loss_fn)      # {module name: ModuleTrace}
    traces["lstm"].deltas["h"]     # (L, T+1, B, S): ∂L/∂h^l_k for k = 0..T, every layer
    traces["lstm"].lag             # (L, t+1, B, S): ∂L_t/∂h^l_k for k = 0..t

∂L/∂h_k is the total gradient, through every path, from one torch.autograd.grad of the
user's loss with respect to every recorded state (and the parameters, for ‖∂L/∂θ‖).

L_t, the loss of output step t, is the part of L whose gradient enters the module's results
at step t: the top layer's output at t, and at t = T also the returned (h_n, c_n). Its
gradient g_t = ∂L/∂output_t is backpropagated from h^top_t alone, through the twin, with
torch.autograd.grad(h^top_t, states, grad_outputs=g_t): ∂L_t/∂h^l_k = g_t ∂h^top_t/∂h^l_k.
For the engine's summed loss this is exactly its masked BPTT. In a bidirectional module each
top direction is followed from its own step t (the reverse one from position T + 1 − t).

A PackedSequence's sequences end at their own lengths n_b. Steps past a sequence's end are
masked out: its states, ∂L/∂h_k, ∂L_t/∂h_k and caches there are zero, and L_t is measured on
the sequences that reach t (for a sequence ending at t it includes the gradient of its h_n).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rnnlab.arrays import Array
from rnnlab.checks import check_int
from rnnlab.engine.cells import Cell
from rnnlab.torch._torch import import_torch
from rnnlab.torch.packed import own_order
from rnnlab.torch.preserve import preserved
from rnnlab.torch.steps import caches
from rnnlab.torch.twin import Recording, kind_of, recurrent_modules, twinned, weights

Tensor = Any


@dataclass(frozen=True)
class ModuleTrace:
    """What one pass saw of one recurrent module (or a watched loop), as numpy arrays in the
    model's precision (float32 or float64).

    name: the module's path in the model ('' for the model itself, 'watch' for a loop).
    info: the architecture, for Diagnosis.model. kind: rnn, lstm or gru (None if unknown);
    layers: the names of the diagnosed layers, bottom first ('l0', 'l0_reverse', ...).
    states / deltas: state name ('h', and 'c' for LSTM) -> (L, T+1, B, S), h^l_k and
        ∂L/∂h^l_k for k = 0..T, each layer in its own time order.
    step: the output step t; lag (L, t+1, B, S): ∂L_t/∂h^l_k for k = 0..t.
    loss: L; grad_norm: ‖∂L/∂θ‖₂ over the model's parameters that require grad.
    caches: per layer, the step caches in the engine cells' format (None when unknown);
    weights: per layer the params the engine cell reads: {'W': the recurrent weight
        (G·H, S), 'W_hr' with a projection} for PyTorch's modules; a watched
        rnnlab.torch.cell's own (U, u, b, ... by the cell's names).
    lengths (B,): each sequence's own number of steps, for a PackedSequence input; every
        entry at a step k > lengths[b] is zero (masked out). None: all run T steps.
    cell: the engine Cell of `kind` with its options (None: the kind and its nonlinearity
        say it all).
    """

    name: str
    info: dict[str, Any]
    kind: str | None
    nonlinearity: str | None
    layers: list[str]
    hidden_size: int
    step: int
    states: dict[str, Array]
    deltas: dict[str, Array]
    lag: Array
    loss: float
    grad_norm: float
    caches: list[list[Any]] | None
    weights: list[dict[str, Array]] | None
    lengths: Array | None = None
    cell: Cell | None = None


def trace(
    model: Any,
    batch: Any,
    loss_fn: Callable[[Any, Any], Any],
    *,
    modules: Sequence[str] | None = None,
    output_step: int | None = None,
) -> dict[str, ModuleTrace]:
    """Run loss_fn(model, batch) once with the recurrent modules named in `modules` (default:
    all) unrolled, and measure them. Nothing about the model changes (see preserve.py)."""
    torch = import_torch()
    found = recurrent_modules(model)
    names = list(found) if modules is None else list(modules)
    for name in names:
        if name not in found:
            raise ValueError(
                f"module: got {name!r}; expected one of {', '.join(map(repr, found))} "
                "(the recurrent modules of the model)"
            )
    params = [p for p in model.parameters() if p.requires_grad]
    with preserved(model), twinned({n: found[n] for n in names}) as recs, torch.enable_grad():
        loss = check_loss(loss_fn(model, batch))
        for rec in recs.values():
            if not rec.calls:
                raise ValueError(
                    f"module: {rec.name!r} was not called by loss_fn; expected the module the "
                    "loss runs through"
                )
        targets = [_targets(rec) for rec in recs.values()]
        flat = [t for group in targets for t in group]
        grads = torch.autograd.grad(loss, flat + params, retain_graph=True, allow_unused=True)
        param_grads = {id(p): g for p, g in zip(params, grads[len(flat) :], strict=True)}
        passes, start = [], 0
        for rec, group in zip(recs.values(), targets, strict=True):
            passes.append(_Pass(rec, grads[start : start + len(group)], output_step))
            start += len(group)
            _add_step_weight_grads(passes[-1], param_grads)
        grad_norm = _norm(param_grads.values())
        value = float(loss.detach())
        return {p.rec.name: p.module_trace(value, grad_norm) for p in passes}


def check_loss(loss: Any) -> Tensor:
    """The scalar tensor loss_fn returned, or a one-line ValueError."""
    torch = import_torch()
    if not isinstance(loss, torch.Tensor):
        raise ValueError(f"loss_fn: returned {type(loss).__name__}; expected a scalar tensor")
    if loss.numel() != 1:
        raise ValueError(
            f"loss_fn: returned a tensor of shape {tuple(loss.shape)}; expected a scalar loss "
            "(reduce it, e.g. with .mean() or .sum())"
        )
    if not loss.requires_grad:
        raise ValueError(
            "loss_fn: returned a loss that does not require grad; expected one computed from "
            "the model with autograd on (not under torch.no_grad() or after .detach())"
        )
    return loss.reshape(())


def check_output_step(step: object, T: int) -> int:
    if T < 2:
        raise ValueError(f"output_step: the sequence has T = {T} step; a lag needs T >= 2")
    if step is None:
        return T
    return check_int("output_step", step, 2, T, why=" (T)")


def as_numpy(t: Tensor) -> Array:
    """A tensor as a numpy array in its own precision (float32 or float64; half precision
    becomes float32): copying to float64 would cost more than the diagnostics read off it."""
    torch = import_torch()
    t = t.detach().to("cpu")
    return (t if t.dtype in (torch.float32, torch.float64) else t.float()).numpy()


def _targets(rec: Recording) -> list[Tensor]:
    """Every recorded state, each recurrent product ah_t, each call's output, then the last
    call's returned states."""
    states = [s for layer in rec.states for part in layer for s in part]
    ahs = [a for layer in rec.ah for a in layer]
    return states + ahs + [c.output for c in rec.calls] + list(rec.calls[-1].finals)


def _norm(grads: Iterable[Tensor | None]) -> float:
    return float(sum(float(g.double().square().sum()) for g in grads if g is not None) ** 0.5)


class _Pass:
    """One module's share of the backward pass: its states, ∂L/∂states and ∂L/∂ah stacked
    per layer, (T+1, B, S) and (T, B, G·H), its output gradients and the output step."""

    def __init__(self, rec: Recording, grads: Sequence[Tensor | None], step: object) -> None:
        torch = import_torch()
        self.rec = rec
        self.t = check_output_step(step, rec.steps)
        it = iter(grads)
        deltas = [[[next(it) for _ in part] for part in layer] for layer in rec.states]
        dah = [[next(it) for _ in layer] for layer in rec.ah]
        self.g_out = [next(it) for _ in rec.calls]
        self.g_fin = [next(it) for _ in rec.calls[-1].finals]
        with torch.no_grad():  # one stack per layer and state part, then one copy to numpy
            self.states = [[torch.stack(part) for part in layer] for layer in rec.states]
            self.deltas = [
                [stack_grads(gs, ss) for gs, ss in zip(dl, sl, strict=True)]
                for dl, sl in zip(deltas, rec.states, strict=True)
            ]
            self.dah = [stack_grads(g, a) for g, a in zip(dah, rec.ah, strict=True)]
            ahs = [torch.stack(a) for a in rec.ah]
            axs = [torch.cat(a) for a in rec.ax]  # (T, B, G·H), each layer's own order
            self.caches = [
                caches(rec.kind, ax, ah, [p[:-1] for p in parts], [p[1:] for p in parts])
                for ax, ah, parts in zip(axs, ahs, self.states, strict=True)
            ]
            if rec.lengths is not None:
                self._mask(rec.lengths)

    def _mask(self, lengths: Tensor) -> None:
        """Zero every entry at steps past a sequence's end: there the twin only carried the
        state, and ∂L/∂h_k is the carried ∂L/∂h_n, which belongs to the sequence's last step
        (zeroing it also keeps the projection's Σ_t ∂L/∂h_tᵀ m_t to the steps taken)."""
        torch = import_torch()
        keep = torch.arange(self.rec.steps + 1, device=lengths.device)[:, None] <= lengths
        keep = keep[:, :, None]  # (T+1, B, 1): h_0..h_{n_b} are sequence b's
        self.states = [[p * keep for p in layer] for layer in self.states]
        self.deltas = [[d * keep for d in layer] for layer in self.deltas]
        self.caches = [cache._make(a * keep[1:] for a in cache) for cache in self.caches]

    def module_trace(self, loss: float, grad_norm: float) -> ModuleTrace:
        torch = import_torch()
        rec = self.rec
        m, D = rec.module, rec.directions
        info, layers = _info(rec)
        names = ("h", "c")[: len(self.states[0])]
        cache_list, weight_list = [], []
        for i, cache in enumerate(self.caches):
            arrays = [as_numpy(a) for a in cache]
            cache_list.append([cache._make(a[k] for a in arrays) for k in range(rec.steps)])
            w = weights(m, i // D, i % D)
            weight_list.append(
                {"W": as_numpy(w["w_hh"])}
                | ({"W_hr": as_numpy(w["w_hr"])} if w["w_hr"] is not None else {})
            )
        with torch.no_grad():
            states = {
                n: as_numpy(torch.stack([layer[k] for layer in self.states]))
                for k, n in enumerate(names)
            }
            deltas = {
                n: as_numpy(torch.stack([layer[k] for layer in self.deltas]))
                for k, n in enumerate(names)
            }
        return ModuleTrace(
            name=rec.name,
            info=info,
            kind=rec.kind,
            nonlinearity=info.get("nonlinearity"),
            layers=layers,
            hidden_size=m.hidden_size,
            step=self.t,
            states=states,
            deltas=deltas,
            lag=_lag(rec, self.t, self.g_out, self.g_fin),
            loss=loss,
            grad_norm=grad_norm,
            caches=cache_list,
            weights=weight_list,
            lengths=None if rec.lengths is None else rec.lengths.cpu().numpy(),
        )


def _add_step_weight_grads(p: _Pass, param_grads: dict[int, Tensor | None]) -> None:
    """The gradients of the weights the twin uses at every step, formed once per layer:
    ∂L/∂W_hh = Σ_t ∂L/∂ah_tᵀ h_{t−1} and ∂L/∂b_hh = Σ_t ∂L/∂ah_t (ah_t = W_hh h_{t−1} + b_hh);
    with a projection h_t = W_hr m_t, ∂L/∂W_hr = Σ_t ∂L/∂h_tᵀ m_t, m_t = o ⊙ tanh(c_t).
    Each is added to what autograd found for the parameter's other uses, if any."""
    torch = import_torch()
    m, D = p.rec.module, p.rec.directions
    with torch.no_grad():
        for i, (dah, parts) in enumerate(zip(p.dah, p.states, strict=True)):
            w = weights(m, i // D, i % D)
            rows = dah.reshape(-1, dah.shape[-1])  # (T·B, G·H), one GEMM over all steps
            h_prev = parts[0][:-1].reshape(rows.shape[0], -1)  # (T·B, S)
            found = {"w_hh": rows.T @ h_prev, "b_hh": rows.sum(0)}
            if w["w_hr"] is not None:
                gates, _, tc = p.caches[i]
                H = tc.shape[-1]
                m_t = (gates[..., 3 * H :] * tc).reshape(rows.shape[0], H)  # o ⊙ tanh(c_t)
                dh = p.deltas[i][0][1:].reshape(rows.shape[0], -1)  # (T·B, P)
                found["w_hr"] = dh.T @ m_t
            for name, g in found.items():
                param = w[name]
                if param is None or not param.requires_grad:
                    continue
                before = param_grads.get(id(param))
                param_grads[id(param)] = g if before is None else before + g


def stack_grads(grads: list[Tensor | None], like: list[Tensor]) -> Tensor:
    """The gradients of tensors `like`, stacked; zeros where autograd found one unused."""
    torch = import_torch()
    return torch.stack(
        [torch.zeros_like(s) if g is None else g for g, s in zip(grads, like, strict=True)]
    )


def _lag(rec: Recording, t: int, g_out: list[Tensor | None], g_fin: list[Tensor | None]) -> Array:
    """(L, t+1, B, S): ∂L_t/∂h^l_k for k = 0..t, by one backward pass from step t."""
    torch = import_torch()
    T, D, L = rec.steps, rec.directions, len(rec.states)
    # L_t's gradient enters each top direction at its own step t, and where a sequence ends
    # at t (at T, unpacked) also every layer through the returned (h_n, c_n); a sequence
    # shorter than t gets none (zero output gradient at its padding), so its lag stays zero
    g_output = torch.cat(
        [
            c.output.new_zeros(c.output.shape) if g is None else g
            for c, g in zip(rec.calls, g_out, strict=True)
        ]
    )  # (T, B, D·S)
    S = g_output.shape[2] // D
    inject: dict[tuple[int, int], Tensor] = {}
    for d in range(D):
        g = g_output[:, :, d * S : (d + 1) * S]
        inject[(L - D + d, 0)] = (g if d == 0 else own_order(g, rec.lengths))[t - 1]
    ends = None if rec.lengths is None else (rec.lengths == t)[:, None]  # (B, 1)
    if t == T or ends is not None:
        for k, g in enumerate(g_fin):
            if g is not None:
                g = g if g.dim() == 3 else g.unsqueeze(1)  # an unbatched h_n is (L·D, S)
                g = g if ends is None else g * ends
                for idx in range(L):
                    inject[(idx, k)] = inject[(idx, k)] + g[idx] if (idx, k) in inject else g[idx]
    if not any(bool(torch.any(g != 0)) for g in inject.values()):
        raise ValueError(
            f"output_step: got {t}; the loss sends no gradient into module {rec.name!r}'s "
            "results at that step; expected a step that carries loss"
        )
    sources = [rec.states[idx][k][t] for idx, k in inject]
    inputs = [layer[0][k] for layer in rec.states for k in range(t + 1)]
    grads = torch.autograd.grad(
        sources, inputs, grad_outputs=list(inject.values()), retain_graph=True, allow_unused=True
    )
    lag = stack_grads(list(grads), inputs)  # (L·(t+1), B, S)
    return as_numpy(lag).reshape((L, t + 1) + tuple(lag.shape[1:]))


def _info(rec: Recording) -> tuple[dict[str, Any], list[str]]:
    """Diagnosis.model for the module, and the names of its diagnosed layers."""
    info = module_info(rec.name, rec.module) | {"calls": len(rec.calls)}
    return info, info["layers"]


def module_info(name: str, m: Any) -> dict[str, Any]:
    """The architecture of the recurrent module `m` at `name`, JSON-safe: cell, sizes, the
    names of its diagnosed layers ('l0', 'l0_reverse', ...)."""
    D = 2 if m.bidirectional else 1
    info: dict[str, Any] = {"cell": kind_of(m)}
    if hasattr(m, "nonlinearity"):  # nn.RNN's φ, the engine RNN cell's option
        info["nonlinearity"] = m.nonlinearity
    return info | {
        "module": name,
        "input_size": m.input_size,
        "hidden_size": m.hidden_size,
        "num_layers": m.num_layers,
        "bidirectional": bool(m.bidirectional),
        "proj_size": int(getattr(m, "proj_size", 0)),
        "layers": [f"l{i // D}" + ("_reverse" if i % D else "") for i in range(m.num_layers * D)],
        "dtype": str(m.weight_hh_l0.dtype).removeprefix("torch."),
    }
