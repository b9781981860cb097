import math

import pytest
import torch

from cyclestyle.training import losses


def test_lsgan_values():
    real, fake = torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), 0.25)
    assert losses.generator_adversarial_loss(fake, "lsgan").item() == pytest.approx(0.75**2)
    assert losses.discriminator_loss(real, fake, "lsgan").item() == pytest.approx(0.5 * (0.5**2 + 0.25**2))


def test_vanilla_values():
    z = torch.zeros(1, 1, 3, 3)
    assert losses.generator_adversarial_loss(z, "vanilla").item() == pytest.approx(math.log(2))
    assert losses.discriminator_loss(z, z, "vanilla").item() == pytest.approx(math.log(2))
    big = torch.full((1, 1, 1, 1), 50.0)
    # Computed from logits: no overflow for confident discriminators.
    assert losses.discriminator_loss(big, -big, "vanilla").item() == pytest.approx(0.0, abs=1e-6)


def test_hinge_values():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-3.0, 0.5])
    assert losses.discriminator_loss(real, fake, "hinge").item() == pytest.approx(0.5 * (0.5 + 0.75))
    assert losses.generator_adversarial_loss(fake, "hinge").item() == pytest.approx(1.25)


def test_discriminator_loss_is_halved():
    real, fake = torch.zeros(4), torch.ones(4)
    # Unhalved LSGAN would be 1 + 1.
    assert losses.discriminator_loss(real, fake, "lsgan").item() == pytest.approx(1.0)


def test_cycle_and_identity_are_weighted_l1():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)
    assert losses.cycle_consistency_loss(b, a, 10.0).item() == pytest.approx(1.0)
    assert losses.identity_loss(b, a, 10.0 * 0.5).item() == pytest.approx(0.5)
    assert losses.cycle_consistency_loss(a, a, 10.0).item() == 0.0


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="wgan"):
        losses.generator_adversarial_loss(torch.zeros(1), "wgan")


@pytest.mark.parametrize("mode", losses.GAN_MODES)
def test_losses_are_reduced_in_fp32_under_bf16_autocast(mode):
    logits = torch.randn(2, 1, 6, 6).bfloat16()
    images = torch.rand(2, 3, 8, 8).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert losses.generator_adversarial_loss(logits, mode).dtype == torch.float32
        assert losses.discriminator_loss(logits, -logits, mode).dtype == torch.float32
        assert losses.cycle_consistency_loss(images, images.flip(0), 10.0).dtype == torch.float32
        assert losses.identity_loss(images, images.flip(0), 5.0).dtype == torch.float32
