"""Exact conversion between PyTorch's nn.RNN / nn.LSTM / nn.GRU (+ nn.Linear) and the engine.

No transpose and no reorder is needed: the engine keeps PyTorch's orientation and gate order.

    torch (layer l)                     engine
    weight_ih_l{l}   (G·H, D_l)         U_l   (G·H, D_l)     as is
    weight_hh_l{l}   (G·H, H)           W_l   (G·H, H)       as is
    bias_ih_l{l} + bias_hh_l{l} (G·H)   b_l   (G·H,)         RNN, LSTM: summed
    bias_ih_l{l} + [b_hr, b_hz, 0]      b_l   (3H,)          GRU: b_hn stays apart because
    bias_hh_l{l}[2H:]                   b_hn_l (H,)               r ⊙ (W_n h + b_hn) scales it
    readout.weight   (K, H)             V     (K, H)         as is
    readout.bias     (K,)               c     (K,)           as is

G is 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n). Going back, the summed bias goes to
bias_ih and bias_hh holds zeros (GRU: b_hn in its n block). Without a readout the engine model
gets V = I, c = 0, so its outputs are the top layer's h_t.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.arrays import Array
from rnnlab.engine.model import GRU, LSTM, RNN, SequenceModel
from rnnlab.torch._torch import import_torch


def _numpy(t: Any) -> Array:
    return t.detach().cpu().numpy().copy()


def _kind(module: Any) -> str:
    torch = import_torch()
    for kind, cls in (("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU), ("rnn", torch.nn.RNN)):
        if isinstance(module, cls):
            return kind
    raise ValueError(
        f"module: got {type(module).__name__}; expected torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU"
    )


def from_torch(module: Any, readout: Any = None) -> SequenceModel:
    """An engine model with exactly the weights of `module` (and `readout`, an nn.Linear)."""
    torch = import_torch()
    kind = _kind(module)
    if module.bidirectional:
        raise ValueError("module: got bidirectional=True; the engine runs one direction")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"module: got proj_size={module.proj_size}; expected 0")
    dtype = {torch.float32: "float32", torch.float64: "float64"}.get(module.weight_hh_l0.dtype)
    if dtype is None:
        raise ValueError(f"module: got dtype {module.weight_hh_l0.dtype}; expected float32/64")
    H, L = module.hidden_size, module.num_layers
    if readout is not None and (
        not isinstance(readout, torch.nn.Linear) or readout.in_features != H
    ):
        raise ValueError(f"readout: got {readout!r}; expected torch.nn.Linear({H}, K)")
    K = H if readout is None else readout.out_features
    kwargs: dict[str, Any] = dict(
        input_size=module.input_size, hidden_size=H, output_size=K, num_layers=L, dtype=dtype
    )
    model: SequenceModel
    if kind == "rnn":
        model = RNN(nonlinearity=module.nonlinearity, **kwargs)
    else:
        model = (LSTM if kind == "lstm" else GRU)(**kwargs)

    params: dict[str, Array] = {}
    for layer in range(L):
        U = _numpy(getattr(module, f"weight_ih_l{layer}"))
        W = _numpy(getattr(module, f"weight_hh_l{layer}"))
        if module.bias:
            b_ih = _numpy(getattr(module, f"bias_ih_l{layer}"))
            b_hh = _numpy(getattr(module, f"bias_hh_l{layer}"))
        else:
            b_ih = b_hh = np.zeros(W.shape[0], dtype=W.dtype)
        params[f"U_{layer}"], params[f"W_{layer}"] = U, W
        if kind == "gru":
            params[f"b_{layer}"] = b_ih + np.concatenate([b_hh[: 2 * H], np.zeros(H, W.dtype)])
            params[f"b_hn_{layer}"] = b_hh[2 * H :]
        else:
            params[f"b_{layer}"] = b_ih + b_hh
    if readout is None:
        params["V"], params["c"] = np.eye(H, dtype=model.dtype), np.zeros(H, dtype=model.dtype)
    else:
        params["V"] = _numpy(readout.weight)
        params["c"] = _numpy(readout.bias) if readout.bias is not None else np.zeros(K)
    model.set_params(params)
    return model


def to_torch(model: SequenceModel) -> tuple[Any, Any]:
    """(module, readout): a time-major nn.RNN/LSTM/GRU and an nn.Linear with the model's weights."""
    torch = import_torch()
    dtype = getattr(torch, model.dtype.name)
    H, L = model.hidden_size, model.num_layers
    kwargs: dict[str, Any] = dict(
        input_size=model.input_size, hidden_size=H, num_layers=L, dtype=dtype
    )
    modules = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    if model.kind not in modules:
        raise ValueError(
            f"model: got {model.cell.named()}; expected an RNN, LSTM or GRU (torch has no "
            "module for other cells)"
        )
    options = model.cell.options()  # nn.RNN's nonlinearity; nn.LSTM's forget bias is a bias
    module = modules[model.kind](
        **kwargs, **({"nonlinearity": options["nonlinearity"]} if "nonlinearity" in options else {})
    )
    readout = torch.nn.Linear(H, model.output_size, dtype=dtype)
    p = model.params
    with torch.no_grad():
        for layer in range(L):
            b = p[f"b_{layer}"]
            b_hh = np.zeros_like(b)
            if f"b_hn_{layer}" in p:  # GRU: the bias r multiplies
                b_hh[2 * H :] = p[f"b_hn_{layer}"]
            tensors = {
                f"weight_ih_l{layer}": p[f"U_{layer}"],
                f"weight_hh_l{layer}": p[f"W_{layer}"],
                f"bias_ih_l{layer}": b,
                f"bias_hh_l{layer}": b_hh,
            }
            for name, value in tensors.items():
                getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
        readout.weight.copy_(torch.from_numpy(p["V"]))
        readout.bias.copy_(torch.from_numpy(p["c"]))
    return module, readout
