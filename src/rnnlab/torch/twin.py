"""The step-by-step twin of a fused nn.RNN / nn.LSTM / nn.GRU, swapped in for one pass.

PyTorch runs a whole sequence as one kernel, so no hook sees h_t. For one diagnostic pass
the twin replaces the module's forward: it reads the module's own parameters (no copy) and
runs PyTorch's equations (steps.py) one step at a time, so every h_t (and c_t) is a tensor
of its own in the autograd graph. It takes and returns exactly what the module does: input
(T, B, D), (B, T, D) with batch_first, unbatched (T, D), or a PackedSequence (packed.py:
each sequence runs its own steps and keeps its state after them); hx or (h0, c0); any
number of layers; bidirectional; LSTM proj_size; dropout between layers in training mode (a
fresh mask drawn with F.dropout from torch's RNG, which the pass restores afterwards).

The swap sets the forward as an attribute of the module object, so the model keeps its own
modules (and the user's hooks on them run), and it is undone in a `finally`, also when the
pass raises.

Layers are numbered as PyTorch numbers h_n: layer l, direction d is entry l·D + d (D = 2
when bidirectional). Each is a "layer" of the diagnosis, in its own time order: the reverse
direction's step s reads position T + 1 − s (n_b + 1 − s for a packed sequence of length n_b).

A module called several times in one pass is followed across the calls when each call's
initial state is the previous call's returned state, as in a decoder that feeds (h, c) back
step by step; its steps then run on as one sequence. Calls with unrelated states raise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rnnlab.torch._torch import import_torch
from rnnlab.torch.packed import own_order, repack, running, unpack
from rnnlab.torch.steps import step

Tensor = Any


@dataclass
class Call:
    """One call of the twin: its top layer's outputs, time-major (T, B, D·S), and the final
    states it returned (h_n[, c_n]), the very objects the caller got."""

    output: Tensor
    finals: tuple[Tensor, ...]
    steps: int


@dataclass
class Recording:
    """What the twin of one module saw in one pass. states[l][k] lists state part k (h, c)
    of layer l for steps 0..T in the layer's own time order; ax[l] its input projections
    W_ih x_t + b_ih, detached, (T, B, G·H) per call; ah[l] the recurrent products
    W_hh h_{t−1} + b_hh, one per step, in the graph; both in the same order. lengths (B,):
    each sequence's own number of steps, for a PackedSequence input (None: all T)."""

    name: str
    module: Any
    kind: str
    states: list[list[list[Tensor]]] = field(default_factory=list)
    ax: list[list[Tensor]] = field(default_factory=list)
    ah: list[list[Tensor]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    lengths: Tensor | None = None

    @property
    def directions(self) -> int:
        return 2 if self.module.bidirectional else 1

    @property
    def steps(self) -> int:
        return sum(c.steps for c in self.calls)


KINDS = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}
STEP_WEIGHTS = ("w_hh", "b_hh", "w_hr")  # used at every step, their gradient formed afterwards


def kind_of(module: Any) -> str | None:
    """rnn, lstm or gru for a module the twin can replace; None for a non-recurrent module.
    Raises, naming the type, for a recurrent module it cannot replace."""
    torch = import_torch()
    nn = torch.nn
    for cls in (nn.LSTM, nn.GRU, nn.RNN):
        if isinstance(module, cls):
            if type(module).forward is not cls.forward:
                raise ValueError(
                    f"model: got {type(module).__name__}, a subclass of nn.{cls.__name__} with "
                    f"its own forward; expected nn.RNN, nn.LSTM or nn.GRU, whose equations "
                    "the twin knows (or use rnnlab.torch.watch() in your forward)"
                )
            return KINDS[cls.__name__]
    if isinstance(module, nn.RNNBase):
        raise ValueError(
            f"model: got {type(module).__name__}, a recurrent module of unknown equations; "
            "expected nn.RNN, nn.LSTM or nn.GRU (or use rnnlab.torch.watch() in your forward)"
        )
    return None


