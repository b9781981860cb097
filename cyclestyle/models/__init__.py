"""CycleGAN's networks: two ResNet generators and two PatchGAN discriminators."""

from __future__ import annotations

from ..config import ModelConfig
from .patchgan import PatchDiscriminator
from .resnet import ResnetBlock, ResnetGenerator

__all__ = ["PatchDiscriminator", "ResnetBlock", "ResnetGenerator", "build_generator", "build_discriminator"]


def build_generator(cfg: ModelConfig, reverse: bool = False) -> ResnetGenerator:
    """G: A→B (``reverse=False``) or F: B→A; channels swap for the reverse direction."""
    in_ch, out_ch = (cfg.out_channels, cfg.in_channels) if reverse else (cfg.in_channels, cfg.out_channels)
    return ResnetGenerator(in_ch, out_ch, cfg.ngf, cfg.n_blocks, cfg.norm, cfg.dropout, cfg.upsample, cfg.init_gain)


def build_discriminator(cfg: ModelConfig, channels: int) -> PatchDiscriminator:
    return PatchDiscriminator(channels, cfg.ndf, cfg.n_layers_d, cfg.norm, cfg.init_gain)
