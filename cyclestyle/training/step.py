"""What every method's step shares: checked back-propagation, the optimizer update with or
without a grad scaler, and freezing networks. The methods' own steps are in ``methods/``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from accelerate import Accelerator
from torch import nn

from .checkpoint import list_checkpoints
from .launch import any_process


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; training stops before the weights are touched."""


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


def backward_checked(accelerator: Accelerator, terms: dict[str, torch.Tensor], scaler: torch.amp.GradScaler,
                     which: str, step: int, checkpoints_dir: Path) -> None:
    """Back-propagate the sum of ``terms``, after checking that it is finite on every process."""
    loss = sum(terms.values())
    stop_if_not_finite(accelerator, loss, which, step, checkpoints_dir)
    if scaler.is_enabled():
        scaler.scale(loss).backward()
    else:
        accelerator.backward(loss)


def apply_update(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    if scaler.is_enabled():
        scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        scaler.update()
    else:
        optimizer.step()


def stop_if_not_finite(accelerator: Accelerator, loss: torch.Tensor, which: str, step: int,
                       checkpoints_dir: Path) -> None:
    """Raise ``NonFiniteLoss``, naming the last good checkpoint, if ``loss`` is not finite anywhere."""
    if not any_process(accelerator, not bool(torch.isfinite(loss.detach()).all())):
        return
    previous = list_checkpoints(checkpoints_dir)
    last = previous[-1] if previous else "none (no checkpoint was written yet)"
    raise NonFiniteLoss(
        f"the {which} loss is {loss.item()} at step {step}; stopped before updating the weights. "
        f"Last good checkpoint: {last}")
