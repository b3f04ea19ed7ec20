"""rnnlab: a laboratory for gradient flow in recurrent neural networks."""

from rnnlab.engine import GRU, LSTM, RNN, BPTTResult, SequenceModel

__all__ = ["GRU", "LSTM", "RNN", "BPTTResult", "SequenceModel"]
__version__ = "0.1.0"
