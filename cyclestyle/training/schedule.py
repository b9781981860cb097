"""The learning rate: its scaling with the batch, and its schedule (constant, then linear
decay towards zero, paper section 4)."""

from __future__ import annotations

import math
from typing import Callable

BATCH_SCALING: dict[str, Callable[[int], float]] = {
    "none": lambda images: 1.0,
    "sqrt": math.sqrt,
    "linear": float,
}


def scaled_lr(lr: float, scaling: str, images_per_step: int) -> float:
    """``lr``, given for one image per step (the paper's batch 1), for ``images_per_step``.

    A batch of k images averages k gradients, which divides the gradient noise's variance by k.
    For Adam, whose update is normalised by the gradient's scale, the rule that keeps training
    on the same trajectory per image seen multiplies the rate by √k (Malladi et al., "On the SDEs
    and Scaling Rules for Adaptive Gradient Algorithms", NeurIPS 2022); the linear rule is SGD's
    (Goyal et al. 2017), here for comparison.
    """
    return lr * BATCH_SCALING[scaling](images_per_step)


def epoch_lr_factor(n_epochs: int, n_epochs_decay: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The paper's form, stepped per epoch as the reference implementation does: epoch e (0-based)
    trains at 1 − max(0, e + 1 − n_epochs) / (n_epochs_decay + 1) times the base rate."""

    def factor(step: int) -> float:
        epoch = step // steps_per_epoch
        return 1.0 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)

    return factor


def decay_start(n_epochs: int, steps_per_epoch: int, max_steps: int | None, decay_steps: int | None) -> int:
    """The first step (0-based) whose learning rate decays: epoch ``n_epochs`` (0-based; the
    reference's epoch > n_epochs, counted from 1), or in the step form ``max_steps`` less its decay
    steps (default: half of them)."""
    if max_steps is None:
        return n_epochs * steps_per_epoch
    return max_steps - (decay_steps if decay_steps is not None else max_steps // 2)


def step_lr_factor(max_steps: int, decay_steps: int) -> Callable[[int], float]:
    """The step form: constant for max_steps − decay_steps steps, then linear to 0 at max_steps."""
    decay_start = max_steps - decay_steps

    def factor(step: int) -> float:
        if step < decay_start or decay_steps == 0:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / decay_steps)

    return factor
