"""The PyTorch bridge. torch is imported only inside this package (extra `rnnlab[torch]`)."""

from rnnlab.torch.convert import from_torch, to_torch

__all__ = ["from_torch", "to_torch"]
