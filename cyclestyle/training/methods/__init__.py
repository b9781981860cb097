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
  those are the run's final generator files, evaluated and shown on the dashboard;
- ``domains``: the data it trains on: ``("A", "B")``, or ``("A",)`` for a method that learns from
  one collection (the fast style networks: photos, and a style given in its config section);
- ``check_config(cfg)``, ``check_files(cfg)``: its own section of the config, checked with the rest.

A new method is one module with a ``Method`` subclass decorated with ``@register_method``, plus
an import line at the end of this file.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar, Iterable

import torch
from accelerate import Accelerator
from torch import nn

from ...config import Config, TrainConfig
from ...models import NetworkSpec
from ..pool import ImagePool
from ..step import FiniteGuard


class Method(abc.ABC):
    """One training method's networks, optimizers and step (see the module docstring)."""

    name: ClassVar[str]
    description: ClassVar[str]
    translators: ClassVar[dict[str, str]]  # direction ("AtoB", "BtoA") → network name
    domains: ClassVar[tuple[str, ...]] = ("A", "B")  # the image collections a step's batch holds
    # Where the method's non-finite losses are caught (``step.FiniteGuard``, from ``finite_guard``);
    # the loop reads its count when it logs and saves. This default checks each loss at once.
    guard: FiniteGuard = FiniteGuard(deferred=False)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        """Raise a one-line ``ConfigError`` for a setting of the method's own that cannot work.
        Called by ``config.validate``."""

    @classmethod
    def check_files(cls, cfg: Config) -> None:
        """The same for the files its settings name; called by ``config.validate`` after the data
        checks, unless it is told not to check paths (a run's config read back)."""

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


def scalers_for(accelerator: Accelerator, names: tuple[str, ...]) -> dict[str, torch.amp.GradScaler]:
    """One grad scaler per optimizer (losses of different networks overflow at different scales),
    enabled for fp16 only: bf16 and fp32 need none."""
    fp16 = accelerator.mixed_precision == "fp16"
    return {name: torch.amp.GradScaler(accelerator.device.type, enabled=fp16) for name in names}


def adam(parameters: Iterable[nn.Parameter], t: TrainConfig, device: torch.device,
         guard: FiniteGuard | None = None) -> torch.optim.Adam:
    """Adam at ``train.lr`` and ``train.beta1/beta2``; on a GPU its fused kernel, one launch for
    all parameters (on a CPU the default multi-tensor path is the fast one), and fused wherever
    ``guard`` defers the finite check to it."""
    fused = device.type == "cuda" or (guard is not None and guard.deferred)
    return torch.optim.Adam(parameters, lr=t.lr, betas=(t.beta1, t.beta2), fused=fused or None)


def finite_guard(accelerator: Accelerator, t: TrainConfig) -> FiniteGuard:
    """``train.finite_check``: auto checks on the device on a GPU (no wait per step) unless fp16's
    grad scaler does the skipping, and at once elsewhere (where waiting costs nothing)."""
    deferred = t.finite_check == "deferred" or (
        t.finite_check == "auto" and accelerator.device.type == "cuda" and accelerator.mixed_precision != "fp16")
    return FiniteGuard(deferred=deferred)


from . import cut, cyclegan, fast_style  # noqa: E402,F401  (registers the built-in methods)
