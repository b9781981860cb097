"""The image transformation network of fast feed-forward style transfer.

* [J16] J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual losses for real-time style transfer and
  super-resolution", ECCV 2016, §3.1 and the supplementary material's table 1.
* [U16] D. Ulyanov, A. Vedaldi, V. Lempitsky, "Instance normalization: the missing ingredient for
  fast stylization", arXiv:1607.08022: instance instead of batch normalisation.
* [O16] A. Odena, V. Dumoulin, C. Olah, "Deconvolution and checkerboard artifacts", Distill 2016.

Layers, with the default base width 32 and five blocks: 9×9 conv 32, 3×3 stride-2 convs 64 and
128, five residual blocks of two 3×3 convs 128, two upsamplings to 64 and 32, 9×9 conv to RGB.
Every convolution but the last is followed by an affine instance norm [U16] (as pytorch/examples'
``TransformerNet`` and Johnson's fast-neural-style code) and a ReLU (none after a block's second
norm, as [J16]'s residual blocks, after He et al.'s). Padding is by reflection, so the borders
stay free of dark frames, and upsampling is a nearest-neighbour resize followed by a 3×3 conv
[O16] rather than [J16]'s fractionally strided conv: every output pixel then gets the same
number of kernel taps, hence no checkerboard. The output is a tanh, [J16]'s "scaled tanh",
scaled here to the toolkit's [-1, 1] images. Input sides must be multiples of 4.

Its layers are all ones the tiled translation handles (``inference/tiling.py``): instance norms
use the whole image's statistics, so a large image is stylised in tiles equal to the full frame.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_generator


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """Reflection padding of half the kernel, then the convolution."""
    return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_ch, out_ch, kernel, stride)]


def _conv_norm_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [*_conv(in_ch, out_ch, kernel, stride), nn.InstanceNorm2d(out_ch, affine=True), nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    """Two 3×3 conv + instance norm, the first followed by a ReLU, and the identity added [J16]."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_norm_relu(channels, channels, 3),
                                  *_conv(channels, channels, 3), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformNet(nn.Module):
    """[J16]'s style network (see the module docstring); ``ngf`` is the first layer's width."""

    size_multiple = 4  # two stride-2 stages

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 32, n_blocks: int = 5):
        super().__init__()
        self.down = nn.Sequential(*_conv_norm_relu(in_channels, ngf, 9),
                                  *_conv_norm_relu(ngf, ngf * 2, 3, stride=2),
                                  *_conv_norm_relu(ngf * 2, ngf * 4, 3, stride=2))
        self.blocks = nn.Sequential(*[ResidualBlock(ngf * 4) for _ in range(n_blocks)])
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_conv_norm_relu(ngf * 4, ngf * 2, 3),
                                nn.Upsample(scale_factor=2, mode="nearest"), *_conv_norm_relu(ngf * 2, ngf, 3))
        self.head = nn.Sequential(*_conv(ngf, out_channels, 9), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.blocks(self.down(x))))


@register_generator("johnson", "Johnson et al.'s fast style network: model.ngf base width (32), model.n_blocks (5)")
def johnson(in_channels: int, out_channels: int, *, ngf: int = 32, n_blocks: int = 5) -> TransformNet:
    return TransformNet(in_channels, out_channels, ngf, n_blocks)
