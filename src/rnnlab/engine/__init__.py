"""The NumPy engine: cells, the loop over time with exact BPTT, losses, initialisers."""

from rnnlab.engine.model import GRU, LSTM, RNN, BPTTResult, SequenceModel, Trace, build

__all__ = ["GRU", "LSTM", "RNN", "BPTTResult", "SequenceModel", "Trace", "build"]
