"""Translating images with a trained generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def translate_tensor(generator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Translate a batch N×C×H×W in [-1, 1] of any height and width, full-frame.

    The generator needs sides that are multiples of 4 (two stride-2 stages): the batch is
    reflect-padded on the right and bottom and the output cropped back to H×W.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % 4, -w % 4
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return generator(x)[..., :h, :w]
