"""watch(): the same Diagnosis for a recurrence the user writes as a loop.

    with rnnlab.torch.watch(cells=[cell]) as w:           # cells: optional, see below
        h, c = w.step((h0, c0))                           # the initial state, h_0
        for t in range(T):
            h, c = w.step(cell(x[t], (h, c)))             # each new state, h_1 … h_T
            outputs.append(readout(h))
        loss = loss_fn(torch.stack(outputs), y)
        d = w.diagnose(loss)                              # a rnnlab Diagnosis
    loss.backward()                                       # training goes on as usual

Call `w.step` on the initial state and then once per step on each new state, and use what
it returns for everything downstream (the next step, the readout, the layer above). A state
is a tensor h (B, S) or a tuple (h, c); a stacked loop passes `layer=l` for each layer, and
every layer must be watched on the same steps. ∂L/∂h_k is the gradient through every use of
the returned h_k; the c (and any later part) is handed back as a fresh node, so ∂L/∂c_k
counts its path to the next step only, the partial derivative for the state pair (h_k, c_k)
as in the engine.

The lag profile of output step t backpropagates the part of ∂L/∂h^top_t that does not flow
on to step t+1, g_t = ∂L/∂h^top_t − (∂state_{t+1}/∂h^top_t)ᵀ ∂L/∂state_{t+1}, from h^top_t.

`cells` (an nn.RNNCell, nn.LSTMCell or nn.GRUCell, or one per layer) tells the cell type and
weights; their forward hooks record each step's input, which gives the activation statistics,
the step Jacobians and the weight spectra. Without cells those are left out and the remedies
are those of a plain recurrence (pass run=RunInfo(cell=...) to diagnose to say otherwise).
Nothing is changed: gradients are taken with torch.autograd.grad and retain_graph=True.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rnnlab.arrays import Array
from rnnlab.checks import check_int
from rnnlab.diagnostics import Diagnosis, DiagnosisOptions
from rnnlab.diagnostics.options import options_from
from rnnlab.torch._torch import import_torch
from rnnlab.torch.diagnosis import diagnosis
from rnnlab.torch.measure import (
    ModuleTrace,
    as_numpy,
    check_loss,
    check_output_step,
    stack_grads,
)
from rnnlab.torch.steps import caches

Tensor = Any


class Watch:
    """Records the states of a loop; see the module docstring."""

    def __init__(self, cells: Sequence[Any]) -> None:
        self.cells = list(cells)
        self.kind, self.nonlinearity = _cell_kind(self.cells)
        self.states: dict[int, list[list[Tensor]]] = {}
        self.caches: dict[int, list[tuple] | None] = {}
        self._pending: dict[int, list[tuple]] = {i: [] for i in range(len(self.cells))}
        self._made: set[int] = set()  # ids of the states watch created as leaves

    def step(self, state: Any, layer: int = 0) -> Any:
        """Record `state` (a tensor, or a tuple (h, c)) as layer `layer`'s next state and
        return it for the loop to use."""
        torch = import_torch()
        layer = check_int("layer", layer, 0)
        parts = tuple(state) if isinstance(state, tuple | list) else (state,)
        if not parts or not all(isinstance(p, torch.Tensor) for p in parts):
            raise ValueError(
                f"state: got {type(state).__name__}; expected a tensor h or a tuple (h, c)"
            )
        recorded = self.states.setdefault(layer, [[] for _ in parts])
        if len(recorded) != len(parts):
            raise ValueError(
                f"state: got {len(parts)} part(s) at layer {layer}; expected {len(recorded)} "
                "as on its first step"
            )
        first_call = not recorded[0]
        cache = self._cache(layer, parts[0]) if not first_call else None
        if not first_call:
            caches = self.caches.setdefault(layer, [])
            if cache is None or caches is None:
                self.caches[layer] = None  # no cell seen for this step: no caches for the layer
            else:
                caches.append(cache)
        out = []
        for k, p in enumerate(parts):
            if not p.requires_grad:
                p = p.detach().requires_grad_()  # a constant state gets a node of its own
                self._made.add(id(p))
            elif k > 0:
                p = p.view_as(p)  # the carried c: its path into h of this step is not counted
            recorded[k].append(p)
            out.append(p)
        if isinstance(state, tuple | list):
            return type(state)(out)
        return out[0]

    def trace(self, loss: Any, *, output_step: int | None = None) -> ModuleTrace:
        """∂L/∂h_k for every watched state, and ∂L_t/∂h_k, t = output_step (default T)."""
        torch = import_torch()
        loss = check_loss(loss)
        L = self._check_layers()
        T = len(self.states[0][0]) - 1
        t = check_output_step(output_step, T)
        flat = [s for layer in range(L) for part in self.states[layer] for s in part]
        params = _leaves(loss, self._made)
        grads = torch.autograd.grad(loss, flat + params, retain_graph=True, allow_unused=True)
        for s, g in zip(flat, grads, strict=False):
            if g is None and id(s) in self._made:
                raise ValueError(
                    "state: a watched state does not reach the loss; expected the loop to use "
                    "the tensor w.step returns (h = w.step(h))"
                )
        it = iter(grads)
        deltas = [[[next(it) for _ in part] for part in self.states[layer]] for layer in range(L)]
        grad_norm = float(
            sum(float(g.double().square().sum()) for g in grads[len(flat) :] if g is not None)
            ** 0.5
        )
        lag = self._lag(t, deltas)
        names = ["h", "c"] + [f"s{k}" for k in range(2, len(self.states[0]))]
        states, delta = {}, {}
        for k, name in enumerate(names[: len(self.states[0])]):
            per_layer = [self.states[layer][k] for layer in range(L)]
            with torch.no_grad():
                states[name] = as_numpy(torch.stack([torch.stack(ss) for ss in per_layer]))
            delta[name] = as_numpy(
                torch.stack(
                    [stack_grads(gs[k], ss) for gs, ss in zip(deltas, per_layer, strict=True)]
                )
            )
        caches = [self.caches.get(layer) for layer in range(L)]
        known = self.kind is not None and all(c is not None and len(c) == T for c in caches)
        S = states["h"].shape[-1]
        info: dict[str, Any] = {"cell": self.kind or "custom"}
        if self.nonlinearity is not None:
            info["nonlinearity"] = self.nonlinearity
        info |= {"module": "watch", "hidden_size": S, "num_layers": L}
        info["layers"] = [f"l{layer}" for layer in range(L)]
        return ModuleTrace(
            name="watch",
            info=info,
            kind=self.kind,
            nonlinearity=self.nonlinearity,
            layers=info["layers"],
            hidden_size=_hidden_size(self.cells, S),
            step=t,
            states=states,
            deltas=delta,
            lag=lag,
            loss=float(loss.detach()),
            grad_norm=grad_norm,
            caches=[c for c in caches if c is not None] if known else None,
            weights=[{"W": as_numpy(c.weight_hh)} for c in self.cells] if known else None,
        )

    def diagnose(
        self,
        loss: Any,
        *,
        output_step: int | None = None,
        grad_norms: Any = None,
        nonfinite_steps: int | None = None,
        options: DiagnosisOptions | None = None,
        **keywords: Any,
    ) -> Diagnosis:
        """The Diagnosis of the watched loop, as gradient_flow gives for a module."""
        opts = options_from(options, keywords)
        return diagnosis(
            self.trace(loss, output_step=output_step),
            opts,
            grad_norms=grad_norms,
            nonfinite_steps=nonfinite_steps,
        )

    # -- internals ---------------------------------------------------------------------

    def _check_layers(self) -> int:
        if not self.states:
            raise ValueError("watch: no state recorded; expected h = w.step(h) in the loop")
        L = max(self.states) + 1
        counts = {layer: len(self.states.get(layer, [[]])[0]) for layer in range(L)}
        if len(set(counts.values())) != 1:
            raise ValueError(
                f"layer: got states per layer {counts}; expected every layer watched on the "
                "same steps, h_0 included"
            )
        if counts[0] < 3:
            raise ValueError(f"watch: got {counts[0]} states; expected h_0 and at least two steps")
        if self.cells and len(self.cells) != L:
            raise ValueError(
                f"cells: got {len(self.cells)} for {L} watched layer(s); expected one per layer"
            )
        return L

    def _lag(self, t: int, deltas: list[list[list[Tensor]]]) -> Array:
        torch = import_torch()
        L, T = len(deltas), len(self.states[0][0]) - 1
        top = [part[t] for part in self.states[L - 1]]
        g = [
            s.new_zeros(s.shape) if d[t] is None else d[t]
            for s, d in zip(top, deltas[L - 1], strict=True)
        ]
        if t < T:  # take away what flows on through the next step's states
            nxt = [
                (part[t + 1], d[t + 1])
                for layer in range(L)
                for part, d in zip(self.states[layer], deltas[layer], strict=True)
                if d[t + 1] is not None
            ]
            via = torch.autograd.grad(
                [s for s, _ in nxt],
                top,
                grad_outputs=[d for _, d in nxt],
                retain_graph=True,
                allow_unused=True,
            )
            g = [a if b is None else a - b for a, b in zip(g, via, strict=True)]
        inputs = [self.states[layer][0][k] for layer in range(L) for k in range(t + 1)]
        grads = torch.autograd.grad(
            top, inputs, grad_outputs=g, retain_graph=True, allow_unused=True
        )
        lag = stack_grads(list(grads), inputs)  # (L·(t+1), B, S)
        return as_numpy(lag).reshape((L, t + 1) + tuple(lag.shape[1:]))

    def _hook(self, layer: int) -> Any:
        def hook(module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            new = tuple(output) if isinstance(output, tuple) else (output,)
            self._pending[layer].append((new, args[0], hx))

        return hook

    def _cache(self, layer: int, h: Tensor) -> tuple | None:
        """The step cache of the cell call that produced h, in the engine's format."""
        torch = import_torch()
        pending = self._pending.get(layer, [])
        for i, (new, x, hx) in enumerate(pending):
            if new[0] is h:
                del pending[: i + 1]
                cell = self.cells[layer]
                if hx is None:
                    prev = tuple(torch.zeros_like(p) for p in new)
                else:
                    prev = tuple(hx) if isinstance(hx, tuple | list) else (hx,)
                with torch.no_grad():
                    ax = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih)
                    ah = torch.nn.functional.linear(prev[0], cell.weight_hh, cell.bias_hh)
                cache = caches(self.kind or "", ax, ah, prev, new)
                # an unbatched cell call (D,) counts as a batch of one
                return cache._make(as_numpy(c if c.dim() == 2 else c[None]) for c in cache)
        return None


