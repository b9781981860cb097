"""pix2pix (Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017): one generator learnt from pairs (x, y) of the same scene.

The objective (eq. 4) is G* = arg min_G max_D L_cGAN(G, D) + λ·L_L1(G), λ = 100:

- L_cGAN (eq. 1): a *conditional* discriminator D sees the input stacked with an output on the
  channels, [x, y] against [x, G(x)], so it judges whether the output fits this input, not only
  whether it looks real (``conditional``). The paper's D is a 70×70 PatchGAN (§3.2.2;
  ``model.discriminator: basic``), or the 1×1 PixelGAN (``pixel``); the loss is the original
  cross-entropy (``loss.gan_mode: vanilla``), D's halved as in the official code.
- L_L1 (eq. 3): ‖y − G(x)‖₁ keeps the output on the true target's low frequencies
  (``losses.paired_l1_loss``).

One step, in the official ``pix2pix_model.py``'s order: G(x); D on [x, y] against [x, G(x)]
(``update_discriminator``); then G on the adversarial term with D frozen plus λ·L1
(``update_generator``). No history pool (the official code sets pool_size 0). ``pix2pix.direction``
says which half of each pair is the input: AtoB (x from A, y from B) or BtoA; the run's one
generator file, ``G``, translates that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from ...config import Config, ConfigError
from ...models import NetworkSpec, discriminator_spec, generator_spec
from .. import losses
from ..draws import mixing_weights
from ..update import set_requires_grad
from .base import METHODS, Group, Method


@dataclass(frozen=True)
class Pix2PixOptions:
    """The ``pix2pix:`` section."""

    direction: Literal["AtoB", "BtoA"] = "AtoB"  # AtoB: A is the input and B the target (official --direction)
    lambda_l1: float = 100.0  # λ of eq. 4


def conditional(condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """What a conditional discriminator sees (eq. 1): the input and an output stacked on channels."""
    return torch.cat([condition, image], dim=1)


@METHODS.register("pix2pix")
class Pix2Pix(Method):
    """G (input → target) and D judging [input, output]; one Adam for each (the paper's 2e-4,
    betas 0.5 and 0.999: ``train.lr``, ``train.beta1``, ``train.beta2``)."""

    description: ClassVar[str] = "pix2pix (Isola et al. 2017): a U-Net and a conditional PatchGAN, learnt from pairs"
    translators: ClassVar[dict[str, str]] = {"AtoB": "G"}
    groups: ClassVar[tuple[Group, ...]] = (Group("G", "generator", ("G",)), Group("D", "discriminator", ("D",)))
    paired: ClassVar[bool] = True
    section: ClassVar[str] = "pix2pix"
    options_type: ClassVar[type] = Pix2PixOptions

    @classmethod
    def check_options(cls, cfg: Config, options: Pix2PixOptions) -> None:
        if options.lambda_l1 < 0:
            raise ConfigError(f"pix2pix.lambda_l1 must not be negative; got {options.lambda_l1}")

    @classmethod
    def translators_for(cls, cfg: Config) -> dict[str, str]:
        return {cls.options(cfg).direction: "G"}

    @classmethod
    def network_specs(cls, cfg: Config) -> dict[str, NetworkSpec]:
        """G (input → target: model.in_channels → model.out_channels for AtoB, the reverse for
        BtoA) and D on input and target channels together, built in this order."""
        m = cfg.model
        return {"G": generator_spec(m, reverse=cls.options(cfg).direction == "BtoA"),
                "D": discriminator_spec(m, m.in_channels + m.out_channels)}

    def __init__(self, cfg: Config, accelerator, networks: dict[str, nn.Module], rank: int):
        super().__init__(cfg, accelerator, networks, rank)
        self.pix2pix: Pix2PixOptions = self.options(cfg)
        self.source, self.target = self.pix2pix.direction.split("to")  # "A", "B" for AtoB

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """G(x), then D, then G (the module docstring's order); the terms under the official names."""
        real_x, real_y = batch[self.source], batch[self.target]
        with self.accelerator.autocast():
            fake_y = self.networks["G"](real_x)
        d_terms = self.update_discriminator(real_x, real_y, fake_y, step)
        g_terms = self.update_generator(real_x, real_y, fake_y, step)
        return {**g_terms, **d_terms}

    def update_discriminator(self, real_x: torch.Tensor, real_y: torch.Tensor, fake_y: torch.Tensor,
                             step: int) -> dict[str, torch.Tensor]:
        """D on [x, y] (real) against [x, G(x)] (fake, no gradient into G), the loss halved; with
        ``wgangp``, plus half the gradient penalty at mixes of the two stacked inputs (``D_gp``),
        as CUT's critic."""
        D, d, lo = self.updates["D"], self.networks["D"], self.cfg.loss
        set_requires_grad((d,), True)
        D.zero_grad()
        real, fake = conditional(real_x, real_y), conditional(real_x, fake_y.detach())
        with self.accelerator.autocast():
            terms = {"D": losses.discriminator_loss(d(real), d(fake), lo.gan_mode)}
            if lo.gan_mode == "wgangp":
                alpha = mixing_weights(self.cfg.seed, step, "gp", self.rank * len(real), len(real))
                terms["D_gp"] = 0.5 * losses.gradient_penalty(d, real, fake, alpha, lo.lambda_gp)
        D.backward(terms, step)
        D.step()
        return terms

    def update_generator(self, real_x: torch.Tensor, real_y: torch.Tensor, fake_y: torch.Tensor,
                         step: int) -> dict[str, torch.Tensor]:
        """G on GAN([x, G(x)]) + λ‖y − G(x)‖₁ with D frozen (called unwrapped, without DDP's
        gradient hooks); the terms as the official code names them (G_GAN, G_L1)."""
        G = self.updates["G"]
        set_requires_grad((self.networks["D"],), False)
        G.zero_grad()
        with self.accelerator.autocast():
            judged = self.plain("D")(conditional(real_x, fake_y))
            terms = {"G_GAN": losses.generator_adversarial_loss(judged, self.cfg.loss.gan_mode),
                     "G_L1": losses.paired_l1_loss(fake_y, real_y, self.pix2pix.lambda_l1)}
        G.backward(terms, step)
        G.step()
        return terms
