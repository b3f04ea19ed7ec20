"""Single-step, stateless recurrent cells. The loop over time lives in engine/sequence.py.

Every cell has the same interface, so the sequence code and the diagnostics serve all three:

    gates                          G/H: rows of U and W are `gates` stacked (H, ·) blocks
    state_names                    ("h",) or ("h", "c")
    step(ax, state, p)             -> (state, cache)      ax = U x_t + b, precomputed for all t
    coefficients(cache)            -> coef: the step's local derivatives; the cache's arrays
                                      may carry leading dims (all steps stacked at once)
    vjp(dstate, coef, p)           -> (dax, dah, dstate_prev), backward through one step
    jacobian(cache, p)             -> (B, S, S), ∂state_t/∂state_{t−1}, S = len(state)·H

`p` holds the layer's params (W, and b_hn for GRU); `step` also reads `W_T`, Wᵀ made
contiguous once per sequence by unroll, when present.
`dax` is ∂L/∂(U x_t + b) and `dah` is ∂L/∂(W h_{t−1}); they differ only for GRU, whose reset
gate multiplies the recurrent product. Weight gradients are then one GEMM over all T·B rows.
"""

from rnnlab.engine.cells.gru import GRUCell
from rnnlab.engine.cells.lstm import LSTMCell
from rnnlab.engine.cells.rnn import RNNCell

Cell = RNNCell | LSTMCell | GRUCell

__all__ = ["Cell", "GRUCell", "LSTMCell", "RNNCell"]
