"""Single-step, stateless recurrent cells, and the registry: the one list of kinds.

Every cell subclasses `Cell` (cells/base.py, which lists what a cell declares), so the
sequence code, the diagnostics, configs, reports and the torch bridge serve all of them:

    step(ax, state, p)             -> (state, cache)      ax = U x_t + b, precomputed for all t
    coefficients(cache)            -> coef: the step's local derivatives; the cache's arrays
                                      may carry leading dims (all steps stacked at once)
    vjp(dstate, coef, p)           -> (dax, dah, dstate_prev), backward through one step
    jacobian(cache, p)             -> (B, S, S), ∂state_t/∂state_{t−1}, S = len(state)·H

`p` holds the layer's params as `cell.prepare` left them. `dax` is ∂L/∂(U x_t + b) and
`dah` is ∂L/∂ of the recurrent term (W h_{t−1}); they differ only where a gate scales that
term (GRU). The input projection's gradients are then one GEMM over all T·B rows, and the
cell's `recurrent_grads` gives the rest. The cache is a NamedTuple per cell, read by name.

A new cell is one file here plus one line in CELLS.
"""

from rnnlab.checks import check_one_of
from rnnlab.engine.cells.base import Activations, Cell, GatedLinearCell
from rnnlab.engine.cells.exprnn import ExpRNNCell
from rnnlab.engine.cells.gru import GRUCell
from rnnlab.engine.cells.indrnn import IndRNNCell
from rnnlab.engine.cells.lru import LRUCell
from rnnlab.engine.cells.lstm import LSTMCell
from rnnlab.engine.cells.mingru import MinGRUCell
from rnnlab.engine.cells.minlstm import MinLSTMCell
from rnnlab.engine.cells.rnn import RNNCell

CELLS: dict[str, type[Cell]] = {
    RNNCell.name: RNNCell,
    LSTMCell.name: LSTMCell,
    GRUCell.name: GRUCell,
    IndRNNCell.name: IndRNNCell,
    ExpRNNCell.name: ExpRNNCell,
    MinGRUCell.name: MinGRUCell,
    MinLSTMCell.name: MinLSTMCell,
    LRUCell.name: LRUCell,
}


DEFAULT_CELL = RNNCell.name  # a config that names no cell: the article's


def cell_type(name: object) -> type[Cell]:
    """The registered cell class called `name`."""
    return CELLS[check_one_of("cell", name, tuple(CELLS))]


def make_cell(name: object, /, **options: object) -> Cell:
    """The cell `name` with its options; a key that is not one of them is named."""
    cls = cell_type(name)
    allowed = cls.option_names()
    for key, value in options.items():
        if key not in allowed:
            owners = [c.named() for c in CELLS.values() if key in c.option_names()]
            has = f"only {' or '.join(owners)} has it" if owners else "no cell has it"
            expected = ", ".join(allowed) or "none"
            raise ValueError(
                f"{key}: got {value!r}, but {has}; the {cls.title}'s options are {expected}"
            )
    return cls(**options)


def as_cell(cell: Cell | str, nonlinearity: str | None = None) -> Cell:
    """A Cell as given, or the cell called `cell`, with φ = nonlinearity if that kind has
    one (what a caller knows that reads only a kind and a φ, as the torch bridge)."""
    if isinstance(cell, Cell):
        return cell
    cls = cell_type(cell)
    if "nonlinearity" not in cls.option_names():
        return cls()
    if nonlinearity is None:
        raise ValueError(f"nonlinearity: got None; {cls.named()} needs its φ")
    return make_cell(cell, nonlinearity=nonlinearity)


__all__ = [
    "CELLS",
    "DEFAULT_CELL",
    "Activations",
    "Cell",
    "ExpRNNCell",
    "GatedLinearCell",
    "GRUCell",
    "IndRNNCell",
    "LRUCell",
    "LSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "RNNCell",
    "as_cell",
    "cell_type",
    "make_cell",
]
