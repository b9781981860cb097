"""What every method's step shares: checked back-propagation, the optimizer update with or
without a grad scaler, and freezing networks. The methods' own steps are in ``methods/``."""

from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass
class FiniteGuard:
    """Where a NaN or infinite loss is caught, and what catching it costs.

    At once (``deferred=False``): each loss is checked as it is computed, and training stops
    before the update. Each check waits for the device, which is free on a CPU and a stall per
    step on a GPU. On the device (``deferred=True``, ``train.finite_check``): the fused Adam
    kernel skips any update whose gradients are not finite (its ``found_inf``, as grad scalers
    use it), so the weights and Adam's moments never take a NaN; the count of skipped updates is
    read with the losses, when they are logged or a checkpoint is written, and training stops then.
    """

    deferred: bool = False
    skipped: torch.Tensor | None = None  # on the device: updates skipped since the last read
    read_at: int = 0  # the step of the last read

    def update(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        """``optimizer.step()``, through the scaler (fp16) or, deferred, skipped on the device
        when a gradient is not finite (the optimizer must be fused: ``methods.adam``)."""
        if scaler.is_enabled():
            scaler.step(optimizer)  # skipped when the scaled gradients overflowed
            scaler.update()
            return
        if not self.deferred:
            optimizer.step()
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        found = (~torch.isfinite(torch.stack(torch._foreach_norm(grads)))).any().float()
        optimizer.found_inf = found  # read by the fused kernel: no update, and the step count kept
        optimizer.step()
        self.skipped = found if self.skipped is None else self.skipped + found

    def raise_if_skipped(self, accelerator: Accelerator, step: int, checkpoints_dir: Path) -> None:
        """Read the count of skipped updates (one wait for the device); stop if there were any."""
        if self.skipped is None:
            return
        count, since = int(self.skipped.item()), self.read_at
        self.skipped, self.read_at = None, step
        if any_process(accelerator, count > 0):
            previous = list_checkpoints(checkpoints_dir)
            raise NonFiniteLoss(
                f"a loss was not finite in steps {since + 1}-{step} ({count} updates skipped on this process, "
                f"so the weights hold no NaN); stopped. Last good checkpoint: "
                f"{previous[-1] if previous else 'none (no checkpoint was written yet)'}")


def backward_checked(accelerator: Accelerator, terms: dict[str, torch.Tensor], scaler: torch.amp.GradScaler,
                     which: str, step: int, checkpoints_dir: Path, guard: FiniteGuard) -> None:
    """Back-propagate the sum of ``terms``, after checking that it is finite on every process
    (unless ``guard`` defers the check to the update)."""
    loss = sum(terms.values())
    if not guard.deferred:
        stop_if_not_finite(accelerator, loss, which, step, checkpoints_dir)
    if scaler.is_enabled():
        scaler.scale(loss).backward()
    else:
        accelerator.backward(loss)


def apply_update(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, guard: FiniteGuard) -> None:
    guard.update(optimizer, scaler)


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
