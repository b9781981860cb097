"""Fine-tuning: a new run whose networks start from another run's or an imported model's weights
(``train.init_from``, ``cyclestyle train --init-from``).

The official code continues training with ``--continue_train`` (the same run) and CUT starts a
run from another's weights with ``--pretrained_name``; here a run that starts from other weights
is always a new run: its own output folder, dashboard run, optimisers (Adam's moments describe
the old data) and learning-rate schedule, from step 0. Only the networks' weights are taken.

What ``init_from`` names, and which networks it holds:

- a run folder (its latest checkpoint) or a ``checkpoints/step-N`` folder: every network the run
  trained, discriminators (and CUT's projection heads) included;
- a ``checkpoints/best`` folder, a run folder without checkpoints, a hub folder, ``hf://USER/NAME``
  (``inference/hub.py``): the generators alone;
- one generator file (``.safetensors``, or an official CycleGAN ``.pth``, converted as
  ``interop/official.py`` converts it), or ``pretrained:NAME`` (an official pretrained model,
  ``interop/pretrained.py``): one generator.

Generators go by the direction they translate (their files' metadata, else ``G_A`` is A→B and
``G_B`` B→A), so a CycleGAN run's G_A starts a CUT run's G_A and the other way round. A one-way
source (a lone file, a CUT run, an official model) starts the A→B generator, or the B→A one when
its file says it translates B→A and the method trains that way; the other starts fresh. Every other
network is taken by name (``D_A`` judges domain B in CycleGAN and CUT alike). Shapes must match
the networks the config builds: the model settings are the run's to choose, as for a resume.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch
from torch import nn

from ..config import ConfigError
from ..inference.hub import HUB_PREFIX, hub_files, resolve_hub_id
from ..interop.official import OfficialFormatError, convert
from ..interop.pretrained import download_pretrained
from ..models import NetworkSpec
from ..models.weights import CheckpointError, StateDictError, generator_spec_of, load_weights, read_metadata, \
    read_state_dict, unusable_tensor
from ..run_folder import CHECKPOINTS, DIRECTION_KEY, LATEST, LEGACY_DIRECTIONS, generator_files, resolve_checkpoint
from .checkpoint import misfit

PRETRAINED_PREFIX = "pretrained:"
KEY = "train.init_from"
ARROWS = {"AtoB": "A→B", "BtoA": "B→A"}


@dataclasses.dataclass(frozen=True)
class InitSource:
    """The weights files ``init_from`` names: generators by direction, the other networks of a
    checkpoint by name, or one lone generator file (``where``: the folder or file they are in)."""

    where: Path
    generators: dict[str, Path] = dataclasses.field(default_factory=dict)
    others: dict[str, Path] = dataclasses.field(default_factory=dict)
    lone: Path | None = None

    @functools.cached_property
    def official(self) -> tuple[dict[str, torch.Tensor], NetworkSpec] | CheckpointError:
        """The lone file read as an official generator (``.pth``, loaded without running code) and
        converted, or the one-line error why it is none. Cached: start-up asks twice, for its
        anti-aliasing layout (``source_sampling``) and for its weights (``load_initial_weights``),
        and a generator file is read and converted once."""
        try:
            return convert(read_state_dict(self.lone))
        except (StateDictError, OfficialFormatError) as e:
            return CheckpointError(f"{KEY} {self.lone}: not a .safetensors file nor an official CycleGAN "
                                   f"generator: {e}")


def resolve_init_source(text: str) -> InitSource:
    """The files behind ``text``: a path, ``hf://USER/NAME[@REVISION]`` or ``pretrained:NAME``.
    Offline, the hub and the pretrained models fail with their loaders' one line."""
    if text.startswith(PRETRAINED_PREFIX):
        path, _ = download_pretrained(text[len(PRETRAINED_PREFIX):])
        return InitSource(path, lone=path)
    path = resolve_hub_id(text) if text.startswith(HUB_PREFIX) else Path(text).expanduser()
    if path.is_file():
        return InitSource(path, lone=path)
    if not path.is_dir():
        raise ConfigError(f"{KEY} {text}: no such file or folder")
    if (path / CHECKPOINTS).is_dir():
        path = resolve_checkpoint(path / CHECKPOINTS, LATEST) or path
    generators = generator_files(path) or hub_files(path)
    if not generators:
        raise ConfigError(f"{KEY} {text}: no generator weights there (G_A/G_B.safetensors of a run or checkpoint, "
                          "AtoB/ or BtoA/model.safetensors of a hub folder)")
    taken = set(generators.values())
    others = {p.stem: p for p in sorted(path.glob("*.safetensors")) if p not in taken} \
        if (path / "training_state.pt").is_file() else {}
    return InitSource(path, generators, others)


