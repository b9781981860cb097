"""The networks: generators and discriminators chosen by name from registries.

``model.generator`` and ``model.discriminator`` name an entry of ``GENERATORS`` and
``DISCRIMINATORS`` (``registry.py`` says how to add one). CycleGAN has two generators,
G_A: A→B and G_B: B→A, and two discriminators, D_A judging domain B and D_B domain A; the fast
style method trains one generator, ``johnson`` (``johnson.py``); pix2pix a U-Net (``unet.py``) and
a PatchGAN (or the 1×1 ``pixel``) judging input and output stacked on channels.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..config import ModelConfig
from .johnson import TransformNet
from .limits import Budget, NetworkTooLarge, build_on_meta
from .patchgan import PatchDiscriminator, PixelDiscriminator
from .registry import DISCRIMINATORS, GENERATORS, Architecture, ArchitectureError, register_discriminator, register_generator
from .resnet import ResnetBlock, ResnetGenerator
from .unet import UnetGenerator

__all__ = ["DISCRIMINATORS", "GENERATORS", "Architecture", "ArchitectureError", "Budget", "NetworkSpec", "NetworkTooLarge", "PatchDiscriminator", "PixelDiscriminator",
           "register_discriminator", "register_generator", "ResnetBlock", "ResnetGenerator", "TransformNet", "UnetGenerator", "build_discriminator", "build_generator",
           "build_on_meta", "discriminator_spec", "generator_size_multiple", "generator_spec"]


@dataclass(frozen=True)
class NetworkSpec:
    """What rebuilds a network: its registered name, channels and builder arguments. Written
    into every weights file, so that a file is all ``open_run`` needs."""

    kind: str  # "generator" or "discriminator"
    name: str
    in_channels: int
    out_channels: int | None  # None for a discriminator
    arguments: dict[str, Any]

    def build(self) -> nn.Module:
        registry = GENERATORS if self.kind == "generator" else DISCRIMINATORS
        return registry.get(self.name).build(self.in_channels, self.out_channels, self.arguments)

    def describe(self) -> str:
        """Its name and arguments in one line, as a message shows them: ``resnet (ngf 8, n_blocks 9, …)``;
        a value of metadata that lies is cut short."""
        arguments = ", ".join(f"{k} {str(v)[:40]}" for k, v in self.arguments.items()) if isinstance(
            self.arguments, dict) else str(self.arguments)[:80]
        return f"{str(self.name)[:60]} ({arguments})"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NetworkSpec:
        raw = json.loads(text)
        if not isinstance(raw, dict) or set(raw) != {f.name for f in dataclasses.fields(cls)}:
            raise ValueError(f"not a network description: {text[:200]}")
        return cls(**raw)


def _settings(cfg: ModelConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def generator_spec(cfg: ModelConfig, reverse: bool = False) -> NetworkSpec:
    """G: A→B (``reverse=False``) or F: B→A; channels swap for the reverse direction."""
    in_ch, out_ch = (cfg.out_channels, cfg.in_channels) if reverse else (cfg.in_channels, cfg.out_channels)
    return NetworkSpec("generator", cfg.generator, in_ch, out_ch, GENERATORS.get(cfg.generator).arguments(_settings(cfg)))


def discriminator_spec(cfg: ModelConfig, channels: int) -> NetworkSpec:
    """A discriminator of images with ``channels`` channels."""
    arguments = DISCRIMINATORS.get(cfg.discriminator).arguments(_settings(cfg))
    return NetworkSpec("discriminator", cfg.discriminator, channels, None, arguments)


def generator_size_multiple(cfg: ModelConfig) -> int:
    """What the generator needs of an input's sides, from a shape-only build (nothing allocated;
    ``NetworkTooLarge`` past the ceilings of ``limits.py``)."""
    return build_on_meta(lambda: build_generator(cfg)).size_multiple


def build_generator(cfg: ModelConfig, reverse: bool = False) -> nn.Module:
    return generator_spec(cfg, reverse).build()


def build_discriminator(cfg: ModelConfig, channels: int) -> nn.Module:
    return discriminator_spec(cfg, channels).build()
