"""CycleGAN (Zhu et al. 2017, §3–4): one step of its training, in the paper's two halves.

1. Generators (``update_generators``). With both discriminators frozen, translate each real image,
   translate it back, and minimise adversarial + λ·cycle + λ_idt·λ·identity losses (eq. 1–3,
   §5.2) over G_A (A→B) and G_B (B→A): ``cycle_losses`` once from real A, once from real B.
2. Discriminators (``update_discriminators``). D_A learns to tell real B from G_A's fakes and D_B
   real A from G_B's, each shown fakes drawn from a 50-image history pool (§4); their loss is
   halved (``discriminator_losses``).

Names follow the reference implementation: D_A judges G_A's outputs (domain B), D_B judges
G_B's (domain A).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from accelerate import Accelerator
from torch import nn

from ...config import Config
from ...models import NetworkSpec, discriminator_spec, generator_spec
from .. import losses
from ..draws import mixing_weights
from ..pool import ImagePool
from ..update import set_requires_grad
from .base import METHODS, Group, Method

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
    alphas: tuple[torch.Tensor, torch.Tensor] | None = None, gp_weight: float = 10.0,
) -> dict[str, torch.Tensor]:
    """Each discriminator's real-vs-fake loss (eq. 1), halved (§4); fakes come from the pools.

    With ``wgangp``, each critic's loss also holds half its gradient penalty (``gp_A``, ``gp_B``)
    at mixes of its real and pooled fake images, ``alphas`` (for D_A, D_B) weighing the real ones:
    the whole of Gulrajani et al.'s critic loss is halved, so λ (``gp_weight``) keeps its weight
    against the Wasserstein term. The reference defines the penalty but never calls it."""
    terms = {
        "D_A": losses.discriminator_loss(d_a(real_b), d_a(pooled_fake_b.detach()), gan_mode),
        "D_B": losses.discriminator_loss(d_b(real_a), d_b(pooled_fake_a.detach()), gan_mode),
    }
    if gan_mode == "wgangp":
        terms["gp_A"] = 0.5 * losses.gradient_penalty(d_a, real_b, pooled_fake_b, alphas[0], gp_weight)
        terms["gp_B"] = 0.5 * losses.gradient_penalty(d_b, real_a, pooled_fake_a, alphas[1], gp_weight)
    return terms


# --------------------------------------------------------------------------------------------
# The method


@METHODS.register("cyclegan")
class CycleGAN(Method):
    """G_A (A→B), G_B (B→A), D_A judging domain B and D_B judging domain A; one Adam for the
    generators and one for the discriminators (§4), and this process's history pools of fakes."""

    description: ClassVar[str] = "CycleGAN (Zhu et al. 2017): two generators, two PatchGANs, cycle consistency"
    translators: ClassVar[dict[str, str]] = {"AtoB": "G_A", "BtoA": "G_B"}
    groups: ClassVar[tuple[Group, ...]] = (Group("G", "generator", ("G_A", "G_B")),
                                           Group("D", "discriminator", ("D_A", "D_B")))

    @classmethod
    def network_specs(cls, cfg: Config) -> dict[str, NetworkSpec]:
        """G_A (A→B), G_B (B→A), and D_A, D_B judging domains B and A, built in this order."""
        m = cfg.model
        return {"G_A": generator_spec(m), "G_B": generator_spec(m, reverse=True),
                "D_A": discriminator_spec(m, m.out_channels), "D_B": discriminator_spec(m, m.in_channels)}

    def __init__(self, cfg: Config, accelerator: Accelerator, networks: dict[str, nn.Module], rank: int):
        super().__init__(cfg, accelerator, networks, rank)
        seed = cfg.seed * 1000 + 2 * rank  # each pool its own random stream, per process
        self.pools = {"A": ImagePool(cfg.train.pool_size, seed=seed), "B": ImagePool(cfg.train.pool_size, seed=seed + 1)}

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """The paper's alternating updates: generators, then discriminators. Returns every loss
        term under the reference implementation's names."""
        real_a, real_b = batch["A"], batch["B"]
        g_terms, fake_a, fake_b = self.update_generators(real_a, real_b, step)
        d_terms = self.update_discriminators(real_a, real_b, fake_a, fake_b, step)
        return {**g_terms, **d_terms}

    def update_generators(self, real_a: torch.Tensor, real_b: torch.Tensor, step: int
                          ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Update G_A and G_B on the full objective (eq. 3, plus §5.2's identity term), with both
        discriminators frozen; returns the terms and the fakes G_B(b), G_A(a).

        The terms that start from real A and those that start from real B are back-propagated one
        after the other: the gradient is their sum either way, and only one half's activations are
        alive at a time, which halves the step's peak memory. Processes sync once, at the end.
        The discriminators are called unwrapped (``plain``), which skips DDP's gradient hooks that
        would otherwise wait for weight gradients that are never computed.
        """
        G, lo, acc, net = self.updates["G"], self.cfg.loss, self.accelerator, self.networks
        set_requires_grad((net["D_A"], net["D_B"]), False)
        G.zero_grad()
        with acc.no_sync(net["G_A"]), acc.no_sync(net["G_B"]):
            with acc.autocast():
                from_a, fake_b = cycle_losses(real_a, net["G_A"], net["G_B"], self.plain("D_A"), lo.lambda_a,
                                              lo.lambda_a * lo.lambda_identity, lo.gan_mode)
            G.backward(from_a, step)
        with acc.autocast():
            from_b, fake_a = cycle_losses(real_b, net["G_B"], net["G_A"], self.plain("D_B"), lo.lambda_b,
                                          lo.lambda_b * lo.lambda_identity, lo.gan_mode)
        G.backward(from_b, step)
        G.step()
        # Reference names: G_A/G_B adversarial, cycle_A/B, and idt_A = ‖G_A(b) − b‖ (from B).
        terms = {"G_A": from_a["adversarial"], "G_B": from_b["adversarial"],
                 "cycle_A": from_a["cycle"], "cycle_B": from_b["cycle"]}
        if "identity" in from_a:
            terms |= {"idt_A": from_b["identity"], "idt_B": from_a["identity"]}
        return terms, fake_a, fake_b

    def update_discriminators(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor,
                              fake_b: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """Update D_A and D_B on real images against fakes from the history pools (§4: older fakes
        as well as the newest reduce oscillation); the loss is halved (§4). The penalty's mixing
        weights (``wgangp``) are drawn per image from (seed, step), so a resume draws them again."""
        D, net, lo = self.updates["D"], self.networks, self.cfg.loss
        set_requires_grad((net["D_A"], net["D_B"]), True)
        first, count = self.rank * len(real_a), len(real_a)
        alphas = (mixing_weights(self.cfg.seed, step, "gp/A", first, count),
                  mixing_weights(self.cfg.seed, step, "gp/B", first, count)) if lo.gan_mode == "wgangp" else None
        with self.accelerator.autocast():
            terms = discriminator_losses(net["D_A"], net["D_B"], real_a, real_b, self.pools["A"].query(fake_a),
                                         self.pools["B"].query(fake_b), lo.gan_mode, alphas, lo.lambda_gp)
        D.zero_grad()
        D.backward(terms, step)
        D.step()
        return terms
