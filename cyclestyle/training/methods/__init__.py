"""Training methods by name: the extension point for a new way of learning a translator.

A run's ``method:`` key (default ``cyclegan``) names an entry of ``METHODS``. The training loop
(``training/loop.py``) is the same for every method: data, schedule, accelerate, checkpoints and
bit-exact resume, the dashboard, held-out evaluation and the final files. A method says only
what is its own, in one class:

- ``build_networks(cfg)``: every network it trains, by the name its weights file takes in a
  checkpoint (``G_A``, ``D_A`` …), built in a fixed order so that a seed gives the same weights;
- ``prepare(accelerator, networks, cfg, rank)``: the networks handed to accelerate, with their
  optimizers, grad scalers and history pools;
- ``step(accelerator, batch, step, checkpoints_dir)``: one step of its algorithm on a batch
  (``{"A": …, "B": …}``), returning every loss term by name;
- ``translators``: which of its networks translate in which direction (``{"AtoB": "G_A"}``):
  those are the run's final generator files, evaluated and shown on the dashboard.

A new method is one module with a ``Method`` subclass decorated with ``@register_method``, plus
an import line at the end of this file.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import torch
from accelerate import Accelerator
from torch import nn

from ...config import Config
from ...models import NetworkSpec
from ..pool import ImagePool


class Method(abc.ABC):
    """One training method's networks, optimizers and step (see the module docstring)."""

    name: ClassVar[str]
    description: ClassVar[str]
    translators: ClassVar[dict[str, str]]  # direction ("AtoB", "BtoA") → network name

    @staticmethod
    @abc.abstractmethod
    def network_specs(cfg: Config) -> dict[str, NetworkSpec]:
        """What rebuilds each registered network the method trains, by name, in build order. It is
        written into each weights file, so that a file rebuilds its network alone."""

    @classmethod
    def build_networks(cls, cfg: Config) -> dict[str, nn.Module]:
        """Every network the method trains (the specs built in their order; a method with
        networks outside the registries, such as projection heads, adds them here)."""
        return {name: spec.build() for name, spec in cls.network_specs(cfg).items()}

    @classmethod
    @abc.abstractmethod
    def prepare(cls, accelerator: Accelerator, networks: dict[str, nn.Module], cfg: Config, rank: int) -> Method:
        """Hand ``networks`` to accelerate and create the optimizers, scalers and this process's pools."""

    @property
    @abc.abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """The networks as accelerate prepared them, by checkpoint name."""

    @property
    def pools(self) -> dict[str, ImagePool]:
        """This process's history pools, by name (saved per process in checkpoints)."""
        return {}

    @property
    @abc.abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """By name ("G", "D" …): the learning rates the schedule sets, and what checkpoints keep."""

    @property
    @abc.abstractmethod
    def scalers(self) -> dict[str, torch.amp.GradScaler]:
        """One grad scaler per optimizer, under the same names."""

    @abc.abstractmethod
    def step(self, accelerator: Accelerator, batch: dict[str, torch.Tensor], step: int,
             checkpoints_dir: Path) -> dict[str, torch.Tensor]:
        """Step ``step`` (counted from 1) of the method's algorithm; every loss term by name."""

    def set_lr(self, lr: float) -> None:
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr

    def optimizer_states(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(optimizers, scalers) as state dicts by name: what a checkpoint keeps of them."""
        return ({k: o.state_dict() for k, o in self.optimizers.items()},
                {k: s.state_dict() for k, s in self.scalers.items()})

    def load_optimizer_states(self, optimizers: dict[str, Any], scalers: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(optimizers[name])
        for name, scaler in self.scalers.items():
            scaler.load_state_dict(scalers[name])


class MethodError(ValueError):
    """An unknown method name; one line naming the registered ones."""


METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available as ``method: cls.name``."""
    if cls.name in METHODS:
        raise MethodError(f"a method named {cls.name} is registered already")
    METHODS[cls.name] = cls
    return cls


def method_class(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise MethodError(f"unknown method {name!r} (registered: {', '.join(METHODS)})") from None


def scalers_for(accelerator: Accelerator, mixed_precision: str, names: tuple[str, ...]) -> dict[str, torch.amp.GradScaler]:
    """One grad scaler per optimizer (losses of different networks overflow at different scales),
    enabled for fp16 only: bf16 and fp32 need none."""
    return {name: torch.amp.GradScaler(accelerator.device.type, enabled=mixed_precision == "fp16")
            for name in names}


from . import cut, cyclegan  # noqa: E402,F401  (registers the built-in methods)
