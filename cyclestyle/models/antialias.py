"""Anti-aliased sampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019),
as CUT's code builds it (taesungp/contrastive-unpaired-translation, ``models/networks.py``:
``Downsample``, ``Upsample``, ``get_filter``).

A stride-2 convolution samples its output on a grid it has not low-passed, which aliases; a
transposed one spreads each input over a 2×2 pattern of taps that repeats, which draws a
checkerboard. Blurring with a fixed binomial filter first (down), or up-sampling with one (up),
removes both. The filters are buffers named ``filt``, one copy per channel, as the reference
saves them, so that its state dicts load tensor for tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Rows of Pascal's triangle: the binomial filters, by size.
BINOMIAL = {1: [1.0], 2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0]}


def binomial_filter(size: int) -> torch.Tensor:
    """The size×size outer product of a binomial row with itself, summing to 1."""
    row = torch.tensor(BINOMIAL[size])
    square = row[:, None] * row[None, :]
    return square / square.sum()


class Downsample(nn.Module):
    """Blur-pool: reflection pad 1, then a depthwise [1, 2, 1]⊗[1, 2, 1]/16 filter at stride 2
    (the reference's defaults: ``filt_size=3``, ``pad_type='reflect'``)."""

    def __init__(self, channels: int, size: int = 3, stride: int = 2):
        super().__init__()
        self.stride = stride
        low, high = (size - 1) // 2, size // 2  # pads left/top, right/bottom
        self.pad = nn.ReflectionPad2d((low, high, low, high))
        self.register_buffer("filt", binomial_filter(size)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=self.stride, groups=x.shape[1])


class Upsample(nn.Module):
    """×2 up-sampling by a fixed [1, 3, 3, 1]⊗[1, 3, 3, 1] filter (sum 4, so a flat image stays
    flat): replicate pad 1, a depthwise transposed convolution at stride 2, and the border rows
    cropped as the reference crops them (``filt_size=4``, ``pad_type='repl'``); H×W → 2H×2W."""

    def __init__(self, channels: int, size: int = 4, stride: int = 2):
        super().__init__()
        self.stride, self.size = stride, size
        self.pad = nn.ReplicationPad2d(1)
        self.register_buffer("filt", (binomial_filter(size) * stride**2)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = 1 + (self.size - 1) // 2
        out = F.conv_transpose2d(self.pad(x), self.filt, stride=self.stride, padding=padding,
                                 groups=x.shape[1])[:, :, 1:, 1:]
        return out if self.size % 2 else out[:, :, :-1, :-1]
