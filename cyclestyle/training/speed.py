"""The speed paths of modern PyTorch, each a ``train.*`` switch with a safe default.

- ``mixed_precision: auto`` (the default) picks bf16 autocast where the device computes it in
  hardware (CUDA GPUs with bf16, CPUs with AVX-512 BF16 or AMX: AMD Zen 4/5, Intel Sapphire
  Rapids and later) and fp32 elsewhere: on a CPU without bf16 instructions bf16 is emulated and
  10–40× slower. Instance norm computes its statistics in fp32 under autocast, and the losses are
  reduced in fp32 (``losses.py``).
- ``channels_last`` stores activations NHWC, which cuDNN's tensor-core kernels want. CUDA only:
  on CPU, instance norm's backward with a channels_last gradient at batch 1 is wrong (PyTorch
  computes it with the wrong strides), so it is refused there, and on a GPU a gradient check
  against NCHW (``channels_last_is_exact``) guards it before the run starts.
- ``compile`` compiles every network in place (``nn.Module.compile``): weights, state dicts and
  checkpoints are those of the eager network. ``reduce-overhead`` adds CUDA graphs (static shapes).
- ``tf32`` lets fp32 matmuls and convolutions use TF32 tensor cores on Ampere and newer GPUs.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch
from torch import nn

from ..config import ConfigError, TrainConfig
from ..models.resnet import ResnetBlock


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (Linux: its ``/proc/cpuinfo`` flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_in_hardware(device_type: str) -> bool:
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type == "cpu":
        return cpu_has_bf16()
    return False


def resolve_mixed_precision(setting: str, device_type: str) -> tuple[str, str]:
    """(accelerate's ``mixed_precision``, the reason) for ``train.mixed_precision`` on ``device_type``."""
    if setting != "auto":
        return setting, f"train.mixed_precision={setting}"
    if bf16_in_hardware(device_type):
        return "bf16", f"train.mixed_precision=auto: bf16, which this {device_type.upper()} computes in hardware"
    return "no", f"train.mixed_precision=auto: fp32, as this {device_type.upper()} has no bf16 arithmetic"


def configure_backends(device: torch.device, t: TrainConfig) -> None:
    """Process-wide switches: TF32 for fp32 matmuls and convolutions on CUDA (``train.tf32``)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = t.tf32
        torch.backends.cudnn.allow_tf32 = t.tf32
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest kernels once


def check_channels_last(device: torch.device, enabled: bool) -> None:
    """Refuse ``train.channels_last`` where it is wrong: on CPU always, on a GPU when the check fails."""
    if not enabled:
        return
    if device.type != "cuda":
        raise ConfigError("train.channels_last is for CUDA only: on a CPU, instance norm's backward with "
                          "channels_last at batch 1 gives wrong gradients")
    if not channels_last_is_exact(device):
        raise ConfigError(f"train.channels_last: on {torch.cuda.get_device_name(device)} the gradients of "
                          "conv + instance norm differ between channels_last and NCHW; set it to false")


def channels_last_is_exact(device: torch.device, tolerance: float = 1e-4) -> bool:
    """Whether conv + instance norm + ReLU gives the same input and weight gradients in
    channels_last as in NCHW on ``device``, at batch 1 (where the CPU kernels go wrong)."""
    generator = torch.Generator().manual_seed(0)
    block = ResnetBlock(32)  # reflection padding, conv, instance norm, ReLU and the skip: the generator's body
    x = torch.randn(1, 32, 24, 24, generator=generator)
    upstream = torch.randn(1, 32, 24, 24, generator=generator)
    grads = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        net = copy.deepcopy(block).to(device, memory_format=memory_format)
        xi = x.to(device).contiguous(memory_format=memory_format).detach().requires_grad_()
        net(xi).backward(upstream.to(device).contiguous(memory_format=memory_format))
        weight = net.body[1].weight.grad
        grads.append(torch.cat([xi.grad.flatten(), weight.flatten()]).float().cpu())
    eager, nhwc = grads
    return bool((nhwc - eager).norm() <= tolerance * eager.norm())


def speed_up(net: nn.Module, t: TrainConfig, device: torch.device) -> nn.Module:
    """``net`` in channels_last (``check_channels_last`` first) and compiled in place, as ``t`` says."""
    if t.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if t.compile != "none":
        net.compile(mode=t.compile)
    return net


def to_memory_format(images: torch.Tensor, t: TrainConfig) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last) if t.channels_last else images
