"""PyTorch's recurrent cells, one step at a time, in torch ops: the equations the twin runs.

They are PyTorch's own (the torch.nn.RNN / LSTM / GRU docs and aten/src/ATen/native/RNN.cpp),
with the input projection ax_t = W_ih x_t + b_ih precomputed for every t and the recurrent
product ah_t = W_hh h_{t−1} + b_hh computed by the caller:

    RNN   h_t = φ(ax_t + W_hh h_{t−1} + b_hh)                          φ = tanh or relu
    LSTM  [a_i, a_f, a_g, a_o] = ax_t + W_hh h_{t−1} + b_hh
          i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
          c_t = f ⊙ c_{t−1} + i ⊙ g
          h_t = o ⊙ tanh(c_t)             with proj_size > 0: h_t = W_hr (o ⊙ tanh(c_t))
    GRU   [ax_r, ax_z, ax_n] = ax_t       [ah_r, ah_z, ah_n] = W_hh h_{t−1} + b_hh
          r = σ(ax_r + ah_r)  z = σ(ax_z + ah_z)  n = tanh(ax_n + r ⊙ ah_n)
          h_t = n + z ⊙ (h_{t−1} − n)       (= (1 − z) ⊙ n + z ⊙ h_{t−1})

The state is the pair (h_t, c_t) for the LSTM. The steps build only what autograd needs;
`caches` recomputes afterwards, for all steps at once and without a graph, what the engine
cells cache, so the diagnostics read activations and step Jacobians as for the engine.
"""

from __future__ import annotations

from typing import Any

from rnnlab.engine.cells.gru import GRUCache
from rnnlab.engine.cells.lstm import LSTMCache
from rnnlab.engine.cells.rnn import RNNCache
from rnnlab.torch._torch import import_torch

Tensor = Any  # torch.Tensor; torch is imported lazily
State = tuple[Tensor, ...]


def rnn_step(ax: Tensor, ah: Tensor, state: State, nonlinearity: str) -> State:
    torch = import_torch()
    a = ax + ah
    return (torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a),)


def lstm_step(ax: Tensor, ah: Tensor, state: State, w_hr: Tensor | None = None) -> State:
    torch = import_torch()
    _, c_prev = state
    gates = ax + ah
    a_i, a_f, a_g, a_o = gates.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c = f * c_prev + i * g
    h = o * torch.tanh(c)
    if w_hr is not None:
        h = torch.nn.functional.linear(h, w_hr)  # the projection, (B, H) -> (B, P)
    # the c carried to step t+1 is a node of its own, so ∂L/∂c_t is the partial derivative
    # for the state pair (h_t, c_t), as in the engine and its Jacobian: the path from c_t
    # into h_t belongs to step t
    return h, c.view_as(c)


def gru_step(ax: Tensor, ah: Tensor, state: State) -> State:
    torch = import_torch()
    (h_prev,) = state
    ax_r, ax_z, ax_n = ax.chunk(3, dim=-1)
    ah_r, ah_z, ah_n = ah.chunk(3, dim=-1)
    r = torch.sigmoid(ax_r + ah_r)
    z = torch.sigmoid(ax_z + ah_z)
    n = torch.tanh(ax_n + r * ah_n)
    return (n + z * (h_prev - n),)


def step(
    kind: str, nonlinearity: str | None, ax: Tensor, ah: Tensor, state: State, w_hr: Any = None
) -> State:
    """One step of cell `kind` from ax = W_ih x_t + b_ih and ah = W_hh h_{t−1} + b_hh: the new
    state (h_t,) or (h_t, c_t). w_hr: an LSTM's projection, if any."""
    if kind == "rnn":
        return rnn_step(ax, ah, state, nonlinearity or "tanh")
    if kind == "lstm":
        return lstm_step(ax, ah, state, w_hr)
    return gru_step(ax, ah, state)


def caches(kind: str, ax: Tensor, ah: Tensor, prev: Any, new: Any) -> Any:
    """The engine cell's cache (its NamedTuple, of tensors) of steps whose ax, ah and states
    before (prev) and after (new) were recorded, any leading dims ((T, B, ·) for a whole
    sequence at once). No graph is kept."""
    torch = import_torch()
    with torch.no_grad():
        if kind == "rnn":
            return RNNCache(new[0])
        if kind == "lstm":
            gates = ax + ah
            H = gates.shape[-1] // 4
            act = torch.sigmoid(gates)  # i, f, o; g is replaced next
            act[..., 2 * H : 3 * H] = torch.tanh(gates[..., 2 * H : 3 * H])
            return LSTMCache(act, prev[1], torch.tanh(new[1]))
        ax_r, ax_z, ax_n = ax.chunk(3, dim=-1)
        ah_r, ah_z, ah_n = ah.chunk(3, dim=-1)
        r = torch.sigmoid(ax_r + ah_r)
        z = torch.sigmoid(ax_z + ah_z)
        return GRUCache(r, z, torch.tanh(ax_n + r * ah_n), ah_n, prev[0])
