"""A PackedSequence through the twin: unpacked to a padded batch plus lengths, re-packed after.

A sequence of length n runs steps 1..n; past its end it keeps its state (carry), so its h_n
is the state at its own last step, as PyTorch returns it. The reverse direction of a
bidirectional module reads each sequence backwards from its own last step: in that
direction's own time order, step s of sequence b is position n_b + 1 − s (`own_order`).
"""

from __future__ import annotations

from typing import Any

from rnnlab.torch._torch import import_torch

Tensor = Any


def unpack(packed: Any) -> tuple[Tensor, Tensor]:
    """(x, lengths): x (T, B, D) padded with zeros, in the caller's batch order (the order
    of hx and h_n), T the longest length; lengths (B,) on x's device."""
    torch = import_torch()
    x, lengths = torch.nn.utils.rnn.pad_packed_sequence(packed)
    return x, lengths.to(x.device)


def repack(output: Tensor, like: Any) -> Any:
    """The padded output (T, B, ·) as a PackedSequence laid out as `like`: the same
    batch_sizes, sorted_indices and unsorted_indices (not re-sorted, so equal lengths keep
    the caller's order)."""
    torch = import_torch()
    sizes = like.batch_sizes  # (T,), on the CPU
    t = torch.repeat_interleave(torch.arange(len(sizes)), sizes)  # the step of each row
    rank = torch.arange(len(t)) - (torch.cumsum(sizes, 0) - sizes)[t]  # its place in the step
    b = rank if like.sorted_indices is None else like.sorted_indices.cpu()[rank]
    data = output[t.to(output.device), b.to(output.device)]  # (Σ lengths, ·)
    return torch.nn.utils.rnn.PackedSequence(
        data, sizes, like.sorted_indices, like.unsorted_indices
    )


def own_order(a: Tensor, lengths: Tensor | None) -> Tensor:
    """a (T, B, ·) between position order and the reverse direction's own time order: each
    sequence reversed within its own length, padding left in place; its own inverse. With no
    lengths every sequence runs all T steps and this is a flip."""
    torch = import_torch()
    if lengths is None:
        return a.flip(0)
    s = torch.arange(a.shape[0], device=a.device)[:, None]  # (T, 1)
    index = torch.where(s < lengths, lengths - 1 - s, s)  # (T, B)
    return a.gather(0, index[:, :, None].expand(a.shape))


def running(T: int, lengths: Tensor) -> Tensor:
    """(T, B) bool: step t + 1 is one of sequence b's own steps (t < n_b)."""
    torch = import_torch()
    return torch.arange(T, device=lengths.device)[:, None] < lengths
