"""The U-Net generator of pix2pix (Isola, Zhu, Zhou, Efros, CVPR 2017, §3.2.1 and appendix 6.1.1).

An encoder-decoder whose decoder stage i also sees encoder stage n − i (skip connections), so
that low-level structure (edges, the layout of a label map) crosses the bottleneck untouched.
Every stage halves (encoder: 4×4 conv, stride 2) or doubles (decoder: 4×4 transposed conv) the
side, so ``unet_256``'s eight stages take a 256×256 image to 1×1 and back: the input's sides must
be multiples of 2**num_downs.

The layers, their order and their nesting are the official code's (``UnetGenerator`` and
``UnetSkipConnectionBlock`` of junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``), so
that an official state dict loads key for key (``model.model.1.model.3…``): each block is a
``Sequential`` named ``model`` holding [LeakyReLU, conv, norm, the inner block, ReLU, transposed
conv, norm, Dropout], the outermost block without the first ReLU and norms and with a tanh, the
innermost without the inner block and the encoder norm. Dropout (0.5) sits in the ngf·8 blocks
between the innermost and the three outer ones, as in the official code: num_downs − 5 of them,
three for ``unet_256`` and two for ``unet_128``. Dropout is the paper's only source of noise
(§3.1), and, as there, it is also active at test time when asked (``inference/translate.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from .init import init_weights
from .layers import conv_bias, norm_layer
from .registry import register_generator


class UnetBlock(nn.Module):
    """One encoder stage, the blocks inside it, and the decoder stage that mirrors it; every block
    but the outermost returns its input concatenated with its output (the skip connection)."""

    def __init__(self, outer: int, inner: int, input_channels: int | None = None, submodule: nn.Module | None = None,
                 *, outermost: bool = False, innermost: bool = False, norm: str = "batch", dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        down = nn.Conv2d(outer if input_channels is None else input_channels, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1)
            layers = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, make_norm(outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, make_norm(inner), submodule, nn.ReLU(True), up, make_norm(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The U-Net with ``num_downs`` stages, built from the innermost block outwards as the official
    code builds it: innermost (ngf·8), num_downs − 5 more at ngf·8 (with dropout when asked), then
    ngf·4, ngf·2, ngf, and the outermost from ``in_channels`` to ``out_channels``."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: bool = False, init_gain: float = 0.02, init_type: str = "normal"):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"a U-Net needs at least 5 stages; got num_downs {num_downs}")
        self.size_multiple = 2**num_downs
        # One multiple a side is enough (translate pads tinier images to it): the 1×1 bottleneck
        # has no norm, and the deepest norm sees 2×2.
        self.min_multiples = 1
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for outer in (4, 2, 1):
            block = UnetBlock(ngf * outer, ngf * outer * 2, submodule=block, norm=norm)
        self.model = UnetBlock(out_channels, ngf, in_channels, block, outermost=True, norm=norm)
        init_weights(self, init_type, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@register_generator("unet_256", "pix2pix's U-Net for 256 px images: 8 stages (sides a multiple of 256)", num_downs=8)
def unet(in_channels: int, out_channels: int, *, ngf: int = 64, num_downs: int = 8, norm: str = "batch",
         dropout: bool = False, init_gain: float = 0.02, init_type: str = "normal") -> UnetGenerator:
    return UnetGenerator(in_channels, out_channels, num_downs, ngf, norm, dropout, init_gain, init_type)


register_generator("unet_128", "pix2pix's U-Net for 128 px images: 7 stages (sides a multiple of 128)",
                   num_downs=7)(unet)
