"""CycleGAN's objective as pure functions of network outputs (paper section 3, eq. 1–3), pix2pix's
L1 term (``paired_l1_loss``, Isola et al. 2017) and CUT's contrastive term (``patch_nce_loss``,
Park et al. 2020).

Adversarial terms take the discriminator's raw patch logits. Four forms:
- ``lsgan`` (the paper's choice, section 4): least squares, (D(x) − 1)² for real and D(G(z))² for fake;
- ``vanilla``: the original GAN cross-entropy, computed from logits for numerical stability;
- ``hinge``: max(0, 1 − D(x)) + max(0, 1 + D(G(z))) for D, −D(G(z)) for G;
- ``wgangp``: the Wasserstein critic, −D(x) + D(G(z)) for D and −D(G(z)) for G (the reference's
  GANLoss), with ``gradient_penalty`` added to D's loss by the methods (Gulrajani et al. 2017).

Every loss is reduced in fp32, also under bf16 or fp16 autocast: the logits and images are
upcast first (a mean over a bf16 patch map keeps 8 bits of mantissa).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "hinge", "wgangp")


def generator_adversarial_loss(fake_logits: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """How far the generator is from fooling the discriminator on its fakes."""
    fake_logits = fake_logits.float()
    if mode == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if mode in ("hinge", "wgangp"):
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
    elif mode == "wgangp":
        real, fake = -real_logits.mean(), fake_logits.mean()
    else:
        raise ValueError(f"unknown GAN loss {mode!r} (one of {', '.join(GAN_MODES)})")
    return 0.5 * (real + fake)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor, weight: float = 10.0, constant: float = 1.0) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017, eq. 3; the reference's ``cal_gradient_penalty``,
    type ``mixed``): λ·mean over images of (‖∇D(x̂)‖₂ − c)², at x̂ = α·real + (1 − α)·fake, one α
    per image (``alpha``, B values in [0, 1]). The gradient of D's summed output is taken with a
    graph (``create_graph``), so that the penalty trains D; 1e-16 is added to the gradient before
    its norm, as the reference does, so that the norm's own gradient is finite at 0."""
    shape = (-1,) + (1,) * (real.dim() - 1)
    mixed = (alpha.reshape(shape).to(real) * real.detach() + (1 - alpha.reshape(shape).to(real)) * fake.detach())
    mixed.requires_grad_(True)
    out = critic(mixed).float()
    (grad,) = torch.autograd.grad(out, mixed, grad_outputs=torch.ones_like(out), create_graph=True)
    norms = (grad.float().flatten(1) + 1e-16).norm(2, dim=1)
    return weight * ((norms - constant) ** 2).mean()


def cycle_consistency_loss(reconstructed: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    """λ‖F(G(x)) − x‖₁ (eq. 2): a translation must be invertible back to its source."""
    return weight * F.l1_loss(reconstructed.float(), real.float())


def identity_loss(same: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    """λ_idt·λ‖G(y) − y‖₁ (section 5.2): a generator fed an image of its target domain should leave
    it alone, which keeps the colours of paintings↔photos from drifting."""
    return weight * F.l1_loss(same.float(), real.float())


def paired_l1_loss(fake: torch.Tensor, target: torch.Tensor, weight: float) -> torch.Tensor:
    """λ‖y − G(x)‖₁ (pix2pix, Isola et al. 2017, eq. 3): the output must match the true target of
    its input; L1 rather than L2 because it blurs less (§3.1)."""
    return weight * F.l1_loss(fake.float(), target.float())


def patch_nce_loss(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """CUT's PatchNCE (Park et al. 2020, eq. 2–3) for one layer: B×P×D unit vectors, the query of
    G(x) and the key of x at the same P locations of each image.

    Each query must pick out its own key (the positive) among the keys of the other P − 1
    locations of the same image (the negatives: the reference's
    ``nce_includes_all_negatives_from_minibatch=False``): cross-entropy over
    [q·k⁺, q·k₁ … q·k_P] / τ with the positive first. As in the reference, the query's similarity
    to its own key is also in the negatives' row, replaced by −10 (a weight of e^(−10/τ), nil),
    and the keys carry no gradient. The mean over all B·P queries.

    Positives and negatives alike are computed in fp32, also under bf16/fp16 autocast (the
    reference runs fp32): at τ = 0.07 a bf16 dot product's rounding (≈ 0.004) moves a logit by
    0.06, as much as the differences the loss is learning from.
    """
    query, key = query.float(), key.detach().float()
    with torch.autocast(query.device.type, enabled=False):
        return _patch_nce_fp32(query, key, temperature)


def _patch_nce_fp32(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    positive = (query * key).sum(-1, keepdim=True)  # B×P×1
    negatives = query @ key.transpose(1, 2)  # B×P×P, the positives on the diagonal
    own = torch.eye(query.shape[1], dtype=torch.bool, device=query.device)
    logits = torch.cat([positive, negatives.masked_fill(own, -10.0)], dim=2) / temperature
    target = torch.zeros(logits.shape[0] * logits.shape[1], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits.flatten(0, 1), target)
