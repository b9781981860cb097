"""The FID InceptionV3: its network, and the images it is fed under each FID protocol.

The network is the TensorFlow InceptionV3 of 2015-12-05 that FID is defined with (Heusel et
al. 2017), in torch-fidelity's port: its blocks (torchvision's, patched to pool as TensorFlow
does) in its order, up to the 2048-d pool features, so that its weights file
(``metrics.INCEPTION_FILE``) fits key for key. Only the blocks are taken from torch-fidelity:
its ``FeatureExtractorInceptionV3`` (and torchmetrics' ``NoTrainInceptionV3`` built on it) read
the file with ``torch.load(weights_only=False)``, which runs whatever a pickle names; here the
file is read by ``metrics.read_inception_weights``, which runs nothing.

This module imports torch; ``metrics`` imports it only when the network is loaded.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE_1,
    InceptionE_2,
)

from .protocols import FID_PROTOCOLS

INPUT_SIZE = 299  # the network's input side


def inception_network() -> nn.Sequential:
    """torch-fidelity's InceptionV3 up to the pool features: [0, 255] images scaled to [-1, 1]
    as TensorFlow's graph does, 299×299 in, N×2048 out. Its forward is sequential, so the
    layers keep torch-fidelity's names and its state dict's keys (all but the logits' ``fc``)."""
    return nn.Sequential(OrderedDict([
        ("Conv2d_1a_3x3", BasicConv2d(3, 32, kernel_size=3, stride=2)),
        ("Conv2d_2a_3x3", BasicConv2d(32, 32, kernel_size=3)),
        ("Conv2d_2b_3x3", BasicConv2d(32, 64, kernel_size=3, padding=1)),
        ("MaxPool_1", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("Conv2d_3b_1x1", BasicConv2d(64, 80, kernel_size=1)),
        ("Conv2d_4a_3x3", BasicConv2d(80, 192, kernel_size=3)),
        ("MaxPool_2", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("Mixed_5b", InceptionA(192, pool_features=32)),
        ("Mixed_5c", InceptionA(256, pool_features=64)),
        ("Mixed_5d", InceptionA(288, pool_features=64)),
        ("Mixed_6a", InceptionB(288)),
        ("Mixed_6b", InceptionC(768, channels_7x7=128)),
        ("Mixed_6c", InceptionC(768, channels_7x7=160)),
        ("Mixed_6d", InceptionC(768, channels_7x7=160)),
        ("Mixed_6e", InceptionC(768, channels_7x7=192)),
        ("Mixed_7a", InceptionD(768)),
        ("Mixed_7b", InceptionE_1(1280)),
        ("Mixed_7c", InceptionE_2(2048)),
        ("AvgPool", nn.AdaptiveAvgPool2d(output_size=(1, 1))),
        ("Flatten", nn.Flatten()),
    ]))


def resize_for_inception(images: Tensor, protocol: str) -> Tensor:
    """uint8 N×3×H×W images → float32 N×3×299×299 on the [0, 255] scale, as ``protocol`` feeds
    the network (``metrics.FID_PROTOCOLS`` says what each is).

    ``clean`` is clean-fid's own resize (Parmar, Zhang and Zhu, "On Aliased Resizing and
    Surprising Subtleties in GAN Evaluation", CVPR 2022), called on each image as clean-fid
    calls it: PIL's antialiased bicubic on each channel in float32, not quantised after.
    ``legacy`` is torch-fidelity's resize inside its network: TensorFlow 1's bilinear, which
    does not antialias (a downscale aliases), as the original TensorFlow FID code does.
    """
    if protocol == "clean":
        from cleanfid.resize import build_resizer

        resize = build_resizer("clean")
        pixels = images.cpu().permute(0, 2, 3, 1).numpy()  # clean-fid takes H×W×3 arrays
        resized = np.stack([resize(image) for image in pixels])
        return torch.from_numpy(resized).permute(0, 3, 1, 2).to(images.device)
    if protocol == "legacy":
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        return interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(INPUT_SIZE, INPUT_SIZE),
                                                         align_corners=False)
    raise ValueError(f"FID protocol must be one of {', '.join(FID_PROTOCOLS)}; got {protocol!r}")


class FIDInception(nn.Module):
    """The FID feature extractor: uint8 N×C×H×W images (C = 1 is read as gray RGB, as clean-fid's
    ``convert("RGB")`` does) → float32 N×2048 pool features, the images resized as ``protocol`` says."""

    def __init__(self, protocol: str):
        super().__init__()
        if protocol not in FID_PROTOCOLS:
            raise ValueError(f"FID protocol must be one of {', '.join(FID_PROTOCOLS)}; got {protocol!r}")
        self.protocol = protocol
        self.network = inception_network()

    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"FID Inception takes uint8 N×3×H×W images, got {images.dtype} {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        x = resize_for_inception(images, self.protocol).to(next(self.network.parameters()).device)
        return self.network((x - 128) / 128)
