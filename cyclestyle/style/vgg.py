"""The VGG feature network of the perceptual losses: VGG-19 for Gatys, VGG-16 for the fast
feed-forward networks, with the same weights handling for both.

* [SZ15] K. Simonyan, A. Zisserman, "Very deep convolutional networks for large-scale image
  recognition", ICLR 2015: configurations "D" (VGG-16) and "E" (VGG-19).

Layers are named as in the style-transfer papers (conv1_1, relu1_1, pool1, …) and indexed as
torchvision's ``vggNN().features``, so a torchvision state dict loads as it is. Images are N×C×H×W
in [0, 1]; ImageNet normalisation happens inside. Weights come from torchvision's ImageNet file in
the torch hub cache (never downloaded: a missing file is one line saying where it goes), from a
state dict file, or are ``random``: a fixed He-initialised network that keeps tests and offline
demos running but does not make real style transfers (every caller says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..data import DataError
from ..models.weights import StateDictError, hub_hash_mismatch, read_state_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_VGG_SEED = 0  # ``random`` weights are always the same network, whatever the run's seed
POOLINGS = ("max", "avg")


@dataclass(frozen=True)
class VGGArchitecture:
    """One VGG configuration [SZ15, table 1] and torchvision's ImageNet weights file for it."""

    name: str  # "vgg16", "vgg19"
    convs: tuple[int, ...]  # 3×3 convolutions per block
    url: str  # torchvision's IMAGENET1K_V1 weights
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)  # channels of the five blocks

    @property
    def title(self) -> str:
        return self.name.upper()

    @property
    def weights_file(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def layers(self) -> tuple[str, ...]:
        """Layer i of this tuple is layer i of torchvision's ``features``: conv1_1, relu1_1, …"""
        names = []
        for block, convs in enumerate(self.convs, 1):
            for conv in range(1, convs + 1):
                names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            names.append(f"pool{block}")
        return tuple(names)

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.layers)}


