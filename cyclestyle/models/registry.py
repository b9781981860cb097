"""Architectures by name: the extension point for a new generator or discriminator.

Like the official CycleGAN's ``define_G(netG=…)``, a run names its networks (``model.generator``,
``model.discriminator``) and the registry builds them. A new architecture is one module with a
builder function plus one ``register_generator`` (or ``register_discriminator``) line; training, resume, translation, tiling and the
weights files then take it like any other:

    @register_generator("my_unet", "U-Net with skip connections")
    def my_unet(in_channels: int, out_channels: int, *, ngf: int = 64, norm: str = "instance") -> nn.Module:
        return MyUNet(in_channels, out_channels, ngf, norm)

A builder takes the channel counts positionally and its settings as keyword arguments named
after ``model.*`` config keys (``ngf``, ``n_blocks``, ``norm`` …): a run passes each key the
builder names and the config sets, and the builder's own default stands for the rest. A preset
(``resnet_9blocks``) fixes some arguments of a family; a config value that contradicts it is an
error rather than a silent override. Every generator a builder returns declares
``size_multiple``: the factor its input's height and width must be a multiple of.

The weights file of a generator records its architecture's name and the arguments it was built
with (``models/weights.py``), so it is rebuilt from the file alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..registry import Registry


class ArchitectureError(ValueError):
    """An unknown architecture name, or arguments it does not take; one line naming both."""


@dataclass(frozen=True)
class Architecture:
    """A named builder: ``build(in_channels, out_channels or None, **arguments)``."""

    name: str
    kind: str  # "generator" or "discriminator"
    builder: Callable[..., nn.Module]
    description: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)  # arguments a preset pins

    @property
    def parameters(self) -> tuple[str, ...]:
        """The keyword arguments the builder takes (besides the channel counts)."""
        signature = inspect.signature(self.builder)
        return tuple(p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)

    def arguments(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Every keyword argument of the builder: from ``settings`` (config key → value; None =
        unset), else the preset's fixed value, else the builder's default. A setting that
        contradicts the preset is an ``ArchitectureError``. Complete, so that a weights file
        describes its network even if a default changes later."""
        chosen = {k: settings[k] for k in self.parameters if settings.get(k) is not None}
        for key, value in self.fixed.items():
            if key in chosen and chosen[key] != value:
                raise ArchitectureError(
                    f"model.{key}={chosen[key]} contradicts model.{self.kind}={self.name}, which has {key} {value}")
            chosen[key] = value
        for p in inspect.signature(self.builder).parameters.values():
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in chosen:
                if p.default is inspect.Parameter.empty:
                    raise ArchitectureError(f"{self.kind} {self.name} needs model.{p.name}")
                chosen[p.name] = p.default
        return chosen

    def build(self, in_channels: int, out_channels: int | None, arguments: Mapping[str, Any]) -> nn.Module:
        unknown = sorted(set(arguments) - set(self.parameters))
        if unknown:
            raise ArchitectureError(f"{self.kind} {self.name} takes no argument {', '.join(unknown)} "
                                    f"(it takes {', '.join(self.parameters)})")
        channels = (in_channels,) if out_channels is None else (in_channels, out_channels)
        net = self.builder(*channels, **arguments)
        if self.kind == "generator":
            try:
                multiple = net.size_multiple
            except AttributeError:
                multiple = None
            if not isinstance(multiple, int) or multiple < 1:
                raise ArchitectureError(f"generator {self.name} must set a positive int size_multiple on its module")
        return net


Builder = Callable[..., nn.Module]
GENERATORS: Registry[Architecture] = Registry("generator architecture", ArchitectureError)
DISCRIMINATORS: Registry[Architecture] = Registry("discriminator architecture", ArchitectureError)


def register_generator(name: str, description: str = "", **fixed: Any) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` as generator ``name`` (``fixed``: arguments a preset pins)."""
    return _registering(GENERATORS, "generator", name, description, fixed)


def register_discriminator(name: str, description: str = "", **fixed: Any) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` as discriminator ``name``."""
    return _registering(DISCRIMINATORS, "discriminator", name, description, fixed)


def _registering(registry: Registry[Architecture], kind: str, name: str, description: str,
                 fixed: dict[str, Any]) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        registry.register(name, Architecture(name, kind, builder, description, dict(fixed)))
        return builder

    return add
