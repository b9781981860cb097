"""What a training method is: the extension point for a new way of learning a translator.

A run's ``method:`` key names an entry of ``METHODS``. The training loop is the same for every
method (data, schedule, accelerate, checkpoints and bit-exact resume, the dashboard, held-out
evaluation, the final files); a method says only what is its own, in one module
(``methods/NAME.py``) holding one ``Method`` subclass:

- ``section`` and ``options_type``: its own config section (``cut:``), a dataclass of its keys
  and defaults; ``resolve_options``, ``check_options`` and ``check_files`` complete and check it;
- ``shared_defaults``: its values for the shared keys that a config leaves to the method
  (``config.METHOD_DEFAULTED``: initialisation, anti-aliasing, the decay-epoch data rule, epochs);
- ``network_specs(cfg)`` (and ``build_networks`` for networks outside the registries): every
  network it trains, by the name its weights file takes in a checkpoint (``G_A``, ``D_A`` …);
- ``groups``: which networks each ``Update`` optimises (``Group("G", "generator", ("G_A", "G_B"))``);
- ``step(batch, step)``: one step of its algorithm, returning every loss term by name;
- ``translators``: which of its networks translate in which direction (``{"AtoB": "G_A"}``);
- ``domains``: ``("A", "B")``, or ``("A",)`` for a method that learns from one collection;
- ``paired``: whether it learns from pairs (pix2pix), item i of A with item i of B
  (``data.paired``, and ``data.PairedDataset``) instead of unrelated images;
- ``translators_for(cfg)``, where its direction is a setting (pix2pix's ``direction``).

The base class owns the rest, once for every method: the networks handed to accelerate, one
``Update`` per group, the learning rate, and what a checkpoint keeps of them.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import torch
from accelerate import Accelerator
from torch import nn

from ...config import METHOD_DEFAULTED, Config, ConfigError, build_section, recorded_values, unset_keys, with_values
from ...models import NetworkSpec
from ...registry import Registry
from ..pool import ImagePool
from ..update import FiniteGuard, Update


class MethodError(ConfigError):
    """An unknown method name, or one registered twice; one line naming the registered ones."""


@dataclasses.dataclass(frozen=True)
class Group:
    """Networks that one ``Update`` optimises together, and the name of their loss in errors."""

    name: str  # "G", "D": the optimizer's name in checkpoints and on the dashboard (lr/G)
    label: str  # "generator": "the generator loss is nan at step 7"
    networks: tuple[str, ...]  # in parameter order


class Method(abc.ABC):
    """One training method's networks, updates and step (see the module docstring)."""

    description: ClassVar[str]
    translators: ClassVar[dict[str, str]]  # direction ("AtoB", "BtoA") → network name
    groups: ClassVar[tuple[Group, ...]]
    domains: ClassVar[tuple[str, ...]] = ("A", "B")  # the image collections a step's batch holds
    paired: ClassVar[bool] = False  # learns from pairs: the batch's A[i] and B[i] show one scene
    section: ClassVar[str | None] = None  # the YAML key of the method's own config section
    options_type: ClassVar[type | None] = None  # the dataclass of that section's keys
    # The method's values of config.METHOD_DEFAULTED's keys where they differ from those (which
    # are CycleGAN's, and every run's before the keys existed).
    shared_defaults: ClassVar[dict[str, Any]] = {}

    # ---------------------------------------------------------------------------------------
    # The config section: typed, completed and checked by ``training/configure.py``

    @classmethod
    def options(cls, cfg: Config) -> Any:
        """The method's own section of ``cfg``, typed (None for a method without one)."""
        if cls.options_type is None:
            return None
        return build_section(cls.options_type, cfg.sections.get(cls.section, {}), f"{cls.section}.")

    @classmethod
    def resolve_options(cls, options: Any) -> Any:
        """The section with what the method decides filled in (e.g. FastCUT's own defaults), so
        that the run's ``config.yaml`` says what it trained with."""
        return options

    @classmethod
    def check_options(cls, cfg: Config, options: Any) -> None:
        """Raise a one-line ``ConfigError`` for a setting of the method's own that cannot work."""

    @classmethod
    def check_files(cls, cfg: Config) -> None:
        """The same for the files its settings name; not checked for a run's config read back."""

    @classmethod
    def configure(cls, cfg: Config) -> Config:
        """``cfg`` with the method's section typed, resolved and checked (against the shared keys
        as a new run fills them in), no other section, and ``data.paired`` resolved (null: whether
        the method learns from pairs)."""
        cfg = dataclasses.replace(cfg, data=cls.resolve_pairing(cfg))
        if cls.options_type is None:
            return dataclasses.replace(cfg, sections={})
        options = cls.resolve_options(cls.options(cfg))
        cls.check_options(cls.with_defaults(cfg), options)
        return dataclasses.replace(cfg, sections={cls.section: dataclasses.asdict(options)})

    @classmethod
    def with_defaults(cls, cfg: Config, recorded: dict[str, Any] | None = None) -> Config:
        """``cfg`` with the shared keys it leaves to the method filled in: with the method's values
        (``shared_defaults``) for a new run, or with those of ``recorded``, the config.yaml of the
        run it resumes (read as YAML), so that a resumed run goes on as it trained; a key that
        config lacks was not there when it was written, and takes the value every run had then."""
        unset = unset_keys(cfg)
        if recorded is not None:
            return with_values(cfg, recorded_values(recorded, unset))
        defaults = {**METHOD_DEFAULTED, **cls.shared_defaults}
        return with_values(cfg, {key: defaults[key] for key in unset})

    @classmethod
    def resolve_pairing(cls, cfg: Config) -> Any:
        """``cfg.data`` with ``paired`` decided: true for aligned data and a paired method unless
        set false (a ``ConfigError`` for a paired method), else as set; null stays null for an
        unpaired method (unpaired, as every run before the key was)."""
        d = cfg.data
        paired = True if d.paired is None and (cls.paired or d.format == "aligned") else d.paired
        if cls.paired and not paired:
            raise ConfigError(f"method {cfg.method} learns from pairs: data.paired must be true (or null)")
        if d.format == "aligned" and paired is False:
            raise ConfigError("data.format aligned holds pairs: data.paired must be true (or null)")
        if paired and (d.format == "images" or (d.format == "hf" and d.label_column is not None)):
            raise ConfigError(f"data.paired needs two paired collections: data.format aligned, folder, or hf with "
                              f"data.column_a and data.column_b (not data.format {d.format}"
                              f"{' with data.label_column' if d.format == 'hf' else ''})")
        return dataclasses.replace(d, paired=paired)

    @classmethod
    def translators_for(cls, cfg: Config) -> dict[str, str]:
        """Which network translates which way in a run of ``cfg`` (``translators`` unless the
        direction is a setting of the method)."""
        return dict(cls.translators)

    # ---------------------------------------------------------------------------------------
    # Networks

    @classmethod
    @abc.abstractmethod
    def network_specs(cls, cfg: Config) -> dict[str, NetworkSpec]:
        """What rebuilds each registered network the method trains, by name, in build order. It is
        written into each weights file, so that a file rebuilds its network alone."""

    @classmethod
    def build_networks(cls, cfg: Config) -> dict[str, nn.Module]:
        """Every network the method trains (the specs built in their order; a method with
        networks outside the registries, such as projection heads, adds them here)."""
        return {name: spec.build() for name, spec in cls.network_specs(cfg).items()}

    # ---------------------------------------------------------------------------------------
    # Training

    def __init__(self, cfg: Config, accelerator: Accelerator, networks: dict[str, nn.Module], rank: int):
        """Hand ``networks`` to accelerate (in build order) and make one ``Update`` per group."""
        self.cfg, self.accelerator, self.rank = cfg, accelerator, rank
        prepared = accelerator.prepare(*networks.values())
        self.networks: dict[str, nn.Module] = dict(zip(networks, prepared if len(networks) > 1 else (prepared,)))
        self.guard = FiniteGuard.for_run(accelerator, cfg.train)
        # A group's network that the config leaves out (CUT's heads with cut.lambda_nce 0) is skipped.
        self.updates = {g.name: Update(g.label, [self.networks[n] for n in g.networks if n in self.networks],
                                       accelerator, cfg.train, self.guard) for g in self.groups}
        self.pools: dict[str, ImagePool] = {}  # this process's history pools, saved per process
        self.translators = self.translators_for(cfg)  # this run's (a setting may choose the direction)

    def plain(self, name: str) -> nn.Module:
        """Network ``name`` without accelerate's wrappers: its own methods (``encode``), or a
        forward that skips DDP's gradient hooks (a frozen discriminator)."""
        return self.accelerator.unwrap_model(self.networks[name])

    @abc.abstractmethod
    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """Step ``step`` (counted from 1) of the method's algorithm; every loss term by name."""

    def set_lr(self, lr: float) -> None:
        for update in self.updates.values():
            update.set_lr(lr)

    def optimizer_states(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(optimizers, scalers) as state dicts by group name: what a checkpoint keeps of them."""
        states = {name: u.state_dicts() for name, u in self.updates.items()}
        return {k: s[0] for k, s in states.items()}, {k: s[1] for k, s in states.items()}

    def load_optimizer_states(self, optimizers: dict[str, Any], scalers: dict[str, Any]) -> None:
        for name, update in self.updates.items():
            update.load_state_dicts(optimizers[name], scalers[name])


METHODS: Registry[type[Method]] = Registry("method", MethodError)