def recurrent_modules(model: Any) -> dict[str, Any]:
    """name -> module for every nn.RNN / nn.LSTM / nn.GRU in `model` ('' is the model itself)."""
    torch = import_torch()
    found, cells = {}, []
    for name, m in model.named_modules():
        if kind_of(m) is not None:
            found[name] = m
        elif isinstance(m, torch.nn.RNNCellBase):
            cells.append(f"{type(m).__name__} at {name!r}")
    if not found:
        hint = (
            f"; it holds {', '.join(cells)}, which runs one step per call: "
            if cells
            else "; for a hand-written recurrence "
        )
        raise ValueError(
            f"model: got {type(model).__name__} with no nn.RNN, nn.LSTM or nn.GRU inside{hint}"
            "use `with rnnlab.torch.watch() as w:` and `h = w.step(h)` in your loop"
        )
    return found


def weights(module: Any, layer: int, direction: int) -> dict[str, Tensor]:
    """The parameters of layer `layer`, direction `direction` (0 forward, 1 reverse)."""
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    get = lambda name: getattr(module, name + suffix, None)  # noqa: E731
    return {
        "w_ih": get("weight_ih"),
        "w_hh": get("weight_hh"),
        "b_ih": get("bias_ih") if module.bias else None,
        "b_hh": get("bias_hh") if module.bias else None,
        "w_hr": get("weight_hr") if getattr(module, "proj_size", 0) else None,
    }


def _initial_state(module: Any, kind: str, hx: Any, x: Tensor, batched: bool) -> list[Tensor]:
    """hx as a list of parts (h0[, c0]), each (L·D, B, S); zeros where hx is None."""
    torch = import_torch()
    LD = module.num_layers * (2 if module.bidirectional else 1)
    B = x.shape[1]
    H = module.hidden_size
    S = getattr(module, "proj_size", 0) or H
    if hx is None:
        sizes = (S, H) if kind == "lstm" else (H,)
        return [torch.zeros(LD, B, s, dtype=x.dtype, device=x.device) for s in sizes]
    parts = list(hx) if kind == "lstm" else [hx]
    return [p if batched else p.unsqueeze(1) for p in parts]


def _chained(rec: Recording, kind: str, hx: Any, packed: bool) -> bool:
    """True when `hx` is what the previous call returned, so this call continues its steps."""
    if not rec.calls:
        return False
    parts = tuple(hx) if kind == "lstm" and hx is not None else (hx,)
    prev = rec.calls[-1].finals
    if hx is not None and all(a is b for a, b in zip(parts, prev, strict=True)):
        if packed or rec.lengths is not None:
            # the sequences would end at different steps of the chain, not at its end
            raise ValueError(
                f"input: got a PackedSequence in module {rec.name!r} called step by step; "
                "expected packed input only in a module's one call of the pass"
            )
        if rec.directions == 2:
            raise ValueError(
                f"module {rec.name!r}: a bidirectional module called step by step has no one "
                "time order to follow; expected one call over the whole sequence"
            )
        return True
    raise ValueError(
        f"module {rec.name!r}: called {len(rec.calls) + 1} times in one pass with unrelated "
        "initial states; expected one call, or calls that feed back the (h, c) the previous "
        "call returned (pass `module=` to diagnose another module)"
    )


