"""Weight initialisation as the two reference implementations do it (``init_weights`` in
junyanz/pytorch-CycleGAN-and-pix2pix and taesungp/contrastive-unpaired-translation, both
``models/networks.py``).

Convolution (transposed included) and linear weights are drawn by ``init_type``, their biases set
to 0; batch-norm scales are drawn from N(1, gain) and their shifts set to 0; nothing else is
touched (instance norm has no parameters here, blur filters are fixed buffers). CycleGAN's paper
uses ``normal`` (N(0, 0.02)); CUT's code defaults to ``xavier`` with gain 0.02, whose weights are
11–64 times smaller for its layers, so its generator starts from a nearly flat grey output.
"""

from __future__ import annotations

import math

from torch import nn

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every layer of ``net`` in place (module order, as ``net.apply`` reaches them)
    and return it. ``gain``: the standard deviation for ``normal``, the gain of ``xavier`` and
    ``orthogonal``; ``kaiming`` ignores it (He et al.'s fan-in rule for ReLU, gain √2)."""
    if init_type not in INIT_TYPES:
        raise ValueError(f"unknown init_type {init_type!r} ({', '.join(INIT_TYPES)})")
    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                          nn.ConvTranspose3d, nn.Linear)):
            _draw(m.weight, init_type, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def _draw(weight: nn.Parameter, init_type: str, gain: float) -> None:
    if init_type == "normal":
        nn.init.normal_(weight, 0.0, gain)
    elif init_type == "xavier":
        nn.init.xavier_normal_(weight, gain=gain)
    elif init_type == "kaiming":
        nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
    elif not weight.is_meta:  # a shape-only build: QR has no meta kernel, and there is nothing to draw
        nn.init.orthogonal_(weight, gain=gain)


def xavier_std(weight_shape: tuple[int, ...], gain: float) -> float:
    """The standard deviation ``xavier`` draws a weight of ``weight_shape`` with:
    gain·√(2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    receptive = math.prod(weight_shape[2:]) if len(weight_shape) > 2 else 1
    fan_in, fan_out = weight_shape[1] * receptive, weight_shape[0] * receptive
    return gain * math.sqrt(2.0 / (fan_in + fan_out))
