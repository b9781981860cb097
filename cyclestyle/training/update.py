"""One optimised group of networks, updated as a paper's algorithm says "update G".

An ``Update`` holds what every method's update needs: the Adam optimizer over the group's
parameters, its grad scaler (fp16 only), the run's ``FiniteGuard`` and the accelerator. A step
then reads like the paper::

    G.zero_grad()
    G.backward(terms, step)    # the sum of the terms; a NaN stops the run before any update
    G.step()

A non-finite loss raises ``NonFiniteLoss`` naming the loss and the step; the training loop adds
the last good checkpoint where it catches it.
"""

from __future__ import annotations

import dataclasses
from itertools import chain
from typing import Any, Iterable

import torch
from accelerate import Accelerator
from torch import nn

from ..config import TrainConfig
from .launch import any_process


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; training stops before the weights are touched."""

    def with_checkpoint(self, last_good: str) -> NonFiniteLoss:
        """The same error, naming the checkpoint to go back to."""
        return NonFiniteLoss(f"{self}. Last good checkpoint: {last_good}")


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

    @classmethod
    def for_run(cls, accelerator: Accelerator, t: TrainConfig) -> FiniteGuard:
        """``train.finite_check``: auto checks on the device on a GPU (no wait per step) unless
        fp16's grad scaler does the skipping, and at once elsewhere (where waiting costs nothing)."""
        deferred = t.finite_check == "deferred" or (
            t.finite_check == "auto" and accelerator.device.type == "cuda" and accelerator.mixed_precision != "fp16")
        return cls(deferred=deferred)

    def update(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        """``optimizer.step()``, through the scaler (fp16) or, deferred, skipped on the device
        when a gradient is not finite (the optimizer must be fused: ``adam``)."""
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

    def raise_if_skipped(self, accelerator: Accelerator, step: int) -> None:
        """Read the count of skipped updates (one wait for the device); stop if there were any."""
        if self.skipped is None:
            return
        count, since = int(self.skipped.item()), self.read_at
        self.skipped, self.read_at = None, step
        if any_process(accelerator, count > 0):
            raise NonFiniteLoss(f"a loss was not finite in steps {since + 1}-{step} ({count} updates skipped on this "
                                "process, so the weights hold no NaN); stopped")


def adam(parameters: Iterable[nn.Parameter], t: TrainConfig, device: torch.device, deferred: bool) -> torch.optim.Adam:
    """Adam at ``train.lr`` and ``train.beta1/beta2``; on a GPU its fused kernel, one launch for
    all parameters (on a CPU the default multi-tensor path is the fast one), and fused wherever
    the finite check is ``deferred`` to it."""
    fused = device.type == "cuda" or deferred
    return torch.optim.Adam(parameters, lr=t.lr, betas=(t.beta1, t.beta2), fused=fused or None)


class Update:
    """One optimised group: Adam over ``modules``' parameters (in their order, which checkpoints'
    optimizer states follow), a grad scaler of its own (losses of different networks overflow at
    different scales; enabled for fp16 only), the run's finite guard and the accelerator.
    ``label`` names the group's loss in errors ("the generator loss is nan at step 7")."""

    def __init__(self, label: str, modules: Iterable[nn.Module], accelerator: Accelerator, t: TrainConfig,
                 guard: FiniteGuard):
        self.label, self.accelerator, self.guard = label, accelerator, guard
        device = accelerator.device
        self.optimizer = adam(chain.from_iterable(m.parameters() for m in modules), t, device, guard.deferred)
        self.scaler = torch.amp.GradScaler(device.type, enabled=accelerator.mixed_precision == "fp16")

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, terms: dict[str, torch.Tensor], step: int) -> None:
        """Back-propagate the sum of ``terms``, after checking that it is finite on every process
        (unless the guard defers the check to the update)."""
        loss = sum(terms.values())
        if not self.guard.deferred:
            self._stop_if_not_finite(loss, step)
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
        else:
            self.accelerator.backward(loss)

    def step(self) -> None:
        self.guard.update(self.optimizer, self.scaler)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _stop_if_not_finite(self, loss: torch.Tensor, step: int) -> None:
        if any_process(self.accelerator, not bool(torch.isfinite(loss.detach()).all())):
            raise NonFiniteLoss(f"the {self.label} loss is {loss.item()} at step {step}; "
                                "stopped before updating the weights")

    def state_dicts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(optimizer, scaler) state: what a checkpoint keeps of the update."""
        return self.optimizer.state_dict(), self.scaler.state_dict()

    def load_state_dicts(self, optimizer: dict[str, Any], scaler: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(optimizer)
        self.scaler.load_state_dict(scaler)