@contextmanager
def watch(cells: Any = None) -> Iterator[Watch]:
    """A Watch for a hand-written recurrence; `cells` (optional): the nn.RNNCell /
    nn.LSTMCell / nn.GRUCell the loop runs, one per layer. Hooks on them are removed on exit."""
    cells = [] if cells is None else list(cells) if isinstance(cells, list | tuple) else [cells]
    w = Watch(cells)
    handles = [c.register_forward_hook(w._hook(i), with_kwargs=True) for i, c in enumerate(cells)]
    try:
        yield w
    finally:
        for handle in handles:
            handle.remove()


def _cell_kind(cells: list[Any]) -> tuple[str | None, str | None]:
    torch = import_torch()
    nn = torch.nn
    kinds = set()
    for c in cells:
        for cls, kind in ((nn.LSTMCell, "lstm"), (nn.GRUCell, "gru"), (nn.RNNCell, "rnn")):
            if isinstance(c, cls):
                kinds.add((kind, getattr(c, "nonlinearity", None) if kind == "rnn" else None))
                break
        else:
            raise ValueError(
                f"cells: got {type(c).__name__}; expected nn.RNNCell, nn.LSTMCell or nn.GRUCell"
            )
    if len(kinds) > 1:
        raise ValueError(f"cells: got cells of {len(kinds)} kinds; expected one kind")
    return next(iter(kinds)) if kinds else (None, None)


def _hidden_size(cells: list[Any], S: int) -> int:
    return int(cells[0].hidden_size) if cells else S


def _leaves(loss: Tensor, exclude: set[int]) -> list[Tensor]:
    """The tensors requiring grad that `loss` was computed from (the parameters it uses),
    found by walking its autograd graph; the states watch made are left out."""
    seen: set[Any] = set()
    stack = [loss.grad_fn]
    out: dict[int, Tensor] = {}
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        variable = getattr(fn, "variable", None)
        if variable is not None and id(variable) not in exclude:
            out[id(variable)] = variable
        stack.extend(f for f, _ in fn.next_functions)
    return list(out.values())
