"""Sequence models: a stack of `num_layers` recurrent cells and a linear readout o_t = V h_t + c.

    model = RNN(input_size=2, hidden_size=64, output_size=1, nonlinearity="tanh", seed=0)
    o, state = model.forward(X)                       # X (T, B, D) or token ids (T, B)
    loss, grads, trace, dh0 = model.loss_and_grads(X, Y, loss="mse", mask=mask)

Parameters are a dict keyed U_l, W_l, b_l (GRU also b_hn_l; each cell says) per layer l,
then V, c; the gradients come back with identical keys. State h0 and the final state are
(L, B, H) arrays, or for LSTM a tuple (h, c) of them, as in PyTorch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnnlab.arrays import Array
from rnnlab.checks import check_int
from rnnlab.engine import checks
from rnnlab.engine.blas import one_blas_thread, sum_outer
from rnnlab.engine.blas import rows as _rows
from rnnlab.engine.cells import CELLS, Cell, cell_type, make_cell
from rnnlab.engine.init import INITS, Init, Scheme, readout
from rnnlab.engine.losses import LOSS_FNS
from rnnlab.engine.sequence import LayerTrace, bptt, unroll

State = Array | tuple[Array, ...]


class Trace(NamedTuple):
    """What BPTT saw: per layer, states h_t (and c_t), δ_t = ∂L/∂h_t and the cell caches;
    the readout's outputs o (T, B, K); and ∂L/∂X (T, B, D) when asked for (input_grad),
    else None (always None for token ids)."""

    layers: list[LayerTrace]
    outputs: Array
    dX: Array | None

    def state(self, t: int) -> State:
        """The state after step t (t = 0 is h0), in the format of h0: (L, B, H) or (h, c)."""
        return _stack_states([[s[t] for s in layer.states] for layer in self.layers])


class BPTTResult(NamedTuple):
    loss: float
    grads: dict[str, Array]
    trace: Trace
    dh0: State


class SequenceModel:
    """A stack of `num_layers` layers of one cell and a linear readout. `cell` is a Cell, or
    a registered kind's name with its options as keywords (`cell="lstm", forget_bias=1.0`);
    RNN, LSTM and GRU fix the name."""

    def __init__(
        self,
        *,
        cell: Cell | str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 1,
        dtype: str = "float32",
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        init: Init = "pytorch",
        init_scale: float | None = None,
        spectral_radius: float | None = None,
        t_max: int | None = None,
        **options: Any,
    ) -> None:
        if isinstance(cell, Cell) and options:
            raise ValueError(f"{next(iter(options))}: got an option beside a Cell; set it there")
        self.cell = cell if isinstance(cell, Cell) else make_cell(cell, **options)
        self.input_size = checks.check_positive_int("input_size", input_size)
        self.hidden_size = checks.check_positive_int("hidden_size", hidden_size)
        if hidden_size % self.cell.hidden_multiple:
            raise ValueError(
                f"hidden_size: got {hidden_size}; {self.cell.named()} needs a multiple of "
                f"{self.cell.hidden_multiple}"
            )
        self.output_size = checks.check_positive_int("output_size", output_size)
        self.num_layers = checks.check_positive_int("num_layers", num_layers)
        self.dtype = checks.check_dtype(dtype)
        if seed is not None and rng is not None:
            raise ValueError("seed, rng: got both; expected at most one")
        if seed is not None:
            check_int("seed", seed, 0)
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: got {type(rng).__name__}; expected a numpy.random.Generator")
        if init == "chrono" and not self.cell.chrono:  # chrono sets a gate the cell lacks
            offered = " or ".join(c.named() for c in CELLS.values() if c.chrono)
            others = ", ".join(i for i in INITS if i != "chrono")
            raise ValueError(
                f"init: got 'chrono', but only {offered} offers it, not {self.cell.named()}; "
                f"expected one of {others}"
            )
        self.scheme = Scheme(init, init_scale, spectral_radius, t_max)
        rng = rng if rng is not None else np.random.default_rng(0 if seed is None else seed)
        params: dict[str, Array] = {}
        for layer in range(self.num_layers):
            D = self.input_size if layer == 0 else self.hidden_size
            p = self.cell.init_layer(rng, D, self.hidden_size, self.scheme)
            params |= {f"{name}_{layer}": v for name, v in p.items()}
        params |= readout(rng, self.hidden_size, self.output_size, self.scheme)
        self.params = {k: v.astype(self.dtype) for k, v in params.items()}

    @property
    def kind(self) -> str:
        return self.cell.name

    @property
    def init(self) -> str:
        return self.scheme.init

    @property
    def spectral_radius(self) -> float | None:
        return self.scheme.spectral_radius

    # -- parameters ---------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        """The architecture and its initialisation, enough to rebuild the model with
        `build` (around a params dict, or afresh with the same seed)."""
        return {
            "cell": self.kind,
            **self.cell.options(),
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "output_size": self.output_size,
            "num_layers": self.num_layers,
            "dtype": self.dtype.name,
            "init": self.scheme.init,
            "init_scale": self.scheme.init_scale,
            "spectral_radius": self.scheme.spectral_radius,
            "t_max": self.scheme.t_max,
        }

    def layer_params(self, layer: int) -> dict[str, Array]:
        """Layer l's params without the suffix: U, W, b (and what else the cell has)."""
        suffix = f"_{layer}"
        return {
            name: v
            for k, v in self.params.items()
            for name, sep, index in [k.rpartition("_")]
            if sep and sep + index == suffix
        }

    def project(self, params: dict[str, Array]) -> dict[str, Array]:
        """Params after an update, put back inside each layer's cell constraint (if any)."""
        out = dict(params)
        for layer in range(self.num_layers):
            p = {k: params[f"{k}_{layer}"] for k in self.layer_params(layer)}
            out |= {f"{k}_{layer}": v for k, v in self.cell.project(p).items()}
        return out

    def set_params(self, params: dict[str, Array]) -> None:
        """Replace the params, checking keys, shapes, dtype and finiteness."""
        expected = self.params
        if set(params) != set(expected):
            raise ValueError(f"params: got keys {sorted(params)}; expected {sorted(expected)}")
        for k, v in params.items():
            if not isinstance(v, np.ndarray) or v.shape != expected[k].shape:
                shape = getattr(v, "shape", type(v).__name__)
                raise ValueError(f"params[{k!r}]: got shape {shape}; expected {expected[k].shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"params[{k!r}]: got non-finite values; expected finite")
        self.params = {k: np.array(params[k], dtype=self.dtype) for k in expected}  # our order

    # -- forward and BPTT ---------------------------------------------------------------

    def _unroll(self, X: Array, h0: object) -> list[LayerTrace]:
        X = checks.check_inputs(X, self.input_size, self.dtype)
        T, B = X.shape[:2]
        state0 = checks.check_state(
            h0, len(self.cell.state_names), self.num_layers, B, self.hidden_size, self.dtype
        )
        traces = []
        inputs = X
        for layer in range(self.num_layers):
            p = self.layer_params(layer)
            if inputs.ndim == 2:  # token ids: U x_t for one-hot x_t is a column of U
                ax = p["U"].T[inputs] + p["b"]  # (T, B, G)
            else:
                ax = _rows(inputs, p["U"].T)  # (T, B, G), one GEMM over all T·B rows
                ax += p["b"]
            trace = unroll(self.cell, p, ax, tuple(s[layer] for s in state0))
            trace.output, trace.out_cache = self.cell.output(p, trace.h[1:], inputs)
            traces.append(trace)
            inputs = trace.out  # (T, B, H)
        return traces

    def _readout(self, traces: list[LayerTrace]) -> Array:
        """o_t = V out_t + c from the top layer's output (its h_t, for most cells): (T, B, K)."""
        return _rows(traces[-1].out, self.params["V"].T) + self.params["c"]

    @one_blas_thread
    def forward(self, X: Array, h0: State | None = None) -> tuple[Array, State]:
        """X (T, B, D) or ids (T, B) -> outputs o (T, B, K) and the final state."""
        traces = self._unroll(X, h0)
        o = self._readout(traces)
        return o, _stack_states([[s[-1] for s in tr.states] for tr in traces])

    def _forward_loss(
        self, X: Array, Y: Array, loss: str, mask: Array | None, h0: State | None
    ) -> tuple[list[LayerTrace], Array, float, Array]:
        checks.check_loss(loss)
        traces = self._unroll(X, h0)
        T, B = X.shape[:2]
        Y, mask = checks.check_targets_and_mask(Y, mask, loss, T, B, self.output_size, self.dtype)
        o = self._readout(traces)
        L, do = LOSS_FNS[loss](o, Y, mask)
        return traces, o, L, do

    @one_blas_thread
    def loss(
        self,
        X: Array,
        Y: Array,
        loss: str = "cross_entropy",
        mask: Array | None = None,
        h0: State | None = None,
    ) -> float:
        """The loss alone, L = Σ_t Σ_b mask·L_tb / B, with no backward pass."""
        return self._forward_loss(X, Y, loss, mask, h0)[2]

    @one_blas_thread
    def loss_and_grads(
        self,
        X: Array,
        Y: Array,
        loss: str = "cross_entropy",
        mask: Array | None = None,
        h0: State | None = None,
        input_grad: bool = False,
    ) -> BPTTResult:
        """Loss L = Σ_t Σ_b mask·L_tb / B, exact gradients by BPTT, the trace and ∂L/∂h0;
        with input_grad (float inputs only), also ∂L/∂X in trace.dX (training skips it)."""
        traces, o, L, do = self._forward_loss(X, Y, loss, mask, h0)
        T, B, K = o.shape
        V = self.params["V"]
        out_top = traces[-1].out  # (T, B, H)
        grads: dict[str, Array] = {}
        grads["V"] = sum_outer(do, out_top)  # backprop into V
        grads["c"] = do.sum(axis=(0, 1))
        dout = _rows(do, V)  # (T, B, H), backprop into out_t through the readout
        dX: Array | None = None
        for layer in reversed(range(self.num_layers)):
            p, trace = self.layer_params(layer), traces[layer]
            inputs = X if layer == 0 else traces[layer - 1].out
            # backprop through the output map into h_t (and straight into its inputs)
            dh_above, du, out_grads = self.cell.output_vjp(
                p, trace.out_cache, trace.h[1:], inputs, dout
            )
            dax, dah = bptt(self.cell, p, trace, dh_above)
            G = dax.shape[2]
            if inputs.ndim == 2:  # token ids: scatter-add rows into the used columns of U
                dUT = np.zeros(p["U"].T.shape, dtype=self.dtype)
                np.add.at(dUT, inputs.ravel(), dax.reshape(T * B, G))
                grads[f"U_{layer}"] = dUT.T
            else:
                grads[f"U_{layer}"] = sum_outer(dax, inputs)
            grads[f"b_{layer}"] = dax.sum(axis=(0, 1))
            recurrent = self.cell.recurrent_grads(p, trace) | out_grads
            grads |= {f"{k}_{layer}": v for k, v in recurrent.items()}
            if layer > 0 or (input_grad and inputs.ndim == 3):
                dinputs = _rows(dax, p["U"])  # (T, B, D), backprop into the layer's inputs
                if du is not None:
                    dinputs += du
                if layer > 0:
                    dout = dinputs  # into the output of the layer below
                else:
                    dX = dinputs
        grads = {k: grads[k] for k in self.params}  # same key order as params
        dh0 = _stack_states([[d[0] for d in tr.deltas or []] for tr in traces])
        return BPTTResult(L, grads, Trace(traces, o, dX), dh0)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "cell")
        return f"{type(self).__name__}({args})"


