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

`cells` (one per layer, or one for a single layer) tells the cell's kind and weights: an
nn.RNNCell, nn.LSTMCell or nn.GRUCell is known by its type; a module of your own is declared
with rnnlab.torch.cell (cells.py), which names the registered cell it implements (indrnn,
exprnn, mingru, minlstm, ...) and where its weights are:

    cells=[rnnlab.torch.cell("mingru", my_module, U="lin.weight", b="lin.bias")]

Forward hooks on the cells record each step's input, which gives the activation statistics,
the step Jacobians (the engine cell's `jacobian` on caches rebuilt from the recorded inputs
and states), the weight spectra (the cell's recurrent matrix; none for minGRU and minLSTM)
and the remedies of that kind. Without cells those are left out and the remedies are those
of a plain recurrence (pass run=RunInfo(cell=...) to diagnose to say otherwise); any loop
works then. Nothing is changed: gradients are taken with torch.autograd.grad and
retain_graph=True.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rnnlab.arrays import Array
from rnnlab.checks import check_int
from rnnlab.diagnostics import Diagnosis, DiagnosisOptions
from rnnlab.diagnostics.options import options_from
from rnnlab.engine.cells import Cell, as_cell
from rnnlab.torch._torch import import_torch
from rnnlab.torch.cells import TorchCell
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
        self.cell = _cell_kind(self.cells)
        self.kind = None if self.cell is None else self.cell.name
        self.nonlinearity = None if self.cell is None else self.cell.options().get("nonlinearity")
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
        cache = None if first_call else self._cache(layer, parts, [r[-1] for r in recorded])
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
        weights = None
        if known:
            dtype = states["h"].dtype
            weights = []
            for layer, c in enumerate(self.cells):
                if isinstance(c, TorchCell):  # the recorded steps, rerun by the engine cell
                    caches[layer], p = c.caches(layer, caches[layer] or [], dtype)
                    weights.append(p)
                else:
                    weights.append({"W": as_numpy(c.weight_hh)})
        S = states["h"].shape[-1]
        info: dict[str, Any] = {"cell": self.kind or "custom"}
        if self.nonlinearity is not None:
            info["nonlinearity"] = self.nonlinearity
        if self.cell is not None and any(isinstance(c, TorchCell) for c in self.cells):
            info |= self.cell.options()  # as an engine model's config
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
            weights=weights,
            cell=self.cell,
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
            x = args[0] if args else kwargs.get("input")
            hx = args[1] if len(args) > 1 else kwargs.get("hx")
            new = tuple(output) if isinstance(output, tuple | list) else (output,)
            self._pending[layer].append((new, x, hx))

        return hook

    def _cache(self, layer: int, parts: tuple, prev: list[Tensor]) -> Any:
        """The step cache of the cell call that produced parts[0] (h), in the engine's
        format; for a TorchCell the step itself (x_t, state_{t−1}, state_t), detached, which
        the trace reruns in numpy."""
        torch = import_torch()
        pending = self._pending.get(layer, [])
        for i, (new, x, hx) in enumerate(pending):
            if new[0] is parts[0]:
                del pending[: i + 1]
                cell = self.cells[layer]
                if isinstance(cell, TorchCell):
                    return self._step_of(layer, cell, x, prev, parts)
                if hx is None:
                    prev = [torch.zeros_like(p) for p in new]
                else:
                    prev = list(hx) if isinstance(hx, tuple | list) else [hx]
                with torch.no_grad():
                    ax = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih)
                    ah = torch.nn.functional.linear(prev[0], cell.weight_hh, cell.bias_hh)
                cache = caches(self.kind or "", ax, ah, prev, new)
                # an unbatched cell call (D,) counts as a batch of one
                return cache._make(as_numpy(c if c.dim() == 2 else c[None]) for c in cache)
        return None

    def _step_of(
        self, layer: int, cell: TorchCell, x: Any, prev: list[Tensor], parts: tuple
    ) -> tuple:
        torch = import_torch()
        name = type(cell.module).__name__
        D, S = cell.input_size, len(cell.cell.state_names)
        if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2) or x.shape[-1] != D:
            got = f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"cells: layer {layer}'s {name} got {got} as its first argument; expected "
                f"x_t (B, {D}) first, as in module(x_t, h)"
            )
        if len(parts) != S:
            raise ValueError(
                f"state: got {len(parts)} part(s) at layer {layer}; expected {S} "
                f"({', '.join(cell.cell.state_names)}) for {cell.cell.named()}"
            )
        return x.detach(), tuple(p.detach() for p in prev), tuple(p.detach() for p in parts)


@contextmanager
def watch(cells: Any = None) -> Iterator[Watch]:
    """A Watch for a hand-written recurrence; `cells` (optional): the cell the loop runs,
    one per layer: an nn.RNNCell / nn.LSTMCell / nn.GRUCell, or rnnlab.torch.cell(name,
    module, ...) for a module of your own. Hooks on them are removed on exit."""
    cells = [] if cells is None else list(cells) if isinstance(cells, list | tuple) else [cells]
    w = Watch(cells)
    modules = [c.module if isinstance(c, TorchCell) else c for c in cells]
    handles = [m.register_forward_hook(w._hook(i), with_kwargs=True) for i, m in enumerate(modules)]
    try:
        yield w
    finally:
        for handle in handles:
            handle.remove()


def _cell_kind(cells: list[Any]) -> Cell | None:
    """The one engine cell the `cells` are, or None without cells."""
    torch = import_torch()
    nn = torch.nn
    kinds: list[Cell] = []
    for c in cells:
        if isinstance(c, TorchCell):
            kinds.append(c.cell)
            continue
        for cls, kind in ((nn.LSTMCell, "lstm"), (nn.GRUCell, "gru"), (nn.RNNCell, "rnn")):
            if isinstance(c, cls):
                kinds.append(as_cell(kind, getattr(c, "nonlinearity", None)))
                break
        else:
            raise ValueError(
                f"cells: got {type(c).__name__}; expected nn.RNNCell, nn.LSTMCell, nn.GRUCell "
                "or rnnlab.torch.cell(name, module, ...) for a module of your own"
            )
    if any(k != kinds[0] for k in kinds):
        shown = ", ".join(sorted({repr(k) for k in kinds}))
        raise ValueError(f"cells: got cells of different kinds ({shown}); expected one kind")
    return kinds[0] if kinds else None


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
