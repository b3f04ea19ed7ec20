"""Training building blocks: optimisers, learning-rate schedules, clipping, checkpoints."""

from rnnlab.train.callbacks import RecordDiagnostics
from rnnlab.train.checkpoint import (
    Checkpoint,
    CheckpointDir,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from rnnlab.train.clip import CLIP_MODES, clip, global_norm, param_norms
from rnnlab.train.config import ClipConfig, DiagnosticsConfig, TBPTTConfig, TrainConfig
from rnnlab.train.history import History
from rnnlab.train.loop import evaluate, fit
from rnnlab.train.optim import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    Optimizer,
    RMSprop,
    make_optimizer,
    state_slot,
)
from rnnlab.train.schedules import (
    SCHEDULES,
    Constant,
    Cosine,
    Schedule,
    StepDecay,
    Warmup,
    make_schedule,
)

__all__ = [
    "CLIP_MODES",
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adagrad",
    "Adam",
    "Checkpoint",
    "CheckpointDir",
    "CheckpointError",
    "ClipConfig",
    "DiagnosticsConfig",
    "History",
    "TBPTTConfig",
    "TrainConfig",
    "Constant",
    "Cosine",
    "Optimizer",
    "RMSprop",
    "RecordDiagnostics",
    "Schedule",
    "StepDecay",
    "Warmup",
    "clip",
    "evaluate",
    "fit",
    "global_norm",
    "load_checkpoint",
    "make_optimizer",
    "make_schedule",
    "param_norms",
    "save_checkpoint",
    "state_slot",
]
