"""CycleGAN (Zhu et al. 2017, §3–4): one step of its training, in the paper's two halves.

1. Generators (``generator_step``). With both discriminators frozen, translate each real image,
   translate it back, and minimise adversarial + λ·cycle + λ_idt·λ·identity losses (eq. 1–3,
   §5.2) over G_A (A→B) and G_B (B→A): ``cycle_losses`` once from real A, once from real B.
2. Discriminators (``discriminator_step``). D_A learns to tell real B from G_A's fakes and D_B
   real A from G_B's, each shown fakes drawn from a 50-image history pool (§4); their loss is
   halved (``discriminator_losses``).

Names follow the reference implementation: D_A judges G_A's outputs (domain B), D_B judges
G_B's (domain A).
"""

from __future__ import annotations

import dataclasses
from itertools import chain
from pathlib import Path
from typing import ClassVar

import torch
from accelerate import Accelerator
from torch import nn

from ...config import Config, LossConfig
from ...models import NetworkSpec, discriminator_spec, generator_spec
from .. import losses
from ..pool import ImagePool
from ..step import FiniteGuard, apply_update, backward_checked, set_requires_grad
from . import Method, adam, finite_guard, register_method, scalers_for

# --------------------------------------------------------------------------------------------
# The objective, as pure functions of the networks


