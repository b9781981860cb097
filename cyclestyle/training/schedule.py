"""The learning-rate schedule: constant, then linear decay towards zero (paper section 4)."""

from __future__ import annotations

from typing import Callable


def epoch_lr_factor(n_epochs: int, n_epochs_decay: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The paper's form, stepped per epoch as the reference implementation does: epoch e (0-based)
    trains at 1 − max(0, e + 1 − n_epochs) / (n_epochs_decay + 1) times the base rate."""

    def factor(step: int) -> float:
        epoch = step // steps_per_epoch
        return 1.0 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)

    return factor


def step_lr_factor(max_steps: int, decay_steps: int) -> Callable[[int], float]:
    """The step form: constant for max_steps − decay_steps steps, then linear to 0 at max_steps."""
    decay_start = max_steps - decay_steps

    def factor(step: int) -> float:
        if step < decay_start or decay_steps == 0:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / decay_steps)

    return factor
