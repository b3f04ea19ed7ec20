"""Independent torch references of every registered cell's equations, for the conformance
battery (tests/test_conformance.py): the one thing a new cell brings to tests/.

Each reference is written from the cell's equations (its docstring, DESIGN.md), in torch ops,
sharing no code with rnnlab. It declares:

    shapes(D, H)         the layer's parameter shapes, by name
    step(cell, p, ax, state, act)
                         -> (state_t, probe): one step from ax = U x_t + b (B, G·H) and
                         state_{t−1} (a tuple of (B, H) tensors); `act` maps a φ's name to
                         the torch function to use (the battery wraps relu to see its
                         inputs); probe is what the activation statistics read:
                         (φ's name, φ's output, carry gate's name or None, its values or None)
    blocks(p, H)         the recurrent matrices (numpy) the spectra read, by block name
    output(cell, p, h, u)
                         what the layer hands on, from its states h_1..h_T (T, B, H) and its
                         inputs u (T, B, D); None: h itself

`cell` is the rnnlab cell object; a reference reads only its options (`cell.nonlinearity`).
The sequence model around the steps (layers, readout, losses) is `forward_loss`, below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

Tensor = torch.Tensor
Act = dict[str, Callable[[Tensor], Tensor]]

ACT: Act = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda a: a,
}


class Reference(NamedTuple):
    shapes: Callable[[int, int], dict[str, tuple[int, ...]]]
    step: Callable[..., tuple[tuple[Tensor, ...], tuple]]
    blocks: Callable[[dict[str, Any], int], dict[str, Any]]
    output: Callable[..., Tensor] | None = None


# --- Elman RNN: h_t = φ(U x_t + W h_{t−1} + b) --------------------------------------------


def _rnn_step(cell, p, ax, state, act):
    (h_prev,) = state
    h = act[cell.nonlinearity](ax + h_prev @ p["W"].T)
    return (h,), (cell.nonlinearity, h, None, None)


RNN = Reference(
    shapes=lambda D, H: {"U": (H, D), "W": (H, H), "b": (H,)},
    step=_rnn_step,
    blocks=lambda p, H: {"W": p["W"]},
)


# --- LSTM, gates (i, f, g, o): c_t = f c_{t−1} + i g, h_t = o tanh(c_t) --------------------


def _lstm_step(cell, p, ax, state, act):
    h_prev, c_prev = state
    a = ax + h_prev @ p["W"].T
    a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c = f * c_prev + i * g
    h = o * torch.tanh(c)
    return (h, c), ("tanh", g, "f", f)


LSTM = Reference(
    shapes=lambda D, H: {"U": (4 * H, D), "W": (4 * H, H), "b": (4 * H,)},
    step=_lstm_step,
    blocks=lambda p, H: {f"W_{g}": p["W"][k * H : (k + 1) * H] for k, g in enumerate("ifgo")},
)


# --- GRU, gates (r, z, n), reset after the recurrent product -------------------------------


def _gru_step(cell, p, ax, state, act):
    (h_prev,) = state
    x_r, x_z, x_n = ax.chunk(3, dim=-1)
    W_r, W_z, W_n = p["W"].chunk(3, dim=0)
    r = torch.sigmoid(x_r + h_prev @ W_r.T)
    z = torch.sigmoid(x_z + h_prev @ W_z.T)
    n = torch.tanh(x_n + r * (h_prev @ W_n.T + p["b_hn"]))
    h = (1 - z) * n + z * h_prev
    return (h,), ("tanh", n, "z", z)


GRU = Reference(
    shapes=lambda D, H: {"U": (3 * H, D), "W": (3 * H, H), "b": (3 * H,), "b_hn": (H,)},
    step=_gru_step,
    blocks=lambda p, H: {f"W_{g}": p["W"][k * H : (k + 1) * H] for k, g in enumerate("rzn")},
)


# --- IndRNN (Li et al. 2018): h_t = φ(U x_t + u ⊙ h_{t−1} + b) -----------------------------


def _indrnn_step(cell, p, ax, state, act):
    (h_prev,) = state
    h = act[cell.nonlinearity](ax + p["u"] * h_prev)
    return (h,), (cell.nonlinearity, h, None, None)


INDRNN = Reference(
    shapes=lambda D, H: {"U": (H, D), "u": (H,), "b": (H,)},
    step=_indrnn_step,
    blocks=lambda p, H: {"W": np.diag(p["u"])},
)


# --- expRNN (Lezcano-Casado & Martínez-Rubio 2019): W = exp(A − Aᵀ), A strictly upper ----


def _exp_w(A):
    """exp(S) with S = triu(A, 1) − triu(A, 1)ᵀ, by torch's matrix exponential."""
    upper = torch.triu(A, diagonal=1)
    return torch.linalg.matrix_exp(upper - upper.T)


