"""The 70×70 PatchGAN discriminator (Isola et al. 2017; CycleGAN appendix 7.2: C64-C128-C256-C512).

It classifies overlapping 70×70 patches as real or fake and outputs one logit per patch, so it
judges texture and style locally and works on any input size. ``pixel`` is the 1×1 "PixelGAN" of
the pix2pix paper (§4.4, Figure 6): it judges each pixel alone, so it can only push colours.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv_bias, init_weights, norm_layer
from .registry import register_discriminator


class PatchDiscriminator(nn.Module):
    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        init_gain: float = 0.02,
    ):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        # No normalisation on the first layer (paper appendix 7.2).
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last two convolutions have stride 1
            layers += [
                nn.Conv2d(channels, out, 4, stride=stride, padding=1, bias=bias),
                make_norm(out),
                nn.LeakyReLU(0.2, True),
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*layers)
        init_weights(self, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_discriminator("n_layers", "PatchGAN with model.n_layers_d convolution layers (default 3: 70×70 patches)")
def n_layers(in_channels: int, *, ndf: int = 64, n_layers_d: int = 3, norm: str = "instance",
             init_gain: float = 0.02) -> PatchDiscriminator:
    return PatchDiscriminator(in_channels, ndf, n_layers_d, norm, init_gain)


register_discriminator("basic", "the paper's 70×70 PatchGAN (3 layers)", n_layers_d=3)(n_layers)


class PixelDiscriminator(nn.Module):
    """pix2pix's PixelGAN (Isola et al. 2017, §4.4): 1×1 convolutions C64-C128 and a logit per
    pixel. The layers are the official ``PixelDiscriminator``'s (``net.0``, ``net.2``, ``net.3``,
    ``net.5``), and, as there, the last convolution has a bias only without batch norm."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, norm: str = "instance", init_gain: float = 0.02):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), make_norm(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))
        init_weights(self, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_discriminator("pixel", "pix2pix's 1×1 PixelGAN: one logit per pixel (colour only)")
def pixel(in_channels: int, *, ndf: int = 64, norm: str = "instance", init_gain: float = 0.02) -> PixelDiscriminator:
    return PixelDiscriminator(in_channels, ndf, norm, init_gain)
