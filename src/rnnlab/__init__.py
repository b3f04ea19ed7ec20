"""rnnlab: a laboratory for gradient flow in recurrent neural networks."""

from rnnlab.diagnostics import Diagnosis, diagnose
from rnnlab.engine import GRU, LSTM, RNN, BPTTResult, SequenceModel

__all__ = ["GRU", "LSTM", "RNN", "BPTTResult", "Diagnosis", "SequenceModel", "diagnose"]
__version__ = "0.1.0"
