"""The 70×70 PatchGAN discriminator (Isola et al. 2017; CycleGAN appendix 7.2: C64-C128-C256-C512).

It classifies overlapping 70×70 patches as real or fake and outputs one logit per patch, so it
judges texture and style locally and works on any input size. ``pixel`` is the 1×1 "PixelGAN" of
the pix2pix paper (§4.4, Figure 6): it judges each pixel alone, so it can only push colours.

CUT's code builds the PatchGAN anti-aliased by default (``no_antialias=False``): each stride-2
stage becomes a stride-1 conv (norm, LeakyReLU) followed by a blur-pool (``antialias.Downsample``),
which widens each logit's receptive field. The modules are the reference's, in its order
(``body.N`` is its ``model.N``).
"""

from __future__ import annotations

import torch
from torch import nn

from .antialias import Downsample
from .init import init_weights
from .layers import conv_bias, norm_layer
from .registry import register_discriminator


class PatchDiscriminator(nn.Module):
    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        init_gain: float = 0.02,
        init_type: str = "normal",
        no_antialias: bool = True,
    ):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        blur = not no_antialias
        # No normalisation on the first layer (paper appendix 7.2).
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=1 if blur else 2, padding=1),
                                   nn.LeakyReLU(0.2, True)]
        if blur:
            layers.append(Downsample(ndf))
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            strided = n < n_layers  # the last two convolutions have stride 1
            layers += [
                nn.Conv2d(channels, out, 4, stride=2 if strided and not blur else 1, padding=1, bias=bias),
                make_norm(out),
                nn.LeakyReLU(0.2, True),
            ]
            if strided and blur:
                layers.append(Downsample(out))
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*layers)
        init_weights(self, init_type, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_discriminator("n_layers", "PatchGAN with model.n_layers_d convolution layers (default 3: 70×70 patches)")
def n_layers(in_channels: int, *, ndf: int = 64, n_layers_d: int = 3, norm: str = "instance",
             init_gain: float = 0.02, init_type: str = "normal", no_antialias: bool = True) -> PatchDiscriminator:
    return PatchDiscriminator(in_channels, ndf, n_layers_d, norm, init_gain, init_type, no_antialias)


register_discriminator("basic", "the paper's 70×70 PatchGAN (3 layers)", n_layers_d=3)(n_layers)


class PixelDiscriminator(nn.Module):
    """pix2pix's PixelGAN (Isola et al. 2017, §4.4): 1×1 convolutions C64-C128 and a logit per
    pixel. The layers are the official ``PixelDiscriminator``'s (``net.0``, ``net.2``, ``net.3``,
    ``net.5``), and, as there, the last convolution has a bias only without batch norm."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, norm: str = "instance", init_gain: float = 0.02,
                 init_type: str = "normal"):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), make_norm(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))
        init_weights(self, init_type, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_discriminator("pixel", "pix2pix's 1×1 PixelGAN: one logit per pixel (colour only)")
def pixel(in_channels: int, *, ndf: int = 64, norm: str = "instance", init_gain: float = 0.02,
          init_type: str = "normal") -> PixelDiscriminator:
    return PixelDiscriminator(in_channels, ndf, norm, init_gain, init_type)