def _exprnn_step(cell, p, ax, state, act):
    (h_prev,) = state
    z = ax + h_prev @ _exp_w(p["A"]).T
    if cell.nonlinearity == "modrelu":  # sign(z) relu(|z| + b_mod): the ReLU seen by `act`
        h = torch.sign(z) * act["relu"](torch.abs(z) + p["b_mod"])
    else:
        h = act[cell.nonlinearity](z)
    return (h,), (cell.nonlinearity, h, None, None)


EXPRNN = Reference(
    shapes=lambda D, H: {"U": (H, D), "A": (H, H), "b": (H,), "b_mod": (H,)},  # modReLU's
    step=_exprnn_step,
    blocks=lambda p, H: {"W": _exp_w(torch.tensor(p["A"], dtype=torch.float64)).numpy()},
)


# --- minGRU and minLSTM (Feng et al. 2024): gates from x_t only, h̃ = g(k_h) ----------------


def _g(x, act):
    """g(x) = x + ½ for x ≥ 0, σ(x) below; its kink at 0 goes through `act`'s ReLU."""
    return torch.where(x >= 0, act["relu"](x) + 0.5, torch.sigmoid(x))


def _mingru_step(cell, p, ax, state, act):
    (h_prev,) = state
    k_z, k_h = ax.chunk(2, dim=-1)
    z, h_tilde = torch.sigmoid(k_z), _g(k_h, act)
    h = (1 - z) * h_prev + z * h_tilde
    return (h,), ("g", h_tilde, "z", z)


def _minlstm_step(cell, p, ax, state, act):
    (h_prev,) = state
    k_f, k_i, k_h = ax.chunk(3, dim=-1)
    f, i, h_tilde = torch.sigmoid(k_f), torch.sigmoid(k_i), _g(k_h, act)
    f_norm, i_norm = f / (f + i), i / (f + i)
    h = f_norm * h_prev + i_norm * h_tilde
    return (h,), ("g", h_tilde, "f", f_norm)


MINGRU = Reference(
    shapes=lambda D, H: {"U": (2 * H, D), "b": (2 * H,)},
    step=_mingru_step,
    blocks=lambda p, H: {},  # no recurrent matrix
)
MINLSTM = Reference(
    shapes=lambda D, H: {"U": (3 * H, D), "b": (3 * H,)},
    step=_minlstm_step,
    blocks=lambda p, H: {},
)


# --- LRU (Orvieto et al. 2023): x_t = λ x_{t−1} + γ B u_t, in complex arithmetic ----------


def _lru_lambda(cell, p):
    """λ (N,) complex, and γ."""
    if cell.parameterisation == "direct":
        lam = torch.complex(p["lam_re"], p["lam_im"])
    else:
        lam = torch.exp(torch.complex(-torch.exp(p["nu"]), torch.exp(p["theta"])))
    gamma = torch.sqrt(1 - lam.abs() ** 2) if cell.normalise else torch.ones_like(lam.real)
    return lam, gamma


def _lru_step(cell, p, ax, state, act):
    """The real state [Re x; Im x] read as complex x; ax = [Re; Im] of B u + b."""
    (h_prev,) = state
    N = h_prev.shape[-1] // 2
    lam, gamma = _lru_lambda(cell, p)
    x = torch.complex(h_prev[..., :N], h_prev[..., N:])
    v = torch.complex(ax[..., :N], ax[..., N:])
    x = lam * x + gamma * v
    h = torch.cat([x.real, x.imag], dim=-1)
    return (h,), ("identity", h, None, None)


