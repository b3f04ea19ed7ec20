"""What every cell declares, and the defaults of a cell whose W stacks H × H gate blocks.

A cell is a frozen dataclass whose fields are its own options (the Elman RNN's φ, the
LSTM's forget-gate bias): `model.config`, TOML configs and the torch bridge carry them
under those names. Its class attributes say what the rest of rnnlab needs to know:

    name          the registry key, as in configs: "rnn"
    title         the display name: "RNN", "LSTM"
    gate_names    the G blocks stacked in U, W and b, in order; ("",) for one block
    state_names   ("h",) or ("h", "c"): the state tuple's parts, each (B, H)
    Cache         the NamedTuple a step caches for the backward pass, read by name
    carry         the gate that carries the state additively (LSTM "f", GRU "z"), or None
    chrono        whether init "chrono" serves it: its init_layer sets the carry gate's
                  bias with init.chrono_bias (LSTM, GRU); the model refuses it for the others
    remedies      per verdict label, the remedies rnnlab.diagnostics ranks first for it
    bounded       whether J_t = diag(φ'(a_t)) times the recurrent matrix, so that the
                  Pascanu bound (γ·σ_max)^τ holds (Elman RNN, IndRNN, expRNN; not gated cells)
    separate_dah  whether ∂L/∂(W h_{t−1}) differs from ∂L/∂(U x_t + b) (GRU's r, the LRU's γ)
    hidden_multiple  hidden_size must be a multiple of it (the LRU's [Re x; Im x]: 2)
    output_arrays, output_matrices  what the memory budget counts for the output map

and its methods, besides step / coefficients / vjp / jacobian (see cells/__init__.py):

    gamma                  γ = max |φ'| of a bounded cell; None for the others
    init_layer(...)        one layer's params, float64
    prepare(p)             the layer's params as `step` reads them (Wᵀ made contiguous)
    recurrent_grads(p, trace)
                           ∂L/∂ of every param but U, b and the output map's, from the
                           layer's trace after BPTT (states, caches, dax, dah = ∂L/∂(W h_{t−1}))
    recurrent_matrix(p)    the (G·H, H) matrix whose gate blocks the spectra read; None for
                           a cell without one (minGRU: no blocks in the spectra)
    exact_rate(p)          ρ where the equations give ‖J_t ⋯ J_{t−τ+1}‖ = ρ^τ exactly (a
                           diagonal linear recurrence: max |λ_j|); None elsewhere
    project(p)             the params after an update, put back inside the cell's constraint
    activations(h, cache)  what the activation statistics read
    output(p, h, u)        what the layer hands the layer above and the readout, from its
                           states and inputs (default: h itself), with output_vjp backwards
                           (∂L/∂h, ∂L/∂u along its own path, and its params' gradients)

`PhiCell` adds what a cell with h_t = φ(a_t) derives from its option φ alone (the Elman RNN,
IndRNN and expRNN subclass it). `GatedLinearCell` is a cell whose recurrence is
h_t = a_t ⊙ h_{t−1} + b_t with a_t, b_t functions of x_t alone (minGRU, minLSTM): its step,
vjp and Jacobian diag(a_t) come from its `terms`, and its option `scan` runs it over time as
a parallel scan (engine/sequence.py) instead of the loop.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np

from rnnlab.arrays import Array, Params
from rnnlab.checks import check_one_of
from rnnlab.engine import init as initialisers
from rnnlab.engine.activations import DPHI, GAMMA, NONLINEARITIES
from rnnlab.engine.blas import sum_outer


class Activations(NamedTuple):
    """What a layer's activation statistics read, each (T, B, H) over steps 1..T: the
    output `phi` of the nonlinearity `nonlinearity` (φ' is computed from it), and the
    carry gate's values with its name, or None for a cell without one."""

    nonlinearity: str
    phi: Array
    gate: str | None
    gate_values: Array | None


@dataclasses.dataclass(frozen=True)
class Cell(ABC):
    """The base of every cell: defaults for a cell with U (G·H, D), W (G·H, H), b (G·H,)."""

    name: ClassVar[str]
    title: ClassVar[str]
    gate_names: ClassVar[tuple[str, ...]] = ("",)
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    carry: ClassVar[str | None] = None
    chrono: ClassVar[bool] = False
    bounded: ClassVar[bool] = False
    remedies: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    Cache: ClassVar[type[Any]]  # the NamedTuple step returns
    # ∂L/∂(W h_{t−1}) differs from ∂L/∂(U x_t + b) only where a gate scales W h_{t−1} (GRU)
    separate_dah: ClassVar[bool] = False
    hidden_multiple: ClassVar[int] = 1
    # what the memory budget counts for `output` per layer: (T, B, H) arrays it keeps and
    # makes going back, and H × (H + D) matrices it owns (at most, over the cell's options)
    output_arrays: ClassVar[int] = 0
    output_matrices: ClassVar[int] = 0

    @property
    def gates(self) -> int:
        return len(self.gate_names)

    @property
    def gamma(self) -> float | None:
        return None

    @classmethod
    def named(cls) -> str:
        """The title with its article, as an acronym is read: "an LSTM", "a GRU"."""
        return ("an " if cls.title[0] in "AEFHILMNORSXaeio" else "a ") + cls.title

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def options(self) -> dict[str, Any]:
        """The cell's own options, as configs and `model.config` spell them."""
        return dataclasses.asdict(self)

    def label(self, init: str = "pytorch") -> str:
        """How tables and reports name a model of this cell, initialised by `init`."""
        return self.title

    # -- parameters ---------------------------------------------------------------------

    def init_layer(
        self, rng: np.random.Generator, D: int, H: int, scheme: initialisers.Scheme
    ) -> Params:
        """One layer's float64 params U (G·H, D), W (G·H, H), b (G·H,)."""
        G = self.gates * H
        return initialisers.layer(rng, {"U": (G, D), "W": (G, H), "b": (G,)}, self.gates, scheme)

    def prepare(self, p: Params) -> Params:
        # every step multiplies by Wᵀ: one contiguous copy beats T products on a transposed view
        return p | {"W_T": np.ascontiguousarray(p["W"].T)}

    def recurrent_grads(self, p: Params, trace: Any) -> Params:
        """∂L/∂W = Σ_t dah_tᵀ h_{t−1}, one GEMM over all T·B rows, from the layer's trace
        (engine.sequence.LayerTrace): h_0..h_{T−1} and dah (T, B, G·H) = ∂L/∂(W h_{t−1})."""
        return {"W": sum_outer(trace.dah, trace.h[:-1])}

    def recurrent_matrix(self, p: Params) -> Array | None:
        return p["W"]

    def exact_rate(self, p: Params) -> float | None:
        return None

    def project(self, p: Params) -> Params:
        return p

    # -- one step, and its derivatives (any leading dims where noted) ------------------

    @abstractmethod
    def step(self, ax: Array, state: tuple[Array, ...], p: Params) -> tuple[tuple, Any]:
        """(state_t, cache) from ax = U x_t + b (B, G·H) and state_{t−1}."""

    @abstractmethod
    def coefficients(self, cache: Any) -> tuple[Array, ...]:
        """The step's local derivatives, for caches with any leading dims."""

    @abstractmethod
    def vjp(self, dstate: tuple, coef: tuple, p: Params) -> tuple[Array, Array, tuple]:
        """(dax, dah, dstate_{t−1}) from ∂L/∂state_t, backward through one step."""

    @abstractmethod
    def jacobian(self, cache: Any, p: Params) -> Array:
        """∂state_t/∂state_{t−1}, (B, S, S) with S = len(state_names)·H."""

    @abstractmethod
    def activations(self, h: Array, cache: Any) -> Activations:
        """From the layer's states h (T+1, B, H) and its caches stacked over steps 1..T."""

    # -- the output map: what the layer above and the readout read (T, B, H) --------------

    def output(self, p: Params, h: Array, u: Array) -> tuple[Array, tuple]:
        """(out, cache) from the states h_1..h_T (T, B, H) and the layer's inputs u (T, B, D)
        or token ids (T, B); cache is a tuple of (T, B, ·) arrays. Default: h itself."""
        return h, ()

    def output_vjp(
        self, p: Params, cache: tuple, h: Array, u: Array | None, dout: Array
    ) -> tuple[Array, Array | None, Params]:
        """(∂L/∂h_t, ∂L/∂u_t along the output map's own path or None, ∂L/∂ its params),
        from dout = ∂L/∂out_t (T, B, H); any T, B rows, as long as all agree. With u None
        the params' gradients are not wanted (the diagnostics' backward pass)."""
        return dout, None, {}

    def stack(self, caches: list[Any]) -> Any:
        """Per-step caches (tuples in the order of Cache) as one Cache of (T, ·) arrays."""
        return self.Cache._make(np.stack(parts) for parts in zip(*caches, strict=True))


@dataclasses.dataclass(frozen=True)
class PhiCell(Cell):
    """A cell whose state is h_t = φ(a_t), so J_t = diag(φ'(a_t)) times its recurrent matrix
    and the Pascanu bound holds with γ = max |φ'|. Its Cache holds h_t, from which φ' is read.
    """

    nonlinearity: str
    bounded = True
    nonlinearities: ClassVar[tuple[str, ...]] = NONLINEARITIES  # the φ's it offers

    def __post_init__(self) -> None:
        check_one_of("nonlinearity", self.nonlinearity, self.nonlinearities)

    @property
    def gamma(self) -> float:
        return GAMMA[self.nonlinearity]

    def coefficients(self, cache: Any) -> tuple[Array]:
        """φ'(a_t), the diagonal of diag(φ'(a_t)), from h_t."""
        return (DPHI[self.nonlinearity](cache.h),)

    def activations(self, h: Array, cache: Any) -> Activations:
        return Activations(self.nonlinearity, h[1:], None, None)


@dataclasses.dataclass(frozen=True)
class GatedLinearCell(Cell):
    """A cell whose recurrence is h_t = a_t ⊙ h_{t−1} + b_t, with a_t and b_t functions of
    ax_t = U x_t + b alone (no recurrent matrix): J_t = diag(a_t), and the whole layer is one
    linear scan over time. Its Cache holds its `terms`' parts, then h_{t−1}.

    scan: run the layer over time as a parallel scan (engine.sequence.scan, in log space)
    instead of the step loop; the two compute the same function.
    """

    scan: bool = False
    remedies = {
        "vanishing": ("train_longer", "lru_cell", "min_cells", "gated_cell"),
        "exploding": ("clip_norm",),  # no W, and 0 < a_t < 1: the recurrence cannot grow
        "stuck": ("train_longer",),
    }

    def __post_init__(self) -> None:
        if not isinstance(self.scan, bool):
            raise ValueError(f"scan: got {self.scan!r}; expected true or false")

    @abstractmethod
    def terms(self, ax: Array, p: Params) -> tuple[Array, Array, tuple[Array, ...]]:
        """(a_t, b_t, parts) from ax (any leading dims, G·H last): parts are what the
        Cache keeps before h_{t−1}."""

    def prepare(self, p: Params) -> Params:
        return p

    def recurrent_grads(self, p: Params, trace: Any) -> Params:
        return {}  # no recurrent parameters: a_t and b_t read x_t only

    def recurrent_matrix(self, p: Params) -> None:
        return None

    def step(self, ax: Array, state: tuple[Array, ...], p: Params) -> tuple[tuple, Any]:
        (h_prev,) = state
        a, b, parts = self.terms(ax, p)
        h = a * h_prev
        h += b
        return (h,), self.Cache(*parts, h_prev)

    def vjp(self, dstate: tuple, coef: tuple, p: Params) -> tuple[Array, Array, tuple]:
        """coef = (a_t, ∂h_t/∂ax_t stacked over the G blocks): any leading dims."""
        (dh,), (a, dh_dax) = dstate, coef
        G = dh_dax.shape[-1]
        # backprop into each block of ax, elementwise
        dax = dh[..., None, :] * dh_dax.reshape(dh.shape[:-1] + (G // dh.shape[-1], -1))
        dax = dax.reshape(dh_dax.shape)
        return dax, dax, (dh * a,)  # and into h_{t−1} through a_t

    def jacobian(self, cache: Any, p: Params) -> Array:
        a = self.coefficients(cache)[0]  # (B, H), the diagonal
        J = np.zeros(a.shape + a.shape[-1:], dtype=a.dtype)
        idx = np.arange(a.shape[-1])
        J[:, idx, idx] = a
        return J


def index(cache: Any, rows: Any) -> Any:
    """The cache of the rows `rows` (a slice, or an index array over the leading dim)."""
    return cache._make(a[rows] for a in cache)
