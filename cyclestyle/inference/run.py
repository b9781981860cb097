"""Opening a trained translator, whatever the user points at: the inference layer's front door.

``open_run(path)`` takes a run folder (its final generators, or its latest checkpoint while it
is still training), a ``checkpoints/step-N`` or ``checkpoints/best`` folder, a single
generator ``.safetensors`` file, a model hub folder or a ``hf://USER/NAME`` id (``hub.py``), and
returns a ``TrainedRun``: the generator file of each direction and the run's configuration, read once. ``generator(direction, device)`` rebuilds a
network from its file (any registered architecture, see ``cyclestyle.models``) and
``translate(...)`` runs it on a tensor or a PIL image of any size, full frame or tiled. Every
command that uses a trained translator (``translate``, ``evaluate``, ``compare``, the demo)
opens it here, as diffusers' pipelines make the run folder the unit (``from_pretrained``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..config import Config, ConfigError, read_config
from ..devices import default_device
from ..models import NetworkSpec
from ..models.weights import CheckpointError, generator_spec_of, load_generator, read_step
from ..run_folder import CHECKPOINTS, LATEST, find_config, generator_files, missing_generators, resolve_checkpoint
from .hub import HUB_PREFIX, hub_files, resolve_hub_id
from .tiling import tiled_translate
from .translate import translate_image, translate_tensor


@dataclass(frozen=True)
class Direction:
    """One way of translating: the domains it maps between."""

    name: str  # "AtoB" or "BtoA"
    source: str  # domain of the inputs: "A" or "B"
    target: str  # domain of the outputs


DIRECTIONS = {"AtoB": Direction("AtoB", "A", "B"), "BtoA": Direction("BtoA", "B", "A")}


def direction(name: str) -> Direction:
    try:
        return DIRECTIONS[name]
    except KeyError:
        raise ValueError(f"direction must be AtoB or BtoA, not {name!r}") from None


@dataclass(frozen=True)
class Translator:
    """One direction's generator file and what rebuilds it (architecture, channels), with the
    step it was saved at: read from the file's header once, when the run is opened."""

    file: Path
    spec: NetworkSpec
    step: int | None

    @classmethod
    def read(cls, file: Path) -> Translator:
        return cls(file, generator_spec_of(file), read_step(file))


@dataclass
class TrainedRun:
    """A trained translator on disk, read when opened: each available direction's generator
    (``translators``) and the run's ``config.yaml`` when one was found (None for a lone file).
    Only ``generator`` and ``translate`` read weights; nothing else opens a file again."""

    path: Path
    translators: dict[str, Translator]
    config: Config | None = None
    # The generator file of each direction the run trains that is not there (a CycleGAN run
    # without G_B), by direction: asked for, it is named (``run_folder.missing_generators``).
    missing: dict[str, Path] = field(default_factory=dict)
    _loaded: dict[tuple[str, str], nn.Module] = field(default_factory=dict, repr=False)

    @property
    def files(self) -> dict[str, Path]:
        """The generator file of each direction."""
        return {name: t.file for name, t in self.translators.items()}

    @property
    def step(self) -> int | None:
        """The training step the generators were saved at."""
        return next(iter(self.translators.values())).step

    def translator(self, name: str) -> Translator:
        """Direction ``name``'s generator, or a ``CheckpointError`` saying what is there."""
        direction(name)
        if name in self.missing:
            arrow = name.replace("to", "→")
            raise CheckpointError(f"--weights {self.path}: the {arrow} generator of this run, {self.missing[name]}, "
                                  "is missing")
        if name not in self.translators:
            raise CheckpointError(f"--weights {self.path}: no generator for {name}, only for "
                                  f"{', '.join(self.translators)}")
        return self.translators[name]

    def file(self, name: str) -> Path:
        """The generator file of direction ``name``."""
        return self.translator(name).file

    def generator(self, name: str = "AtoB", device: str | torch.device | None = None) -> nn.Module:
        """The generator of direction ``name`` on ``device`` (default: cuda when available), in
        eval mode; built once per direction and device."""
        device = default_device(device)
        key = (name, str(device))
        if key not in self._loaded:
            translator = self.translator(name)
            self._loaded[key] = load_generator(translator.file, device, translator.spec)
        return self._loaded[key]

    def in_channels(self, name: str = "AtoB") -> int:
        """Channels of the images direction ``name`` takes (1 or 3)."""
        return self.translator(name).spec.in_channels

    def out_channels(self, name: str = "AtoB") -> int:
        """Channels of the images direction ``name`` makes."""
        return self.translator(name).spec.out_channels

    def translate(self, image: Image.Image | torch.Tensor, name: str = "AtoB", *, tile: int | None = None,
                  overlap: int | None = None, device: str | torch.device | None = None) -> Image.Image | torch.Tensor:
        """Translate a PIL image (any size and mode, alpha kept; tiled automatically when large) or
        an N×C×H×W tensor in [-1, 1] (full frame, or in ``tile``-pixel tiles equal to it)."""
        generator = self.generator(name, device)
        if isinstance(image, Image.Image):
            return translate_image(generator, image, tile=tile, overlap=overlap)
        x = image.to(next(generator.parameters()).device)
        with torch.inference_mode():
            if tile:
                return tiled_translate(generator, x, tile, overlap)
            return translate_tensor(generator, x)


def open_run(path: str | Path) -> TrainedRun:
    """Open what ``path`` names: a run folder, a checkpoint folder, a generator file, a hub
    folder, or ``hf://USER/NAME[@REVISION]`` (fetched into the hub cache, or found there offline)."""
    if str(path).startswith(HUB_PREFIX):
        path = resolve_hub_id(str(path))
    path = Path(path).expanduser()
    if path.is_file():
        # A lone file is the translator the user chose, whichever direction is asked of it.
        translator = Translator.read(path)
        return TrainedRun(path, {"AtoB": translator, "BtoA": translator}, _run_config(path.parent))
    if not path.is_dir():
        raise CheckpointError(f"--weights {path}: no such file or folder")
    folder, files = path, generator_files(path)
    if not files and not hub_files(path):  # a run still training: its latest checkpoint
        latest = resolve_checkpoint(path / CHECKPOINTS, LATEST)
        folder = latest if latest is not None else path
        files = generator_files(folder)
    # A run or checkpoint folder's generators, or else a hub folder's (which trains no more than it holds).
    missing = missing_generators(folder, files) if files else {}
    files = files or hub_files(folder)
    if not files:
        raise CheckpointError(f"--weights {path}: no G_A.safetensors or G_B.safetensors there (nor AtoB/ or "
                              "BtoA/model.safetensors of a hub folder), nor in a checkpoints/ folder under it")
    return TrainedRun(path, {name: Translator.read(file) for name, file in files.items()}, _run_config(folder),
                      missing=missing)


def _run_config(folder: Path) -> Config | None:
    """The run's resolved config: beside the weights, or in the run folder above a checkpoint."""
    path = find_config(folder)
    if path is None:
        return None
    try:
        return read_config(path)
    except ConfigError:
        return None
