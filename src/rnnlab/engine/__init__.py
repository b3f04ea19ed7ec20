"""The NumPy engine: cells, the loop over time with exact BPTT, losses, initialisers."""

from rnnlab.engine.blas import get_num_threads, set_num_threads
from rnnlab.engine.memory import keep_freed_memory
from rnnlab.engine.model import GRU, LSTM, RNN, BPTTResult, SequenceModel, Trace, build

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BPTTResult",
    "SequenceModel",
    "Trace",
    "build",
    "get_num_threads",
    "keep_freed_memory",
    "set_num_threads",
]