def _lru_output(cell, p, h, u):
    """y = Re(C̃ x) + D u with C̃ = C[:, :N] − i C[:, N:]; out = y + GELU(M y + m), GELU's
    tanh form."""
    N = h.shape[-1] // 2
    x = torch.complex(h[..., :N], h[..., N:])
    C = torch.complex(p["C"][:, :N], -p["C"][:, N:])
    y = (x @ C.T).real + u @ p["D"].T
    if cell.mixing == "none":
        return y
    return y + torch.nn.functional.gelu(y @ p["M"].T + p["m"], approximate="tanh")


def _lru_blocks(p, H):
    N = H // 2
    lam = np.exp(-np.exp(p["nu"]) + 1j * np.exp(p["theta"]))
    W = np.zeros((H, H))
    W[:N, :N] = W[N:, N:] = np.diag(lam.real)
    W[:N, N:], W[N:, :N] = -np.diag(lam.imag), np.diag(lam.imag)
    return {"W": W}


LRU = Reference(
    shapes=lambda D, H: {
        "U": (H, D),
        "b": (H,),
        "D": (H, D),
        "nu": (H // 2,),
        "theta": (H // 2,),
        "C": (H, H),
        "M": (H, H),
        "m": (H,),
    },
    step=_lru_step,
    blocks=_lru_blocks,
    output=_lru_output,
)


REFERENCES: dict[str, Reference] = {
    "rnn": RNN,
    "lstm": LSTM,
    "gru": GRU,
    "indrnn": INDRNN,
    "exprnn": EXPRNN,
    "mingru": MINGRU,
    "minlstm": MINLSTM,
    "lru": LRU,
}


# --- the sequence model around the steps ----------------------------------------------------


def layer_forward(cell, ref: Reference, p, inputs: Tensor, state0, act: Act = ACT):
    """One layer over time: inputs (T, B, D), state0 a tuple of (B, H) -> the per-step
    states (a list of T tuples) and probes."""
    ax = inputs @ p["U"].T + p["b"]  # (T, B, G·H)
    state, states, probes = tuple(state0), [], []
    for t in range(inputs.shape[0]):
        state, probe = ref.step(cell, p, ax[t], state, act)
        states.append(state)
        probes.append(probe)
    return states, probes


def layer_output(cell, ref: Reference, p, states, inputs: Tensor) -> Tensor:
    """What a layer hands on, (T, B, H), from layer_forward's states and its inputs."""
    h = torch.stack([s[0] for s in states])
    return h if ref.output is None else ref.output(cell, p, h, inputs)


def forward_loss(
    cell,
    ref: Reference,
    P: dict[str, Tensor],
    num_layers: int,
    X: Tensor,
    Y: Tensor,
    mask: Tensor,
    h0: tuple[Tensor, ...],
    loss: str,
    act: Act = ACT,
) -> Tensor:
    """L = Σ_t Σ_b m_tb L_tb / B over a stack of `num_layers` layers and the readout
    o_t = V h_t + c; P holds U_l, W_l, … and V, c; h0 a tuple of (L, B, H) tensors."""
    inputs = X
    for layer in range(num_layers):
        p = {k[: -len(f"_{layer}")]: v for k, v in P.items() if k.endswith(f"_{layer}")}
        states, _ = layer_forward(cell, ref, p, inputs, tuple(s[layer] for s in h0), act)
        inputs = layer_output(cell, ref, p, states, inputs)  # (T, B, H)
    o = inputs @ P["V"].T + P["c"]  # (T, B, K)
    B = X.shape[1]
    if loss == "cross_entropy":
        nll = -torch.log_softmax(o, dim=-1).gather(-1, Y[..., None])[..., 0]  # (T, B)
        return (mask * nll).sum() / B
    return (mask * ((o - Y) ** 2).mean(dim=-1)).sum() / B


def dphi(name: str, y: np.ndarray) -> np.ndarray:
    """φ'(a) from φ(a) = y, written out here for the statistics' oracle."""
    return {
        "tanh": lambda: 1 - y**2,
        "sigmoid": lambda: y * (1 - y),
        "relu": lambda: (y > 0).astype(float),
        "identity": lambda: np.ones_like(y),
        "modrelu": lambda: (y != 0).astype(float),  # on where |z| + b_mod > 0
        "g": lambda: np.where(y >= 0.5, 1.0, y * (1 - y)),  # x + ½ above 0, σ(x) below
    }[name]()


GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "identity": 1.0, "modrelu": 1.0, "g": 1.0}
