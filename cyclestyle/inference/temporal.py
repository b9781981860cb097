"""Temporally stable instance normalisation, for translating a video frame after frame.

Why
    Instance norm divides every feature map by the mean and standard deviation of *that frame*
    (Ulyanov et al. 2016). In a video these statistics move with every frame: with sensor noise,
    with an object entering the view, with a slow pan. The generator then shifts its output's
    colour and contrast from frame to frame, which is seen as flicker (users of the reference
    CycleGAN code report it: junyanz/pytorch-CycleGAN-and-pix2pix #127, #869).

What
    ``stable_generator`` returns a copy of a generator whose ``nn.InstanceNorm2d`` layers are
    ``TemporalInstanceNorm2d``: each normalises frame t with an exponential moving average of the
    per-channel statistics of frames 1 … t,

        mean_t = a · mean_{t-1} + (1 − a) · mean(frame t),  var_t likewise (biased variances),

    started from the first frame's own statistics (so the first frame is translated exactly as an
    image). ``a`` (``smoothing``) 0.9 averages over about ten frames. Frames in a batch are taken
    in order, so a batch of frames gives what the frames one by one would. Weights are shared with
    the original generator, nothing is copied but the module tree.

    The tiler (``tiling.py``) gathers every norm layer's whole-frame statistics over the tiles;
    for a layer with ``smooth`` it passes them through it, so a tiled video equals the full-frame
    one. While the tiler supplies the statistics it sets ``statistics_given`` and the layer's own
    forward (run on a 2×2 corner that the tiler discards) leaves the moving average alone.

Limits
    After a scene cut the statistics take a few frames to settle (about ten at 0.9): a clip made
    of several shots is best translated shot by shot, or with a smaller ``smoothing``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

DEFAULT_SMOOTHING = 0.9
"""Weight of the past in the moving average: 0.9 averages over about ten frames (0.4 s at 25 fps)."""


class TemporalInstanceNorm2d(nn.InstanceNorm2d):
    """Instance norm that normalises each frame with a moving average of the statistics of the
    frames before it and its own (see the module's notes). ``reset`` before a new clip."""

    def __init__(self, norm: nn.InstanceNorm2d, smoothing: float = DEFAULT_SMOOTHING):
        if not 0 <= smoothing <= 1:
            raise ValueError(f"smoothing must be between 0 and 1, got {smoothing}")
        super().__init__(norm.num_features, eps=norm.eps, affine=norm.affine, track_running_stats=False)
        if norm.affine:  # the same parameters, not copies
            self.weight, self.bias = norm.weight, norm.bias
        self.smoothing = smoothing
        self.statistics_given = False  # set by the tiler while it normalises for this layer
        self.mean: torch.Tensor | None = None
        self.var: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the frames seen: the next one starts a new clip."""
        self.mean = self.var = None

    def smooth(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The statistics to normalise frames with, given their own (N×C means and biased
        variances, frames in order), and the moving average carried on to the next frame."""
        out_mean, out_var = torch.empty_like(mean), torch.empty_like(var)
        a = self.smoothing
        for i in range(mean.shape[0]):
            if self.mean is None:
                self.mean, self.var = mean[i], var[i]
            else:
                past_mean = self.mean.to(mean.device, mean.dtype)
                past_var = self.var.to(var.device, var.dtype)
                self.mean, self.var = a * past_mean + (1 - a) * mean[i], a * past_var + (1 - a) * var[i]
            out_mean[i], out_var[i] = self.mean, self.var
        return out_mean, out_var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.statistics_given:
            return super().forward(x)
        # float64 where the device has it, as the tiler gathers its statistics (MPS has none)
        wide = torch.float32 if x.device.type == "mps" else torch.float64
        var, mean = torch.var_mean(x.to(torch.float32), dim=(2, 3), correction=0)
        mean, var = self.smooth(mean.to(wide), var.to(wide))
        scale = (var + self.eps).rsqrt()
        if self.affine:
            scale = scale * self.weight.to(wide)
        view = (x.shape[0], x.shape[1], 1, 1)
        out = (x - mean.to(x.dtype).view(view)) * scale.to(x.dtype).view(view)
        return out + self.bias.to(x.dtype).view(1, -1, 1, 1) if self.affine else out


def stable_generator(generator: nn.Module, smoothing: float = DEFAULT_SMOOTHING) -> nn.Module:
    """A copy of ``generator`` (sharing its weights) whose instance-norm layers smooth their
    statistics across frames (``TemporalInstanceNorm2d``); the original is left as it was.
    Norm layers with running statistics (batch norm, tracked instance norm) already translate
    every frame alike and are kept."""
    shared = {id(t): t for t in (*generator.parameters(), *generator.buffers())}
    twin = copy.deepcopy(generator, memo=shared)  # the module tree anew, the tensors shared
    for parent in list(twin.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.InstanceNorm2d) and not child.track_running_stats:
                setattr(parent, name, TemporalInstanceNorm2d(child, smoothing))
    return twin


def reset_statistics(generator: nn.Module) -> None:
    """Start a new clip: every ``TemporalInstanceNorm2d`` of ``generator`` forgets its frames."""
    for m in generator.modules():
        if isinstance(m, TemporalInstanceNorm2d):
            m.reset()


def flicker(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """How much a translation changes from frame to frame, relative to how much its input does:
    mean |y_t − y_{t−1}| over mean |x_t − x_{t−1}|, frames T×C×H×W on one scale (1 when the
    translation moves exactly as much as the input, 0 when it stands still). The channels may
    differ (a grey translator); at least two frames, and an input that moves."""
    if inputs.shape[0] < 2 or outputs.shape[0] != inputs.shape[0]:
        raise ValueError(f"flicker needs the same number (two or more) of input and output frames, "
                         f"got {inputs.shape[0]} and {outputs.shape[0]}")
    moved = (inputs[1:].double() - inputs[:-1].double()).abs().mean()
    if moved == 0:
        raise ValueError("flicker of a translation of frames that do not change is undefined")
    return float((outputs[1:].double() - outputs[:-1].double()).abs().mean() / moved)
