"""Fast feed-forward style transfer: one network per style, trained once on many photos, then
one forward pass per image.

* [J16] J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual losses for real-time style transfer and
  super-resolution", ECCV 2016, §3: an image transformation network (``models/johnson.py``)
  trained on the perceptual losses of a frozen VGG-16: content at relu2_2, style Gram matrices at
  relu1_2, relu2_2, relu3_3 and relu4_3, and total variation; COCO photos at 256×256, batch 4,
  Adam 1e-3, 40k iterations (about two epochs).
* [U16] D. Ulyanov, A. Vedaldi, V. Lempitsky, "Instance normalization", arXiv:1607.08022.

The losses are those of pytorch/examples' fast_neural_style, whose weights are the defaults
(content 1e5, style 1e10; ``StyleOptions``): means of squared differences, Gram matrices
divided by C·H·W (``style/losses.py``), VGG fed [0, 1] images with ImageNet normalisation.

One domain: the content photos are domain A; the style is the images of the config's ``style:``
section, whose Gram matrices are computed once, in ``prepare``. The VGG-16 loss network is frozen,
on the device, not handed to accelerate (no data parallelism for a network that learns nothing)
and not in the checkpoints: it is rebuilt from its weights on resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from ...config import Config, ConfigError
from ...data import DataError, image_to_tensor, load_image, verify_image
from ...models import NetworkSpec, generator_spec
from ...style.gatys import resize_long_side, style_targets
from ...style.losses import content_loss, style_loss, tv_loss
from ...style.vgg import ARCHITECTURES, VGGFeatures, VGGWeightsError, cached_imagenet_weights, load_vgg
from .base import METHODS, Group, Method

LOSS_NETWORK = "vgg16"  # [J16] §3.1
MIN_STYLE_SIDE = 16  # VGG-16 pools three times before relu4_3


@dataclass(frozen=True)
class StyleOptions:
    """The ``style:`` section: the perceptual losses of [J16] on a frozen VGG-16. The weights are
    pytorch/examples' fast_neural_style ones, for its loss scale: means of squared differences,
    Gram matrices divided by C·H·W, VGG fed [0, 1] images with ImageNet normalisation."""

    images: list[str] = field(default_factory=list)  # style image files; several: their mean Gram matrices
    image_size: int = 256  # long side the style images are resized to (fast-neural-style's style_image_size)
    content_weight: float = 1e5
    style_weight: float = 1e10
    # Total variation (mean squared neighbour difference on [0, 1] pixels). pytorch/examples uses
    # none; Johnson et al. cross-validated 1e-6 … 1e-4 per style on their own loss scale.
    tv_weight: float = 0.0
    vgg_weights: str = "imagenet"  # imagenet (torchvision's file in the torch hub cache) | random | PATH
    content_layer: str = "relu2_2"
    style_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])


# --------------------------------------------------------------------------------------------
# The objective, as pure functions


def perceptual_losses(vgg: VGGFeatures, stylized: Tensor, content: Tensor, style_grams: dict[str, Tensor],
                      s: StyleOptions) -> dict[str, Tensor]:
    """The weighted terms of [J16] eq. 5 for a batch: ``stylized`` (the network's output) against
    the ``content`` photos it was made from, and against the style's Gram matrices; both images
    N×3×H×W in [-1, 1]. Gram matrices are computed in float32 whatever the autocast."""
    y, x = (stylized + 1) / 2, (content + 1) / 2  # VGGFeatures takes [0, 1]
    features = vgg(y, (s.content_layer, *s.style_layers))
    with torch.no_grad():
        target = vgg(x, (s.content_layer,))[s.content_layer]
    style_features = {name: features[name].float() for name in s.style_layers}
    return {
        "content": s.content_weight * content_loss(features[s.content_layer].float(), target.float()),
        "style": s.style_weight * style_loss(style_features, style_grams, {name: 1.0 for name in s.style_layers}),
        "tv": s.tv_weight * tv_loss(y.float()),
    }


def load_style_images(s: StyleOptions) -> list[Tensor]:
    """The style images as 1×3×H×W in [0, 1], long side ``image_size``."""
    return [resize_long_side((image_to_tensor(load_image(Path(path).expanduser())).unsqueeze(0) + 1) / 2,
                             s.image_size) for path in s.images]


def style_grams(vgg: VGGFeatures, s: StyleOptions) -> dict[str, Tensor]:
    """The target Gram matrix per style layer: with several style images, their mean (each image
    weighing the same, as ``cyclestyle gatys --style a b``)."""
    device = vgg.mean.device
    return style_targets(vgg, [image.to(device) for image in load_style_images(s)], None, s.style_layers)


# --------------------------------------------------------------------------------------------
# The method


@METHODS.register("fast_style")
class FastStyle(Method):
    """The style network (``G_A``) and its Adam, and the frozen loss network with the style's
    Gram matrices."""

    description: ClassVar[str] = "fast feed-forward style transfer (Johnson et al. 2016): one network per style"
    translators: ClassVar[dict[str, str]] = {"AtoB": "G_A"}
    groups: ClassVar[tuple[Group, ...]] = (Group("G", "style network", ("G_A",)),)
    domains: ClassVar[tuple[str, ...]] = ("A",)
    section: ClassVar[str] = "style"
    options_type: ClassVar[type] = StyleOptions

    @classmethod
    def check_options(cls, cfg: Config, s: StyleOptions) -> None:
        m = cfg.model
        if not s.images:
            raise ConfigError("style.images is empty: name the style image(s), e.g. cyclestyle style-train --style IMG")
        for key, value in {"style.content_weight": s.content_weight, "style.style_weight": s.style_weight,
                           "style.tv_weight": s.tv_weight}.items():
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"{key} must be a finite number >= 0; got {value}")
        if s.image_size < MIN_STYLE_SIDE:
            raise ConfigError(f"style.image_size must be at least {MIN_STYLE_SIDE}; got {s.image_size}")
        index = ARCHITECTURES[LOSS_NETWORK].index
        relus = ", ".join(name for name in index if name.startswith("relu"))
        for key, layer in [("style.content_layer", s.content_layer), *(("style.style_layers", x) for x in s.style_layers)]:
            if layer not in index:
                raise ConfigError(f"{key}: VGG-16 has no layer {layer!r} (its layers: {relus} …)")
        if not s.style_layers:
            raise ConfigError("style.style_layers is empty")
        if (m.in_channels, m.out_channels) != (3, 3):
            raise ConfigError("method fast_style translates colour photos: model.in_channels and "
                              "model.out_channels must be 3")

    @classmethod
    def check_files(cls, cfg: Config) -> None:
        """Each style image exists and opens, and the VGG-16 weights are there: one line naming the
        file otherwise, before any data is read."""
        s = cls.options(cfg)
        for path in s.images:
            if not Path(path).expanduser().is_file():
                raise ConfigError(f"style.images: {path} does not exist")
            try:
                verify_image(Path(path).expanduser())
            except DataError as e:
                raise ConfigError(f"style.images: {e}") from None
        if s.vgg_weights == "imagenet":
            try:
                cached_imagenet_weights(ARCHITECTURES[LOSS_NETWORK], "style.vgg_weights")
            except VGGWeightsError as e:
                raise ConfigError(str(e)) from None
        elif s.vgg_weights != "random" and not Path(s.vgg_weights).expanduser().is_file():
            raise ConfigError(f"style.vgg_weights {s.vgg_weights} does not exist (imagenet, random or a weights file)")

    @classmethod
    def network_specs(cls, cfg: Config) -> dict[str, NetworkSpec]:
        """G_A, the style network (photos → stylised photos)."""
        return {"G_A": generator_spec(cfg.model)}

    def __init__(self, cfg: Config, accelerator: Accelerator, networks: dict[str, nn.Module], rank: int):
        """The style network and its Adam [J16 §4.1]; the frozen VGG-16, and the style's Gram
        matrices computed once."""
        super().__init__(cfg, accelerator, networks, rank)
        s: StyleOptions = self.options(cfg)
        self.style = s
        self.vgg = load_vgg(LOSS_NETWORK, s.vgg_weights, (s.content_layer, *s.style_layers), device=accelerator.device,
                            option="style.vgg_weights")
        if self.vgg.is_random:
            accelerator.print("note: style.vgg_weights random: VGG-16 has random weights, so this network will "
                              "not learn a real style transfer (for tests and offline demos)")
        self.grams = style_grams(self.vgg, s)

    def step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        """One update of the style network on a batch of photos; the weighted terms by name."""
        G, content = self.updates["G"], batch["A"]
        G.zero_grad()
        with self.accelerator.autocast():
            terms = perceptual_losses(self.vgg, self.networks["G_A"](content), content, self.grams, self.style)
        G.backward(terms, step)
        G.step()
        return terms
