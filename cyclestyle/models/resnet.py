"""The ResNet generator of Johnson et al. (2016) as CycleGAN uses it (paper appendix 7.2).

For 256×256 images with nine residual blocks the layers read
``c7s1-64, d128, d256, R256 ×9, u128, u64, c7s1-3`` followed by tanh. Reflection padding keeps
the borders free of the dark frames zero padding produces.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .layers import conv_bias, init_weights, norm_layer
from .registry import register_generator


class ResnetBlock(nn.Module):
    """Two 3×3 convolutions with reflection padding and a skip connection."""

    def __init__(self, channels: int, norm: str = "instance", dropout: bool = False):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(channels),
            nn.ReLU(inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _upsample(in_ch: int, out_ch: int, mode: str, bias: bool) -> nn.Module:
    if mode == "transpose":
        return nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=bias)
    if mode == "resize_conv":
        # Odena et al. (2016), "Deconvolution and checkerboard artifacts": resizing then convolving
        # gives every output pixel the same number of kernel taps, so no checkerboard pattern.
        # Same parameter count as the transposed convolution it replaces.
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ReflectionPad2d(1),
            nn.Conv2d(in_ch, out_ch, 3, bias=bias),
        )
    raise ValueError(f"unknown upsample {mode!r} (transpose or resize_conv)")


class ResnetGenerator(nn.Module):
    """Image-to-image generator; input height and width must be multiples of 4 (two stride-2 stages)."""

    size_multiple = 4

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        upsample: str = "transpose",
        init_gain: float = 0.02,
    ):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(ngf),
            nn.ReLU(inplace=True),
        )
        self.down = nn.Sequential(
            nn.Conv2d(ngf, ngf * 2, 3, stride=2, padding=1, bias=bias),
            make_norm(ngf * 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(ngf * 2, ngf * 4, 3, stride=2, padding=1, bias=bias),
            make_norm(ngf * 4),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*[ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)])
        self.up = nn.Sequential(
            _upsample(ngf * 4, ngf * 2, upsample, bias),
            make_norm(ngf * 2),
            nn.ReLU(inplace=True),
            _upsample(ngf * 2, ngf, upsample, bias),
            make_norm(ngf),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh())
        init_weights(self, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))

    def encoder_layers(self) -> list[nn.Module]:
        """The encoder as one flat list: the stem's 4 modules, the two downsampling stages' 3
        each, then the residual blocks. ``encode`` counts layers in this list."""
        return [*self.stem, *self.down, *self.blocks]

    def encode(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The outputs of the encoder ``layers`` (indices into ``encoder_layers``, ascending), for
        feature losses such as CUT's PatchNCE; it stops after the last one asked for. As in the
        reference, ReLUs work in place: a normalisation layer's output reads as its ReLU's."""
        wanted, features = set(layers), []
        for index, layer in enumerate(self.encoder_layers()[: max(layers) + 1]):
            x = layer(x)
            if index in wanted:
                features.append(x)
        return features


def cut_layer_index(layer: int, n_blocks: int) -> int:
    """Our ``encode`` index of layer ``layer`` of CUT's generator (Park et al. 2020), whose
    ``--nce_layers`` count the modules of its flat ``model`` Sequential.

    CUT's ResNet downsamples with anti-aliasing (Zhang 2019): each stage is conv (stride 1),
    norm, ReLU and a blur-pool, four modules where ours has three (a stride-2 conv, norm, ReLU).
    So its layers 0–3 (stem) and 4–6 are ours, 8–10 are our 7–9, and 12 + k is residual block k
    (our 10 + k). Its blur-pools (7 and 11) have no counterpart here: a ``ValueError``.
    """
    if 0 <= layer <= 6:
        return layer
    if 8 <= layer <= 10:
        return layer - 1
    if layer in (7, 11):
        raise ValueError(f"layer {layer} is an anti-aliasing blur-pool of CUT's generator, which ours has not")
    if 12 <= layer < 12 + n_blocks:
        return layer - 2
    raise ValueError(f"layer {layer} is not in the encoder (0–{11 + n_blocks} with {n_blocks} residual blocks)")


@register_generator("resnet", "CycleGAN's ResNet generator with model.n_blocks residual blocks (default 9)")
def resnet(in_channels: int, out_channels: int, *, ngf: int = 64, n_blocks: int = 9, norm: str = "instance",
           dropout: bool = False, upsample: str = "transpose", init_gain: float = 0.02) -> ResnetGenerator:
    return ResnetGenerator(in_channels, out_channels, ngf, n_blocks, norm, dropout, upsample, init_gain)


# The paper's two sizes (appendix 7.2), under the official code's names.
register_generator("resnet_9blocks", "the paper's generator for 256 px images: 9 residual blocks", n_blocks=9)(resnet)
register_generator("resnet_6blocks", "the paper's generator for 128 px images: 6 residual blocks", n_blocks=6)(resnet)
