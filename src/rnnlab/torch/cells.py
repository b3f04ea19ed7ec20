"""cell(): say what a torch module of your own is, and where its weights are, for watch().

    minGRU = rnnlab.torch.cell("mingru", my_module, U="lin.weight", b="lin.bias")
    with rnnlab.torch.watch(cells=[minGRU]) as w: ...

An nn.RNNCell, nn.LSTMCell or nn.GRUCell is known by its type; a module you wrote is not,
so `cell` names its kind (any registered cell: indrnn, exprnn, mingru, minlstm, and rnn,
lstm, gru written by hand) and maps each of that cell's parameters, by its rnnlab name, to
the module's tensor:

    name=path            a dotted attribute path in the module ("lin.weight", "u")
    name=tensor          the tensor itself (a parameter of the module, or any tensor)
    name=(a, b, ...)     paths or tensors stacked along dim 0, in the cell's gate order:
                         U=("to_z.weight", "to_h.weight") for a minGRU with two Linears

The parameters are the cell's own, in the engine's orientation (PyTorch's: U is (G·H, D),
its G gate blocks stacked in the order of the cell's gate_names; b is (G·H,)); the cell
file's docstring gives the equations they enter:

    indrnn   U (H, D), u (H,), b (H,)            nonlinearity= relu (default), tanh, ...
    exprnn   U (H, D), A (H, H), b (H,), and b_mod (H,) with modReLU, the default φ
    mingru   U (2H, D), b (2H,)                  blocks z, h̃
    minlstm  U (3H, D), b (3H,)                  blocks f, i, h̃

Any cell the registry gains (the LRU) is declared the same way: its parameter names and
shapes are those its own `init_layer` makes. Other keywords are the cell's options
(nonlinearity, recurrent_max, scan, ...), as in configs. Every parameter must be named (a
module without a bias: b=torch.zeros(G·H)); H and D are read off U, and every tensor's
shape is checked against them when `cell` is called.

The module must be called as module(x_t, ...) with x_t (B, D) or (D,) first, on the state
the loop got back from w.step, and return the new state (h_t, or a tuple of the cell's
state parts), which the loop passes to w.step. At w.diagnose, each recorded step is run
again by the engine cell, in numpy, on ax_t = U x_t + b and h_{t−1} with the weights as
they are then; that gives its cache (activations, step Jacobians) and recurrent matrix
(spectra). A step whose result differs from what the module returned is a one-line error:
the module does not compute the cell's equations with the weights named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.engine import init as initialisers
from rnnlab.engine.cells import Cell, cell_type, make_cell
from rnnlab.torch._torch import import_torch

Tensor = Any


@dataclass(frozen=True, eq=False)
class TorchCell:
    """A user's torch module declared as the registered cell `cell`; made by `cell()`.
    sources: the cell's parameter name -> the module's tensors (stacked along dim 0)."""

    cell: Cell
    module: Any
    sources: dict[str, tuple[Tensor, ...]]
    input_size: int
    hidden_size: int

    @property
    def kind(self) -> str:
        return self.cell.name

    def params(self, dtype: np.dtype) -> Params:
        """The layer's params as the engine cell reads them (before `prepare`), now."""
        torch = import_torch()
        with torch.no_grad():
            return {
                name: torch.cat(parts).cpu().double().numpy().astype(dtype)
                for name, parts in self.sources.items()
            }

    def caches(self, layer: int, steps: list[tuple], dtype: Any) -> tuple[list[Any], Params]:
        """(caches, params): the engine cell's cache of every recorded step (x_t, state_{t−1},
        state_t), rerun in numpy, and the params it ran on. Raises when a step's state differs
        from what the module returned."""
        p = self.params(dtype)
        prepared = self.cell.prepare(p)
        U, b = p["U"], p["b"]
        # the dtype's square root of eps, ×10: rounding, not a different equation
        tol = 10 * float(np.sqrt(np.finfo(dtype).eps))
        out = []
        for t, (x, prev, new) in enumerate(steps, 1):
            with np.errstate(all="ignore"):  # an overflowed state is a finding, as in the engine
                ax = _rows(x, dtype) @ U.T + b  # (B, G·H)
                state, cache = self.cell.step(ax, tuple(_rows(s, dtype) for s in prev), prepared)
            for k, (got, want) in enumerate(zip(state, new, strict=True)):
                want = _rows(want, dtype)
                close = np.isclose(got, want, rtol=tol, atol=tol, equal_nan=True)
                if not close.all():
                    err = float(np.max(np.abs(got - want)[~close]))
                    part = self.cell.state_names[k]
                    raise ValueError(
                        f"cells: layer {layer}'s {self.cell.title} equations on the weights "
                        f"given to rnnlab.torch.cell give {part}_{t} {err:.3g} away from what "
                        f"{type(self.module).__name__} returned; expected the module to "
                        f"compute them (rnnlab.engine.cells.{self.kind}) with those weights"
                    )
            out.append(cache)
        return out, p


