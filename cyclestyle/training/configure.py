"""A run's config checked whole, once, before anything runs.

``config.py`` types and checks the shared sections; what depends on the registries is checked
here, where they are all known: the architectures (``models``), the method and its own section
(``methods``), and the held-out metric (``evaluation``). Each failure is one ``ConfigError``
line naming the key. ``load_config`` is what the commands, the demo and the Python API call.
"""

from __future__ import annotations

import typing
from pathlib import Path

from ..config import (SHARED_KEYS, Config, ConfigError, EvalConfig, ModelConfig, read_config, split_metric,
                      validate_paths)
from ..evaluation import registry as metrics
from ..models import (ArchitectureError, NetworkSpec, NetworkTooLarge, build_on_meta, discriminator_spec,
                      generator_size_multiple, generator_spec)
from .methods import METHODS, Method, MethodError


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = (),
                check_paths: bool = True) -> Config:
    """Read a YAML file (or start from defaults), apply ``key=value`` overrides, check it whole.

    ``check_paths=False`` skips the checks of the files and folders it names (the data, the
    style images): for a config whose data is given elsewhere.
    """
    return check_config(read_config(path, overrides), check_paths)


def check_config(cfg: Config, check_paths: bool = True) -> Config:
    """``cfg`` checked against the registries, with its method's section typed and completed
    (``Method.configure``): the config a run trains with and writes as ``config.yaml``, but for
    the shared keys it leaves to the method (``config.METHOD_DEFAULTED``), which the run fills in
    when it starts (``Method.with_defaults``: from its recorded config when it resumes). They are
    checked here as a new run fills them in."""
    method = _check_method(cfg)
    multiple = _check_architectures(method.with_defaults(cfg).model)
    cfg = method.configure(cfg)
    one_way = len(method.translators_for(cfg)) == 1
    d, m = cfg.data, cfg.model
    if d.preprocess.endswith("crop") and d.crop_size % multiple:  # the uncropped modes pad to the multiple
        raise ConfigError(f"data.crop_size={d.crop_size} must be a multiple of {multiple}, which model.generator "
                          f"{m.generator} needs of its input's sides")
    if cfg.loss.lambda_identity > 0 and m.in_channels != m.out_channels and not one_way:
        raise ConfigError("loss.lambda_identity needs model.in_channels == model.out_channels (set it to 0)")
    _check_metric(cfg.eval, cfg.method, set(method.translators_for(cfg)), bool(d.paired))
    if check_paths:
        validate_paths(cfg, method.domains)
        method.check_files(cfg)
    return cfg


def _check_method(cfg: Config) -> type[Method]:
    """A registered method, what it asks of the shared sections, and no section of another's."""
    try:
        method = METHODS.get(cfg.method)
    except MethodError as e:
        raise ConfigError(f"method: {e}") from None
    if len(method.domains) == 1 and cfg.eval.every:
        raise ConfigError(f"eval.every={cfg.eval.every}: method {cfg.method} trains on one domain, with no "
                          "domain B to evaluate against; set eval.every: 0")
    if len(method.domains) == 2 and cfg.data.format == "images":
        raise ConfigError(f"data.format images holds one domain; method {cfg.method} needs two "
                          "(use data.format folder: ROOT/trainA and ROOT/trainB)")
    for section in cfg.sections:
        if section != method.section:
            _check_foreign_section(cfg, section)
    return method


def _check_foreign_section(cfg: Config, section: str) -> None:
    """A section of other methods is allowed only as they leave it by default (a config shared by
    several runs); any other section is an unknown key."""
    readers = [(name, m) for name, m in METHODS.items() if m.section == section]
    if not readers:
        known = sorted({*SHARED_KEYS, *(m.section for m in METHODS.values() if m.section)})
        raise ConfigError(f"unknown config key {section} (known: {', '.join(known)})")
    owner = readers[0][1]
    if owner.options(cfg) != owner.options(Config()):
        raise ConfigError(f"the {section} section is read by method {' and '.join(name for name, _ in readers)} "
                          f"only, and method is {cfg.method}")


def _check_architectures(m: ModelConfig) -> int:
    """Registered names and settings the architectures can take; returns the generator's size multiple."""
    if m.n_blocks is not None and m.n_blocks < 0:
        raise ConfigError(f"model.n_blocks must not be negative; got {m.n_blocks}")
    if m.n_layers_d is not None and m.n_layers_d <= 0:
        raise ConfigError(f"model.n_layers_d must be positive; got {m.n_layers_d}")
    try:
        multiple = generator_size_multiple(m)  # a shape-only build: a huge model.ngf allocates nothing
    except NetworkTooLarge as e:
        raise ConfigError(f"model.generator {m.generator} with {_sizes(generator_spec(m))}: {e}, {CEILING}") from None
    except ArchitectureError as e:
        raise ConfigError(f"model.generator: {e}") from None
    try:
        spec = discriminator_spec(m, m.in_channels)
        build_on_meta(spec.build)
    except NetworkTooLarge as e:
        raise ConfigError(f"model.discriminator {m.discriminator} with {_sizes(spec)}: {e}, {CEILING}") from None
    except ArchitectureError as e:
        raise ConfigError(f"model.discriminator: {e}") from None
    return multiple


CEILING = "the most one network may hold (docs/reliability.md, Caps)"


def _sizes(spec: NetworkSpec) -> str:
    """The whole-number settings that size a network, as config keys: ``model.ngf=8, model.n_blocks=9``."""
    return ", ".join(f"model.{k}={v}" for k, v in spec.arguments.items() if type(v) is int)


def _check_metric(e: EvalConfig, method: str, directions: set[str], paired: bool) -> None:
    """``eval.metric`` names a registered metric that this method's generators (translating
    ``directions``) can be scored by; metrics on true translations need them (paired data or
    ``eval.paired_truth``)."""
    direction, name = split_metric(e.metric)
    if name not in metrics.METRICS or direction not in (None, "AtoB", "BtoA"):
        choices = ", ".join(m.name for m in metrics.registered())
        raise ConfigError(f"eval.metric must be one of {choices}, optionally prefixed by AtoB/ or BtoA/; "
                          f"got {e.metric!r}")
    metric = metrics.get(name)  # the held-out metrics, and which way is better, are registered there
    if len(directions) == 1:
        (only,) = directions
        other = "BtoA" if only == "AtoB" else "AtoB"
        if direction == other or metric.needs == "reconstruction":
            arrow = other.replace("to", "→")
            raise ConfigError(f"eval.metric {e.metric} needs a {arrow} generator, which method {method} does not "
                              f"train (it translates {only.replace('to', '→')} only)")
    if metric.needs == "truth" and e.paired_truth is None and not paired:
        raise ConfigError(f"eval.metric {e.metric} needs eval.paired_truth (a folder of true translations) "
                          "or paired data (data.paired)")