ARCHITECTURES = {
    "vgg16": VGGArchitecture("vgg16", (2, 2, 3, 3, 3), "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "vgg19": VGGArchitecture("vgg19", (2, 2, 4, 4, 4), "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
}


class VGGWeightsError(DataError):
    """VGG weights that are missing or unreadable; the message says what to do, in one line."""


class VGGFeatures(nn.Module):
    """A VGG's convolutional layers up to the deepest one needed, ImageNet normalisation included.

    ``source`` says where the weights came from: "imagenet", a file path, or "random".
    """

    def __init__(self, stack: nn.Sequential, source: str, pooling: str, architecture: str = "vgg19"):
        super().__init__()
        self.stack = stack
        self.source = source
        self.pooling = pooling
        self.architecture = ARCHITECTURES[architecture]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @property
    def is_random(self) -> bool:
        return self.source == "random"

    def forward(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The activations of ``layers`` for an N×3×H×W (or N×1×H×W luminance) image in [0, 1]."""
        index, names = self.architecture.index, self.architecture.layers
        unknown = [name for name in layers if name not in index]
        if unknown:
            raise ValueError(f"{self.architecture.title} has no layer {unknown[0]}")
        wanted = {index[name]: name for name in layers}
        last = max(wanted)
        if last >= len(self.stack):
            raise ValueError(f"this VGGFeatures stops at {names[len(self.stack) - 1]}, {names[last]} was asked for")
        if image.shape[1] == 1:  # a luminance image is grey to VGG
            image = image.expand(-1, 3, -1, -1)
        x = (image - self.mean) / self.std
        out = {}
        for i in range(last + 1):  # nothing past the deepest layer asked for is computed
            x = self.stack[i](x)
            if i in wanted:
                out[wanted[i]] = x
        return out


def _stack(arch: VGGArchitecture, depth: int, pooling: str) -> nn.Sequential:
    """The first ``depth`` layers of torchvision's ``features``, with the same indices (so its
    state dict keys are theirs without the "features." prefix)."""
    layers: list[nn.Module] = []
    channels = 3
    for name in arch.layers[:depth]:
        if name.startswith("conv"):
            width = arch.widths[int(name[4]) - 1]
            layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=1))
            channels = width
        elif name.startswith("relu"):
            layers.append(nn.ReLU())  # not in place: a requested conv output must survive it
        else:
            layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
    return nn.Sequential(*layers)


def load_vgg(
    architecture: str,
    weights: str | Path | None,
    layers: Sequence[str],
    pooling: str = "max",
    device: str | torch.device = "cpu",
    option: str = "--vgg-weights",
) -> VGGFeatures:
    """``architecture``'s features up to the deepest of ``layers``, frozen, on ``device``.

    ``weights``: None or "imagenet" for torchvision's ImageNet weights, read from the torch hub
    cache only (a missing file is a ``VGGWeightsError`` saying where to put it); a path to a state
    dict (.pth/.pt via ``torch.load(weights_only=True)``, or .safetensors) of the whole network or
    of its ``features`` part; or "random". ``option`` is how the caller's user names the weights
    (``--vgg-weights``, ``style.vgg_weights``), for the messages.
    """
    arch = ARCHITECTURES[architecture]
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    unknown = [name for name in layers if name not in arch.index]
    if unknown:
        raise ValueError(f"{arch.title} has no layer {unknown[0]!r}")
    stack = _stack(arch, max(arch.index[name] for name in layers) + 1, pooling)
    if weights is not None and str(weights) == "random":
        _random_init(stack)
        source = "random"
    else:
        imagenet = weights is None or str(weights) == "imagenet"
        path = cached_imagenet_weights(arch, option) if imagenet else Path(weights).expanduser()
        _load_features(arch, stack, _read_state_dict(arch, path, option), path)
        source = "imagenet" if imagenet else str(path)
    return VGGFeatures(stack, source, pooling, architecture).to(device).eval().requires_grad_(False)


def imagenet_weights_path(architecture: str = "vgg19") -> Path:
    """Where torchvision keeps (and ``load_vgg`` looks for) the ImageNet weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ARCHITECTURES[architecture].weights_file


def cached_imagenet_weights(arch: VGGArchitecture, option: str = "--vgg-weights") -> Path:
    path = imagenet_weights_path(arch.name)
    if not path.is_file():
        raise VGGWeightsError(
            f"{arch.title} ImageNet weights not found and not downloaded: put torchvision's {arch.weights_file} "
            f"(from {arch.url}) at {path}, or pass {_set(option, 'PATH')} (or {_set(option, 'random')} for a demo)")
    actual = hub_hash_mismatch(path)
    if actual is not None:
        raise VGGWeightsError(
            f"{path} is not torchvision's {arch.weights_file}: its SHA-256 begins {actual}, not as its name says "
            f"(a truncated or replaced download); download it again from {arch.url}")
    return path


def _set(option: str, value: str) -> str:
    """How the user gives ``value``: ``--vgg-weights PATH`` or ``--set style.vgg_weights=PATH``."""
    return f"{option} {value}" if option.startswith("--") else f"--set {option}={value}"


def _read_state_dict(arch: VGGArchitecture, path: Path, option: str) -> dict[str, Tensor]:
    """The state dict at ``path`` (``models.weights.read_state_dict``: nothing executed)."""
    if not path.is_file():
        raise VGGWeightsError(f"{arch.title} weights file {path} not found ({option})")
    try:
        return read_state_dict(path)
    except StateDictError as e:
        raise VGGWeightsError(f"cannot read {arch.title} weights {path}: {e}") from None


def _load_features(arch: VGGArchitecture, stack: nn.Sequential, state: dict[str, Tensor], path: Path) -> None:
    """Load the first layers of a whole-model ("features.N.weight") or features-only ("N.weight")
    state dict; classifier weights and deeper layers are ignored."""
    features = {k.removeprefix("module.").removeprefix("features."): v for k, v in state.items()}
    wanted = stack.state_dict()
    missing = [k for k in wanted if k not in features]
    if missing:
        raise VGGWeightsError(f"{arch.title} weights {path} lack {missing[0]} (of features.{missing[0]}): "
                              f"not a torchvision {arch.name} state dict")
    for key, tensor in wanted.items():
        if features[key].shape != tensor.shape:
            raise VGGWeightsError(f"{arch.title} weights {path}: features.{key} has shape "
                                  f"{tuple(features[key].shape)}, {arch.name} has {tuple(tensor.shape)}")
    stack.load_state_dict({k: features[k].float() for k in wanted})


def _random_init(stack: nn.Sequential) -> None:
    """He initialisation (fan-in), so activations neither vanish nor explode with depth, with
    a gain of √(out/in) where a block widens: the energy per channel then grows with the width,
    and every style layer's term (∝ energy² / width², see ``losses.gram_matrix``) is of the same
    order, as with trained weights. Plain He init leaves relu5_1's term 64× smaller than
    relu1_1's, a network that sees fine texture only."""
    generator = torch.Generator().manual_seed(RANDOM_VGG_SEED)
    for layer in stack:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if layer.in_channels > 3:
                layer.weight.data.mul_(math.sqrt(layer.out_channels / layer.in_channels))
            nn.init.zeros_(layer.bias)