def cell(name: str, module: Any, /, **keywords: Any) -> TorchCell:
    """Declare `module` (an nn.Module running one step) as the registered cell `name`, its
    parameters mapped to the module's tensors and its options given as keywords; see the
    module docstring. Every error is one line naming the argument."""
    torch = import_torch()
    cls = cell_type(name)
    title = cls.named()
    if not isinstance(module, torch.nn.Module):
        raise ValueError(
            f"module: got {type(module).__name__}; expected the torch.nn.Module that runs one "
            f"step of {title}"
        )
    options = {k: v for k, v in keywords.items() if k in cls.option_names()}
    rnnlab_cell = make_cell(cls.name, **options)
    # the cell's parameter names and shapes, from its own initialisation at a probe size
    names = list(
        rnnlab_cell.init_layer(
            np.random.default_rng(0), 1, cls.hidden_multiple, initialisers.Scheme()
        )
    )
    allowed = ", ".join(names)
    for key, value in keywords.items():
        if key not in names and key not in options:
            opts = ", ".join(cls.option_names()) or "none"
            raise ValueError(
                f"{key}: got {_shown(value)}, but {title} has no parameter or option {key!r}; "
                f"expected its parameters {allowed} (options: {opts})"
            )
    for key in names:
        if key not in keywords:
            raise ValueError(
                f"{key}: missing; {title} needs each of its parameters {allowed} named, "
                f"e.g. {key}='path.to.tensor' in {type(module).__name__}"
            )
    sources = {key: _resolve(key, keywords[key], module) for key in names}
    G = len(cls.gate_names)
    U = _stacked_shape(sources["U"])
    if len(U) != 2 or U[0] % G or U[0] == 0:
        raise ValueError(
            f"U: got shape {U}; expected (G·H, D) with G = {G} for {title} "
            f"(blocks {', '.join(g or 'U' for g in cls.gate_names)})"
        )
    H, D = U[0] // G, U[1]
    expected = rnnlab_cell.init_layer(np.random.default_rng(0), D, H, initialisers.Scheme())
    for key in names:
        got = _stacked_shape(sources[key])
        if got != expected[key].shape:
            raise ValueError(
                f"{key}: got shape {got}; expected {expected[key].shape} for {title} with "
                f"H = {H}, D = {D} (read off U)"
            )
    return TorchCell(rnnlab_cell, module, sources, D, H)


def _resolve(key: str, value: Any, module: Any) -> tuple[Tensor, ...]:
    """The tensors `value` names in `module`: a path, a tensor, or a sequence of those."""
    torch = import_torch()
    parts = list(value) if isinstance(value, list | tuple) else [value]
    if not parts:
        raise ValueError(f"{key}: got an empty {type(value).__name__}; expected a path or tensor")
    out = []
    for part in parts:
        if isinstance(part, str):
            found: Any = module
            for attr in part.split("."):
                found = getattr(found, attr, None)
            if not isinstance(found, torch.Tensor):
                have = ", ".join(n for n, _ in module.named_parameters()) or "none"
                raise ValueError(
                    f"{key}: got {part!r}; {type(module).__name__} has no tensor there "
                    f"(its parameters: {have})"
                )
            part = found
        if not isinstance(part, torch.Tensor):
            raise ValueError(
                f"{key}: got {type(part).__name__}; expected a path in the module (str), a "
                "tensor, or a tuple of those stacked along dim 0"
            )
        if not part.is_floating_point() or part.is_complex() or part.dim() == 0:
            raise ValueError(
                f"{key}: got a {str(part.dtype).removeprefix('torch.')} tensor of shape "
                f"{tuple(part.shape)}; expected a real floating-point array"
            )
        out.append(part)
    if len({p.shape[1:] for p in out}) > 1:
        shapes = ", ".join(str(tuple(p.shape)) for p in out)
        raise ValueError(f"{key}: got shapes {shapes}; expected blocks that stack along dim 0")
    return tuple(out)


def _stacked_shape(parts: Sequence[Tensor]) -> tuple[int, ...]:
    return (sum(int(p.shape[0]) for p in parts), *map(int, parts[0].shape[1:]))


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__


def _rows(t: Tensor, dtype: Any) -> Array:
    """A recorded (B, ·) or unbatched (·,) tensor as (B, ·) numpy rows in `dtype`."""
    a = t.detach().cpu()
    a = a if a.is_floating_point() and a.dtype.itemsize >= 4 else a.float()
    return a.numpy().astype(dtype, copy=False).reshape(-1, a.shape[-1])
