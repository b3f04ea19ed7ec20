"""The training config: frozen, validated data (pydantic); a run is a pure function of it.

Errors name the TOML path of the field, the value given and what is allowed, on one line:
    train.clip.mode: got 'norms'; expected one of 'norm', 'value', 'none'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rnnlab.diagnostics.options import DiagnosisOptions

if TYPE_CHECKING:
    from rnnlab.diagnostics.verdict import RunInfo
    from rnnlab.tasks.base import Task
from rnnlab.train.optim import ADAMW_WEIGHT_DECAY, OptimizerName
from rnnlab.train.schedules import ScheduleName
from rnnlab.vocab import ClipMode


class Frozen(BaseModel):
    """Base of every config section: immutable, no unknown keys, no type coercion, and no
    inf or nan where a number goes."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    def __init__(self, **data: Any) -> None:
        # built directly (TrainConfig(lr=0)): one line, as a TOML config gets, not pydantic's
        # multi-line report; still a ValueError
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ValueError(format_error(err, type(self))) from None


class ClipConfig(Frozen):
    """Clipping at a threshold: global L2 norm (Pascanu et al. 2013), per element, or none."""

    mode: ClipMode = "none"
    threshold: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _threshold_for_mode(self) -> ClipConfig:
        if self.mode != "none" and self.threshold is None:
            raise ValueError(f"threshold: got none; expected a number > 0 for mode {self.mode!r}")
        return self


class TBPTTConfig(Frozen):
    """Truncated BPTT(k1, k2), Williams & Peng 1990: every k1 steps, backpropagate k2 steps."""

    k1: int = Field(gt=0)
    k2: int = Field(gt=0)

    @model_validator(mode="after")
    def _k2_covers_k1(self) -> TBPTTConfig:
        if self.k2 < self.k1:
            raise ValueError(f"k2: got {self.k2}; expected k2 >= k1 = {self.k1}")
        return self


class TrainConfig(Frozen):
    optimizer: OptimizerName = "adam"
    lr: float = Field(default=1e-3, gt=0)
    momentum: float = Field(default=0.0, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=0.0, ge=0)
    schedule: ScheduleName = "constant"
    warmup_steps: int = Field(default=0, ge=0)
    step_size: int | None = Field(default=None, gt=0)
    gamma: float = Field(default=0.1, gt=0, le=1)
    min_lr: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=32, gt=0)
    steps: int = Field(default=1000, gt=0)
    clip: ClipConfig = ClipConfig()
    tbptt: TBPTTConfig | None = None
    on_nonfinite: Literal["stop", "skip"] = "stop"
    seed: int = Field(default=0, ge=0)
    eval_every: int = Field(default=100, gt=0)
    checkpoint_every: int | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _torch_defaults(cls, data: Any) -> Any:
        # AdamW decays by default, as torch.optim.AdamW: unset weight_decay means its 0.01
        if isinstance(data, dict) and data.get("optimizer") == "adamw":
            return {"weight_decay": ADAMW_WEIGHT_DECAY, **data}
        return data

    @model_validator(mode="after")
    def _momentum_where_used(self) -> TrainConfig:
        if (self.momentum or self.nesterov) and self.optimizer not in ("sgd", "rmsprop"):
            raise ValueError(
                f"momentum: got {self.momentum} for optimizer {self.optimizer!r}; "
                "expected 0 (only sgd and rmsprop take momentum)"
            )
        return self

    def optimizer_hyper(self) -> dict[str, Any]:
        """Keyword arguments for rnnlab.train.make_optimizer."""
        hyper: dict[str, Any] = {"weight_decay": self.weight_decay}
        if self.optimizer in ("sgd", "rmsprop"):
            hyper["momentum"] = self.momentum
        if self.optimizer == "sgd":
            hyper["nesterov"] = self.nesterov
        return hyper


DIAGNOSES_PER_RUN = 10


class DiagnosticsConfig(Frozen):
    """A diagnosis of the first `probe_size` validation sequences at step 0, every `every`
    steps and where a run stops on divergence: gradient flow, lag profile, spectra,
    activations, verdict; Jacobian products for `jacobians` of those sequences (O(T·H³)
    each; 0 skips them). every = None (the default) means ten diagnoses per run, every
    steps // 10 steps; 0 means none."""

    every: int | None = Field(default=None, ge=0)
    probe_size: int = Field(default=32, gt=0)
    jacobians: int = Field(default=2, ge=0)

    def cadence(self, steps: int) -> int:
        """The steps between diagnoses for a run of `steps` steps (0: never)."""
        if self.every is None:
            return max(1, steps // DIAGNOSES_PER_RUN)
        return self.every

    def options(self, task: Task, run: RunInfo | None = None) -> DiagnosisOptions:
        """The options of a run's diagnoses: the lag profile read at the task's dependency
        length, Jacobian products for `jacobians` sequences, and what the run uses."""
        return DiagnosisOptions(
            dependency_length=task.dependency_length, jacobian_sequences=self.jacobians, run=run
        )


DEFAULT_DIAGNOSTICS = DiagnosticsConfig()


def _section(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config section class that `loc` (a pydantic error location) points into."""
    for name in loc:
        field = model.model_fields.get(str(name))
        if field is None:
            return None
        candidates = (field.annotation, *get_args(field.annotation))
        sections = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not sections:
            return None
        model = sections[0]
    return model


def format_error(err: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first pydantic error as one line: `path: got <value>; expected <what>`."""
    e = err.errors()[0]
    path = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
    kind, value, ctx = e["type"], e.get("input"), e.get("ctx") or {}
    if kind == "extra_forbidden":
        section = _section(model, e["loc"][:-1])
        allowed = ", ".join(section.model_fields) if section else "the documented fields"
        return f"{path}: unknown key; expected one of {allowed}"
    if kind == "literal_error":
        return f"{path}: got {value!r}; expected one of {ctx.get('expected')}"
    if kind == "missing":
        return f"{path}: missing; expected a value"
    if kind == "value_error":  # our own validators already say 'x: got ...; expected ...'
        message = str(ctx.get("error", e["msg"]))
        return f"{path}.{message}" if path else message
    expected = e["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
    return f"{path}: got {value!r}; expected {expected}"
