"""Colour preservation: luminance-only style transfer, keeping the content's chroma exactly.

[G16c] L. Gatys, M. Bethge, A. Hertzmann, E. Shechtman, "Preserving color in neural artistic
style transfer", arXiv:1606.05897. Used by ``cyclestyle gatys --preserve-color`` (the optimised
image is a luminance image) and by ``cyclestyle translate --preserve-color`` (the luminance of
any translator's output is put on the input's chroma). Images are N×C×H×W in [0, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor

# Y of YIQ, which is also the Y of BT.601 YCbCr. Both chroma pairs are differences of R, G and B
# whose coefficients sum to zero, so adding the same amount to R, G and B changes Y alone.
LUMA = (0.299, 0.587, 0.114)
_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


def luminance(rgb: Tensor) -> Tensor:
    """N×1×H×W luminance of an N×3×H×W RGB image."""
    return torch.einsum("c,nchw->nhw", rgb.new_tensor(LUMA), rgb).unsqueeze(1)


def rgb_to_yiq(rgb: Tensor) -> Tensor:
    """N×3×H×W YIQ (NTSC 1953) of an RGB image; I and Q are the chroma [G16c] keeps."""
    return torch.einsum("dc,nchw->ndhw", rgb.new_tensor(_YIQ), rgb)


def match_luminance(style_y: Tensor, content_y: Tensor) -> Tensor:
    """The style's luminance shifted and scaled to the content's mean and standard deviation,
    so that the style's overall brightness and contrast are not transferred [G16c section 2]."""
    s_mean, s_std = style_y.mean(), style_y.std()
    return (style_y - s_mean) * (content_y.std() / s_std.clamp_min(1e-8)) + content_y.mean()


def combine_luminance(content: Tensor, y: Tensor) -> Tensor:
    """The content image with its luminance replaced by ``y`` and its chroma kept exactly.

    YIQ's inverse turns (new Y, content I, content Q) into content + (new Y − content Y) on each
    of R, G and B. The shift is rounded to whole 8-bit grey levels and clamped per pixel to the
    range that keeps every channel in [0, 255]: the result, on the 8-bit grid, is then the 8-bit
    content plus the same integer in each channel, so its chroma equals the content's exactly,
    and saving it as an 8-bit image loses nothing.
    """
    content8 = (content.clamp(0, 1) * 255).round()
    shift = (y * 255 - luminance(content8)).round()
    shift = torch.maximum(shift, -content8.amin(dim=1, keepdim=True))
    shift = torch.minimum(shift, 255 - content8.amax(dim=1, keepdim=True))
    return (content8 + shift) / 255
