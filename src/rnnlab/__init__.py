"""rnnlab: a laboratory for gradient flow in recurrent neural networks."""

from rnnlab.diagnostics import Diagnosis, DiagnosisOptions, diagnose
from rnnlab.engine import (
    GRU,
    LSTM,
    RNN,
    BPTTResult,
    SequenceModel,
    get_num_threads,
    keep_freed_memory,
    set_num_threads,
)

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BPTTResult",
    "Diagnosis",
    "DiagnosisOptions",
    "SequenceModel",
    "diagnose",
    "get_num_threads",
    "keep_freed_memory",
    "set_num_threads",
]
__version__ = "0.1.0"
