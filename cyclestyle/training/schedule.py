"""The learning rate: its scaling with the batch, and its schedule (``train.lr_policy``): the
paper's ``linear`` (constant, then linear decay towards zero, section 4), and the official code's
``step``, ``plateau`` and ``cosine`` as factors of the base rate for each step."""

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


def step_lr_factor(max_steps: int, decay_steps: int) -> Callable[[int], float]:
    """The step form: constant for max_steps − decay_steps steps, then linear to 0 at max_steps."""
    decay_start = max_steps - decay_steps

    def factor(step: int) -> float:
        if step < decay_start or decay_steps == 0:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / decay_steps)

    return factor


# --------------------------------------------------------------------------------------------
# The reference's other policies (its --lr_policy; models/networks.py get_scheduler). The reference
# steps its scheduler once per epoch; ``unit`` is the steps in that epoch (1 in the step form, where
# the policy counts steps). Step e of training is in the scheduler's period e // unit.


def step_decay_factor(period: int, unit: int, gamma: float = 0.1) -> Callable[[int], float]:
    """``step``: torch's StepLR(step_size=period, gamma=0.1), the rate multiplied by γ every
    ``period`` epochs (the reference's --lr_decay_iters, default 50)."""

    def factor(step: int) -> float:
        return gamma ** ((step // unit) // period)

    return factor


def cosine_factor(period: int, unit: int) -> Callable[[int], float]:
    """``cosine``: torch's CosineAnnealingLR(T_max=period, eta_min=0) in its closed form,
    (1 + cos(π e / T_max)) / 2. The reference's T_max is --n_epochs, half its 200 epochs: the
    rate reaches 0 there and rises again over the decay epochs, as the reference's does."""

    def factor(step: int) -> float:
        return (1.0 + math.cos(math.pi * (step // unit) / period)) / 2.0

    return factor


class Plateau:
    """``plateau``: torch's ReduceLROnPlateau with the reference's settings (factor 0.2, relative
    threshold 0.01, patience 5, no cooldown, min_lr 0, eps 1e-8), fed the held-out ``eval.metric``
    at each evaluation. The reference feeds it ``model.metric``, which no model sets from 0, so its
    rate falls by 0.2 every 6 epochs whatever happens; a held-out metric is what the policy is for.

    ``mode`` is "min" for a metric that is better lower (FID), "max" otherwise (PSNR). Its state
    (``state_dict``) is saved in checkpoints: a resumed run lowers the rate when the run it
    continues would have.
    """

    def __init__(self, mode: str, base_lr: float, factor: float = 0.2, threshold: float = 0.01, patience: int = 5,
                 eps: float = 1e-8):
        self.mode, self.base_lr = mode, base_lr
        self.factor, self.threshold, self.patience, self.eps = factor, threshold, patience, eps
        self.scale, self.best, self.bad = 1.0, None, 0

    def __call__(self, step: int) -> float:
        """The factor of any step: what the evaluations so far made of the rate."""
        return self.scale

    def improves(self, value: float) -> bool:
        """Better than the best so far by more than the relative threshold (torch's ``rel`` mode)."""
        if self.best is None:
            return not math.isnan(value)
        if self.mode == "min":
            return value < self.best * (1.0 - self.threshold)
        return value > self.best * (1.0 + self.threshold)

    def observe(self, value: float) -> None:
        """One evaluation: a new best resets the count; more than ``patience`` evaluations without
        one lower the rate by ``factor`` (unless the change is below eps, as torch)."""
        if self.improves(value):
            self.best, self.bad = float(value), 0
        else:
            self.bad += 1
        if self.bad > self.patience:
            old = self.base_lr * self.scale
            if old - old * self.factor > self.eps:
                self.scale *= self.factor
            self.bad = 0

    def state_dict(self) -> dict[str, float | int | None]:
        return {"scale": self.scale, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        self.scale, self.best, self.bad = float(state["scale"]), state["best"], int(state["bad"])