def source_sampling(source: InitSource) -> dict[str, bool]:
    """The anti-aliasing of the source's A→B (else only) generator, as the model keys that say it
    (``model.no_antialias``, ``model.no_antialias_up``): a run that leaves them to its method builds
    the source's layout, so a CycleGAN run's weights start a CUT run and CUT's start CycleGAN.
    A file written before the keys existed is CycleGAN's layout; an unreadable one says nothing
    (loading it fails later, in one line)."""
    file = source.lone or source.generators.get("AtoB") or next(iter(source.generators.values()), None)
    if file is None:
        return {}
    if file.suffix == ".safetensors":
        try:
            spec = generator_spec_of(file)
        except (CheckpointError, StateDictError):
            return {}
    elif isinstance(source.official, CheckpointError):
        return {}
    else:
        spec = source.official[1]
    return {f"model.{key}": bool(spec.arguments.get(key, True)) for key in ("no_antialias", "no_antialias_up")}


def plan_init(source: InitSource, translators: dict[str, str], names: list[str]) -> dict[str, Path]:
    """Which file starts which of the method's networks (``names``; ``translators``: direction →
    network), by the rules of the module docstring."""
    if source.lone is not None:
        direction = _recorded_direction(source.lone)
        # the generator of the file's direction, else the A→B one, else (a method that trains B→A
        # alone) the only one
        name = translators.get(direction) or translators.get("AtoB") or next(iter(translators.values()))
        return {name: source.lone}
    plan = {translators[d]: f for d, f in source.generators.items() if d in translators}
    generators = set(translators.values())
    plan |= {n: source.others[n] for n in names if n not in generators and n in source.others}
    return plan


def load_initial_weights(networks: dict[str, nn.Module], translators: dict[str, str], text: str,
                         source: InitSource) -> str:
    """Load the source's weights into ``networks`` (all checked before any is loaded); returns the
    line that says what was loaded, from where, and what starts fresh."""
    plan = plan_init(source, translators, list(networks))
    states = {name: _read_state(file, source) for name, file in plan.items()}
    for name, state in states.items():
        problem = misfit(state, networks[name].state_dict(), source="the source")
        if problem:
            raise ConfigError(f"{KEY} {text}: {plan[name].name} does not fit {name} as the config builds it: "
                              f"{problem}; set the model keys the source was trained with")
    for name, state in states.items():
        networks[name].load_state_dict(state)
    return _summary(plan, translators, networks, source)


def _read_state(file: Path, source: InitSource) -> dict[str, torch.Tensor]:
    """A weights file's tensors; the source's lone official ``.pth`` generator as converted
    (``InitSource.official``); finite floating point numbers only."""
    if file.suffix == ".safetensors":
        state = load_weights(file)
    elif isinstance(source.official, CheckpointError):
        raise source.official
    else:
        state = source.official[0]
    counters = {k: torch.long for k in state if k.endswith("num_batches_tracked")}  # batch norm's, integers
    problem = unusable_tensor(state, counters)
    if problem:
        raise CheckpointError(f"{KEY} {file}: {problem}")
    return state


def _recorded_direction(file: Path) -> str | None:
    """The direction a generator file says it translates (else its legacy name's)."""
    if file.suffix != ".safetensors":
        return None
    return read_metadata(file).get(DIRECTION_KEY) or LEGACY_DIRECTIONS.get(file.stem)


def _summary(plan: dict[str, Path], translators: dict[str, str], networks: dict[str, nn.Module],
             source: InitSource) -> str:
    """``init: G_A (A→B), D_A from SOURCE; fresh: G_B, D_B; not used: F``."""
    direction_of = {name: d for d, name in translators.items()}
    loaded = [f"{n} ({ARROWS[direction_of[n]]})" if n in direction_of else n for n in networks if n in plan]
    fresh = [n for n in networks if n not in plan]
    used = set(plan.values())
    unused = [f.stem if f.parent == source.where else str(f.relative_to(source.where))
              for f in (*source.generators.values(), *source.others.values()) if f not in used]
    line = f"init: {', '.join(loaded)} from {source.where}; fresh: {', '.join(fresh) or 'none'}"
    return line + (f"; not used: {', '.join(unused)}" if unused else "")
