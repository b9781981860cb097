"""CycleGAN's objective as pure functions of network outputs (paper section 3, eq. 1–3).

Adversarial terms take the discriminator's raw patch logits. Three forms:
- ``lsgan`` (the paper's choice, section 4): least squares, (D(x) − 1)² for real and D(G(z))² for fake;
- ``vanilla``: the original GAN cross-entropy, computed from logits for numerical stability;
- ``hinge``: max(0, 1 − D(x)) + max(0, 1 + D(G(z))) for D, −D(G(z)) for G.

Every loss is reduced in fp32, also under bf16 or fp16 autocast: the logits and images are
upcast first (a mean over a bf16 patch map keeps 8 bits of mantissa).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "hinge")


def generator_adversarial_loss(fake_logits: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """How far the generator is from fooling the discriminator on its fakes."""
    fake_logits = fake_logits.float()
    if mode == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if mode == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"unknown GAN loss {mode!r} (one of {', '.join(GAN_MODES)})")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """Real-vs-fake loss, halved as in the paper "to slow down the rate at which D learns"."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if mode == "lsgan":
        real = F.mse_loss(real_logits, torch.ones_like(real_logits))
        fake = F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
    elif mode == "vanilla":
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    elif mode == "hinge":
        real = F.relu(1.0 - real_logits).mean()
        fake = F.relu(1.0 + fake_logits).mean()
    else:
        raise ValueError(f"unknown GAN loss {mode!r} (one of {', '.join(GAN_MODES)})")
    return 0.5 * (real + fake)


def cycle_consistency_loss(reconstructed: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    """λ‖F(G(x)) − x‖₁ (eq. 2): a translation must be invertible back to its source."""
    return weight * F.l1_loss(reconstructed.float(), real.float())


def identity_loss(same: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    """λ_idt·λ‖G(y) − y‖₁ (section 5.2): a generator fed an image of its target domain should leave
    it alone, which keeps the colours of paintings↔photos from drifting."""
    return weight * F.l1_loss(same.float(), real.float())