def _stack_states(per_layer: list[list[Array]]) -> State:
    """[[h, (c)] per layer] -> (L, B, H) array, or the tuple (h, c) of them for LSTM."""
    parts = tuple(np.stack(component) for component in zip(*per_layer, strict=True))
    return parts[0] if len(parts) == 1 else parts


class RNN(SequenceModel):
    """Elman RNN, h_t = φ(U x_t + W h_{t−1} + b), o_t = V h_t + c; option nonlinearity."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cell="rnn", **kwargs)


class LSTM(SequenceModel):
    """LSTM (PyTorch gate order i, f, g, o) with state (h, c), o_t = V h_t + c; option
    forget_bias."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cell="lstm", **kwargs)

    @property
    def forget_bias(self) -> float | None:  # the attribute this class had before cells owned it
        return self.cell.options()["forget_bias"]


class GRU(SequenceModel):
    """GRU (PyTorch gate order r, z, n, reset after the recurrent product), o_t = V h_t + c."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cell="gru", **kwargs)


_CLASSES: dict[str, type[SequenceModel]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def build(config: dict[str, Any], **kwargs: Any) -> SequenceModel:
    """Rebuild a model from its `config` (plus init kwargs such as seed): the cell's name
    and options, then SequenceModel's arguments. RNN, LSTM and GRU come back as such."""
    config = dict(config)
    name = cell_type(config.pop("cell", None)).name
    if name in _CLASSES:
        return _CLASSES[name](**config, **kwargs)
    return SequenceModel(cell=name, **config, **kwargs)