def cycle_losses(
    real: torch.Tensor, forward: nn.Module, backward: nn.Module, judge: nn.Module,
    cycle_weight: float, identity_weight: float, gan_mode: str,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The generator terms that start from real images x of one domain X (paper eq. 1–3, §5.2).

    ``forward``: X→Y and ``backward``: Y→X; ``judge`` is the discriminator of domain Y. Returns
    ``({"adversarial", "cycle", "identity"}, forward(x))``: forward(x) should fool the judge,
    backward(forward(x)) should give x back, and backward(x) should leave x, already in X, alone.
    """
    fake = forward(real)
    terms = {
        "adversarial": losses.generator_adversarial_loss(judge(fake), gan_mode),
        "cycle": losses.cycle_consistency_loss(backward(fake), real, cycle_weight),
    }
    if identity_weight > 0:
        terms["identity"] = losses.identity_loss(backward(real), real, identity_weight)
    return terms, fake


def discriminator_losses(
    d_a: nn.Module, d_b: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor,
    pooled_fake_a: torch.Tensor, pooled_fake_b: torch.Tensor, gan_mode: str,
) -> dict[str, torch.Tensor]:
    """Each discriminator's real-vs-fake loss (eq. 1), halved (§4); fakes come from the pools."""
    return {
        "D_A": losses.discriminator_loss(d_a(real_b), d_a(pooled_fake_b.detach()), gan_mode),
        "D_B": losses.discriminator_loss(d_b(real_a), d_b(pooled_fake_a.detach()), gan_mode),
    }


# --------------------------------------------------------------------------------------------
# What a step updates


@register_method
@dataclasses.dataclass
class CycleGAN(Method):
    """The four networks as ``accelerator.prepare`` returned them, their optimizers and scalers.

    ``frozen_d_a``/``frozen_d_b`` are the discriminators' plain modules: the generator half calls
    them, which skips DDP's gradient hooks that would otherwise wait for weight gradients that are
    never computed.
    """

    name: ClassVar[str] = "cyclegan"
    description: ClassVar[str] = "CycleGAN (Zhu et al. 2017): two generators, two PatchGANs, cycle consistency"
    translators: ClassVar[dict[str, str]] = {"AtoB": "G_A", "BtoA": "G_B"}

    g_a: nn.Module
    g_b: nn.Module
    d_a: nn.Module
    d_b: nn.Module
    frozen_d_a: nn.Module
    frozen_d_b: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    # One scaler per optimizer: generator and discriminator losses overflow at different scales.
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    loss_cfg: LossConfig = dataclasses.field(default_factory=LossConfig)
    history: dict[str, ImagePool] = dataclasses.field(default_factory=dict)  # fakes of A and of B
    guard: FiniteGuard = dataclasses.field(default_factory=FiniteGuard)

    @staticmethod
    def network_specs(cfg: Config) -> dict[str, NetworkSpec]:
        """G_A (A→B), G_B (B→A), and D_A, D_B judging domains B and A, built in this order."""
        m = cfg.model
        return {"G_A": generator_spec(m), "G_B": generator_spec(m, reverse=True),
                "D_A": discriminator_spec(m, m.out_channels), "D_B": discriminator_spec(m, m.in_channels)}

    @classmethod
    def prepare(cls, accelerator: Accelerator, networks: dict[str, nn.Module], cfg: Config, rank: int) -> CycleGAN:
        """Hand ``networks`` (G_A, G_B, D_A, D_B) to accelerate; Adam as in §4, one per pair; this
        process's history pools of fakes of A and of B, each with its own random stream."""
        t = cfg.train
        g_a, g_b, d_a, d_b = accelerator.prepare(networks["G_A"], networks["G_B"], networks["D_A"], networks["D_B"])
        scalers, device, guard = scalers_for(accelerator, ("G", "D")), accelerator.device, finite_guard(accelerator, t)
        seed = cfg.seed * 1000 + 2 * rank
        return cls(
            g_a, g_b, d_a, d_b, accelerator.unwrap_model(d_a), accelerator.unwrap_model(d_b),
            opt_g=adam(chain(g_a.parameters(), g_b.parameters()), t, device, guard),
            opt_d=adam(chain(d_a.parameters(), d_b.parameters()), t, device, guard),
            scaler_g=scalers["G"], scaler_d=scalers["D"], loss_cfg=cfg.loss, guard=guard,
            history={"A": ImagePool(t.pool_size, seed=seed), "B": ImagePool(t.pool_size, seed=seed + 1)})

    @property
    def networks(self) -> dict[str, nn.Module]:
        return {"G_A": self.g_a, "G_B": self.g_b, "D_A": self.d_a, "D_B": self.d_b}

    @property
    def pools(self) -> dict[str, ImagePool]:
        return self.history

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    @property
    def scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {"G": self.scaler_g, "D": self.scaler_d}

    def step(self, accelerator: Accelerator, batch: dict[str, torch.Tensor], step: int,
             checkpoints_dir: Path) -> dict[str, torch.Tensor]:
        """The paper's alternating updates: generators, then discriminators. Returns every loss
        term under the reference implementation's names."""
        reals = (batch["A"], batch["B"])
        g_terms, fakes = generator_step(accelerator, self, reals, self.loss_cfg, step, checkpoints_dir)
        d_terms = discriminator_step(accelerator, self, self.history, reals, fakes, self.loss_cfg.gan_mode, step,
                                     checkpoints_dir)
        return {**g_terms, **d_terms}


# --------------------------------------------------------------------------------------------
# The step's two halves


def generator_step(
    accelerator: Accelerator, gan: CycleGAN, reals: tuple[torch.Tensor, torch.Tensor], loss_cfg: LossConfig,
    step: int, checkpoints_dir: Path,
) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Update G_A and G_B on the full objective (eq. 3, plus §5.2's identity term), with both
    discriminators frozen. ``reals`` is (a, b); returns the terms and the fakes (G_B(b), G_A(a)).

    The terms that start from real A and those that start from real B are back-propagated one
    after the other: the gradient is their sum either way, and only one half's activations are
    alive at a time, which halves the step's peak memory. Processes sync once, at the end.
    """
    real_a, real_b = reals
    set_requires_grad((gan.d_a, gan.d_b), False)
    gan.opt_g.zero_grad(set_to_none=True)
    with accelerator.no_sync(gan.g_a), accelerator.no_sync(gan.g_b):
        with accelerator.autocast():
            from_a, fake_b = cycle_losses(real_a, gan.g_a, gan.g_b, gan.frozen_d_a, loss_cfg.lambda_a,
                                          loss_cfg.lambda_a * loss_cfg.lambda_identity, loss_cfg.gan_mode)
        backward_checked(accelerator, from_a, gan.scaler_g, "generator", step, checkpoints_dir, gan.guard)
    with accelerator.autocast():
        from_b, fake_a = cycle_losses(real_b, gan.g_b, gan.g_a, gan.frozen_d_b, loss_cfg.lambda_b,
                                      loss_cfg.lambda_b * loss_cfg.lambda_identity, loss_cfg.gan_mode)
    backward_checked(accelerator, from_b, gan.scaler_g, "generator", step, checkpoints_dir, gan.guard)
    apply_update(gan.opt_g, gan.scaler_g, gan.guard)
    # Reference names: G_A/G_B adversarial, cycle_A/B, and idt_A = ‖G_A(b) − b‖ (from B).
    terms = {"G_A": from_a["adversarial"], "G_B": from_b["adversarial"],
             "cycle_A": from_a["cycle"], "cycle_B": from_b["cycle"]}
    if "identity" in from_a:
        terms |= {"idt_A": from_b["identity"], "idt_B": from_a["identity"]}
    return terms, (fake_a, fake_b)


def discriminator_step(
    accelerator: Accelerator, gan: CycleGAN, pools: dict[str, ImagePool], reals: tuple[torch.Tensor, torch.Tensor],
    fakes: tuple[torch.Tensor, torch.Tensor], gan_mode: str, step: int, checkpoints_dir: Path,
) -> dict[str, torch.Tensor]:
    """Update D_A and D_B on real images against fakes from the history pools (§4: older fakes
    as well as the newest reduce oscillation); the loss is halved (§4). ``reals`` and ``fakes``
    are (A, B) pairs."""
    (real_a, real_b), (fake_a, fake_b) = reals, fakes
    set_requires_grad((gan.d_a, gan.d_b), True)
    with accelerator.autocast():
        terms = discriminator_losses(gan.d_a, gan.d_b, real_a, real_b, pools["A"].query(fake_a),
                                     pools["B"].query(fake_b), gan_mode)
    gan.opt_d.zero_grad(set_to_none=True)
    backward_checked(accelerator, terms, gan.scaler_d, "discriminator", step, checkpoints_dir, gan.guard)
    apply_update(gan.opt_d, gan.scaler_d, gan.guard)
    return terms
