"""The ResNet generator of Johnson et al. (2016) as CycleGAN uses it (paper appendix 7.2).

For 256×256 images with nine residual blocks the layers read
``c7s1-64, d128, d256, R256 ×9, u128, u64, c7s1-3`` followed by tanh. Reflection padding keeps
the borders free of the dark frames zero padding produces.

CUT's code (taesungp/contrastive-unpaired-translation) builds the same network anti-aliased by
default (``antialias.py``): each down-sampling stage is a stride-1 conv, norm, ReLU and a blur-pool
(``no_antialias=False``), each up-sampling stage a blur up-sampling, then a 3×3 conv, norm and ReLU
(``no_antialias_up=False``). Both are options here under the reference's names; the defaults
(``True``: CycleGAN's strided and transposed convolutions) keep every earlier weights file as it
was. Layer for layer the modules are the reference's, in its order, so its state dicts map onto
ours one tensor to one tensor (``interop/official.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .antialias import Downsample, Upsample
from .init import init_weights
from .layers import conv_bias, norm_layer
from .registry import ArchitectureError, register_generator


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


def _down_stage(in_ch: int, out_ch: int, antialias: bool, norm: str) -> list[nn.Module]:
    """A stride-2 conv, norm, ReLU; anti-aliased: a stride-1 conv, norm, ReLU, then a blur-pool."""
    make_norm, bias = norm_layer(norm), conv_bias(norm)
    if not antialias:
        return [nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1, bias=bias), make_norm(out_ch), nn.ReLU(inplace=True)]
    return [nn.Conv2d(in_ch, out_ch, 3, stride=1, padding=1, bias=bias), make_norm(out_ch), nn.ReLU(inplace=True),
            Downsample(out_ch)]


def _up_stage(in_ch: int, out_ch: int, mode: str, antialias: bool, norm: str) -> list[nn.Module]:
    """An up-sampling layer (``mode``), norm, ReLU; anti-aliased (CUT's): a blur up-sampling, then a
    3×3 conv (zero padding, as the reference's), norm, ReLU."""
    make_norm, bias = norm_layer(norm), conv_bias(norm)
    tail = [make_norm(out_ch), nn.ReLU(inplace=True)]
    if antialias:
        return [Upsample(in_ch), nn.Conv2d(in_ch, out_ch, 3, stride=1, padding=1, bias=bias), *tail]
    if mode == "transpose":
        return [nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=bias), *tail]
    if mode == "resize_conv":
        # Odena et al. (2016), "Deconvolution and checkerboard artifacts": resizing then convolving
        # gives every output pixel the same number of kernel taps, so no checkerboard pattern.
        # Same parameter count as the transposed convolution it replaces.
        return [nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                              nn.Conv2d(in_ch, out_ch, 3, bias=bias)), *tail]
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
        init_type: str = "normal",
        no_antialias: bool = True,
        no_antialias_up: bool = True,
    ):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.antialias = not no_antialias
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(ngf),
            nn.ReLU(inplace=True),
        )
        self.down = nn.Sequential(*_down_stage(ngf, ngf * 2, self.antialias, norm),
                                  *_down_stage(ngf * 2, ngf * 4, self.antialias, norm))
        self.blocks = nn.Sequential(*[ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)])
        self.up = nn.Sequential(*_up_stage(ngf * 4, ngf * 2, upsample, not no_antialias_up, norm),
                                *_up_stage(ngf * 2, ngf, upsample, not no_antialias_up, norm))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh())
        init_weights(self, init_type, init_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))

    def encoder_layers(self) -> list[nn.Module]:
        """The encoder as one flat list: the stem's 4 modules, the two downsampling stages' 3
        each (4 anti-aliased: the reference's own numbering), then the residual blocks.
        ``encode`` counts layers in this list."""
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


def cut_layer_index(layer: int, n_blocks: int, antialias: bool = False) -> int:
    """Our ``encode`` index of layer ``layer`` of CUT's generator (Park et al. 2020), whose
    ``--nce_layers`` count the modules of its flat ``model`` Sequential.

    Anti-aliased (``antialias``, CUT's default), our encoder is the reference's module for module:
    the index is the layer itself (0–3 stem, 4–11 the two down-sampling stages, 12 + k residual
    block k). Without anti-aliasing each stage is a stride-2 conv, norm and ReLU, three modules
    where CUT's has four, so its layers 0–3 (stem) and 4–6 are ours, 8–10 are our 7–9, and 12 + k
    is our 10 + k. Its blur-pools (7 and 11) have no counterpart there: a ``ValueError``.
    """
    last = 11 + n_blocks
    if not 0 <= layer <= last:
        raise ValueError(f"layer {layer} is not in the encoder (0–{last} with {n_blocks} residual blocks)")
    if antialias:
        return layer
    if layer in (7, 11):
        raise ValueError(f"layer {layer} is an anti-aliasing blur-pool of CUT's generator, which this one has not "
                         "(model.no_antialias is true)")
    return layer if layer <= 6 else layer - 1 if layer <= 10 else layer - 2


@register_generator("resnet", "CycleGAN's ResNet generator with model.n_blocks residual blocks (default 9)")
def resnet(in_channels: int, out_channels: int, *, ngf: int = 64, n_blocks: int = 9, norm: str = "instance",
           dropout: bool = False, upsample: str = "transpose", init_gain: float = 0.02, init_type: str = "normal",
           no_antialias: bool = True, no_antialias_up: bool = True) -> ResnetGenerator:
    """The defaults build CycleGAN's generator (and every file written before the anti-aliasing
    options rebuilds as it was); CUT's methods set ``no_antialias`` and ``no_antialias_up`` false."""
    if not no_antialias_up and upsample != "transpose":
        raise ArchitectureError(f"model.upsample {upsample} replaces the transposed convolutions, and "
                                "model.no_antialias_up false replaces them by CUT's blur up-sampling: set one of them")
    return ResnetGenerator(in_channels, out_channels, ngf, n_blocks, norm, dropout, upsample, init_gain, init_type,
                           no_antialias, no_antialias_up)


# The paper's two sizes (appendix 7.2), under the official code's names.
register_generator("resnet_9blocks", "the paper's generator for 256 px images: 9 residual blocks", n_blocks=9)(resnet)
register_generator("resnet_6blocks", "the paper's generator for 128 px images: 6 residual blocks", n_blocks=6)(resnet)