def twin_forward(rec: Recording, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:
    """The module's forward, unrolled: same arguments, same results, every state recorded."""
    torch = import_torch()
    F = torch.nn.functional
    module, kind = rec.module, rec.kind
    packed = isinstance(input, torch.nn.utils.rnn.PackedSequence)
    lengths = None
    if packed:
        x, lengths = unpack(input)  # (T, B, D) in the batch order of hx; batch_first ignored
        batched = True
    else:
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and module.batch_first:
            x = x.transpose(0, 1)  # (T, B, D), time-major from here on
    T = x.shape[0]
    chained = _chained(rec, kind, hx, packed)
    rec.lengths = lengths
    valid = None if lengths is None else running(T, lengths)  # (T, B)
    parts = _initial_state(module, kind, hx, x, batched)
    L, D = module.num_layers, rec.directions
    nonlinearity = getattr(module, "nonlinearity", None)
    finals: list[list[Tensor]] = [[] for _ in parts]
    inputs = x
    for layer in range(L):
        outs = []
        for d in range(D):
            idx = layer * D + d
            w = weights(module, layer, d)
            ax = F.linear(inputs, w["w_ih"], w["b_ih"])  # (T, B, G·H), one GEMM for all t
            # the weights used at every step enter detached: autograd would otherwise form
            # ∂L/∂W_hh step by step; measure.py forms it once, Σ_t ∂L/∂ah_tᵀ h_{t−1}
            w_hh, b_hh, w_hr = (None if w[k] is None else w[k].detach() for k in STEP_WEIGHTS)
            state = tuple(p[idx] for p in parts)
            if not chained:
                # a state with no graph behind it (zeros, a constant) gets one, so ∂L/∂h_0 exists
                state = tuple(s if s.requires_grad else s.detach().requires_grad_() for s in state)
                rec.states.append([[s] for s in state])
                rec.ax.append([])
                rec.ah.append([])
            states, ahs = rec.states[idx], rec.ah[idx]
            ax = ax if d == 0 else own_order(ax, lengths)  # the direction's own time order
            rec.ax[idx].append(ax.detach())
            hs: list[Tensor] = []
            # one view per step; ax[t] would backprop a full (T, B, G·H) each
            for t, ax_t in enumerate(ax.unbind(0)):
                ah = F.linear(state[0], w_hh, b_hh)
                new = step(kind, nonlinearity, ax_t, ah, state, w_hr)
                if valid is not None:
                    # past its end a sequence keeps its state; the step not taken gets no grad
                    new = tuple(
                        torch.where(valid[t, :, None], n, s)
                        for n, s in zip(new, state, strict=True)
                    )
                state = new
                ahs.append(ah)
                for buf, s in zip(states, state, strict=True):
                    buf.append(s)
                hs.append(state[0])
            h = torch.stack(hs)  # (T, B, S)
            outs.append(h if d == 0 else own_order(h, lengths))  # in position order
            for buf, s in zip(finals, state, strict=True):
                buf.append(s)
        inputs = outs[0] if D == 1 else torch.cat(outs, dim=2)
        if module.dropout and module.training and layer < L - 1:
            inputs = F.dropout(inputs, module.dropout, training=True)  # as PyTorch, not on top
    output = inputs  # (T, B, D·S)
    returned = [torch.stack(f) for f in finals]  # h_n (and c_n), (L·D, B, ·)
    if not batched:
        returned = [r.squeeze(1) for r in returned]
    out = output if batched else output.squeeze(1)
    if packed:
        out = repack(output, input)
    elif batched and module.batch_first:
        out = out.transpose(0, 1)
    rec.calls.append(Call(output=output, finals=tuple(returned), steps=T))
    return out, (tuple(returned) if kind == "lstm" else returned[0])


@contextmanager
def twinned(modules: dict[str, Any]) -> Iterator[dict[str, Recording]]:
    """Within the block, each module in `modules` (name -> module) runs as its twin; the
    recordings fill up as the model runs. Every module gets its own forward back on exit,
    also when the block raises."""
    recordings = {name: Recording(name, m, kind_of(m) or "") for name, m in modules.items()}
    patched: list[tuple[Any, object]] = []
    missing = object()
    try:
        for rec in recordings.values():
            m = rec.module
            patched.append((m, m.__dict__.get("forward", missing)))
            m.forward = lambda input, hx=None, _rec=rec: twin_forward(_rec, input, hx)
        yield recordings
    finally:
        for m, before in reversed(patched):
            if before is missing:
                del m.forward
            else:
                m.forward = before
