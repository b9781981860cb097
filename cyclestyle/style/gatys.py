"""Neural style transfer by optimisation (Gatys et al.), the baseline CycleGAN is compared with.

One image is optimised, pixel by pixel, until its VGG19 features look like the content image's
and its feature correlations (Gram matrices) look like the style images':

* [G16]  L. Gatys, A. Ecker, M. Bethge, "Image style transfer using convolutional neural
  networks", CVPR 2016: content at relu4_2, style at relu1_1 … relu5_1, L-BFGS.
* [G16c] L. Gatys, M. Bethge, A. Hertzmann, E. Shechtman, "Preserving color in neural artistic
  style transfer", arXiv:1606.05897: luminance-only transfer (``preserve_color``).
* [G17]  L. Gatys, A. Ecker, M. Bethge, A. Hertzmann, E. Shechtman, "Controlling perceptual
  factors in neural style transfer", CVPR 2017: coarse-to-fine optimisation for large outputs.
* [MV15] A. Mahendran, A. Vedaldi, "Understanding deep image representations by inverting
  them", CVPR 2015: the total-variation regulariser.

Conventions. Images are N×C×H×W float tensors in [0, 1] (C = 3, or 1 for a luminance image;
uint8 tensors are accepted and divided by 255); VGG sees them normalised with the ImageNet
mean and std, as torchvision's weights expect. The losses are means rather than [G16]'s sums,
so that their size does not depend on the image's: content = mean (F − P)², style = Σ_l w_l ·
mean (G_l − A_l)² with Gram matrices divided by C·H·W, as J. Johnson's neural-style (the
reference Torch implementation) computes them; with these, on [0, 1] pixels and torchvision's
weights, the usual weights (content 1, style 1e6, every style layer 1) balance the two.
Reported losses are the weighted terms, so they add up to the total.

The VGG feature network (``vgg.py``), the losses (``losses.py``) and the colour functions
(``color.py``) are shared with the fast feed-forward networks.
Reading order: configuration, sizes and scales, the optimisation (``stylize``), files (``stylize_files``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from ..data import (
    IMAGE_EXTENSIONS,
    DataError,
    image_to_tensor,
    list_images,
    load_image,
    save_image,
    tensor_to_image,
    verify_image,
)
from ..devices import default_device
from ..files import check_output
from .color import LUMA, combine_luminance, luminance, match_luminance, rgb_to_yiq  # noqa: F401 (re-exported)
from .losses import content_loss, gram_matrix, style_loss, tv_loss  # noqa: F401 (re-exported)
from .vgg import (  # noqa: F401 (re-exported: Gatys's API as it was)
    ARCHITECTURES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    POOLINGS,
    RANDOM_VGG_SEED,
    VGGFeatures,
    VGGWeightsError,
    load_vgg,
)
from .vgg import imagenet_weights_path as vgg_weights_path

# --------------------------------------------------------------------------------------------
# Configuration

# Layer i of this tuple is layer i of torchvision's ``vgg19().features``: conv1_1, relu1_1, …
VGG19_LAYERS: tuple[str, ...] = ARCHITECTURES["vgg19"].layers
LAYER_INDEX: dict[str, int] = ARCHITECTURES["vgg19"].index

CONTENT_LAYER = "relu4_2"  # [G16] section 2
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # [G16] section 2

IMAGENET_WEIGHTS_URL = ARCHITECTURES["vgg19"].url  # VGG19_Weights.IMAGENET1K_V1
IMAGENET_WEIGHTS_FILE = ARCHITECTURES["vgg19"].weights_file

# The smallest side VGG can take up to relu5_1: four 2×2 poolings leave it one pixel.
MIN_SIDE = 16

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")


@dataclass(frozen=True)
class GatysConfig:
    """Every setting of one style transfer; the defaults are the command line's."""

    size: int = 512  # long side of the output, in pixels
    steps: int = 500  # loss evaluations at the final scale (one forward and backward pass each)
    optimizer: str = "lbfgs"  # [G16]; "adam" is the first-order alternative
    content_weight: float = 1.0
    style_weight: float = 1e6
    tv_weight: float = 0.0
    content_layer: str = CONTENT_LAYER
    # (layer, weight) pairs; equal weights as [G16] (normalising them to 1/5 only rescales style_weight).
    style_layer_weights: tuple[tuple[str, float], ...] = tuple((name, 1.0) for name in STYLE_LAYERS)
    # [G16] prefers average pooling ("slightly more appealing results"); max is the network as trained.
    pooling: str = "max"
    init: str = "content"  # content | noise (white noise, as [G16]) | style (stretched to the output)
    multiscale: bool = True  # coarse to fine [G17]
    min_size: int = 128  # long side of the coarsest scale, about (scales grow by scale_factor)
    scale_factor: float = math.sqrt(2.0)
    # Steps at each coarser scale, as a fraction of the next finer one's. The coarse scales only
    # settle the large-scale arrangement, which the finer ones keep; with 0.35 (and half the pixels
    # per scale) all of them together cost a fifth of the final scale. Measured to the same loss
    # (scripts/bench_gatys.py-style runs, random VGG19): 0.35 was as fast as 0.5 at 128 px and 10 %
    # faster at 256 px over five scales; 0.25 left the coarse result too rough (25 % slower).
    coarse_steps: float = 0.35
    preserve_color: bool = False  # luminance-only transfer [G16c]
    seed: int = 0
    adam_lr: float = 0.02  # on [0, 1] pixels: about 5 grey levels per step
    lbfgs_history: int = 100  # torch's default and neural-style's; 2×100 image-sized vectors
    style_scale: float = 1.0  # style images are resized to style_scale × the current long side

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        need(self.size >= MIN_SIDE, f"size must be at least {MIN_SIDE} pixels (VGG19 pools four times), got {self.size}")
        need(self.steps >= 1, f"steps must be at least 1, got {self.steps}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        need(self.pooling in POOLINGS, f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        need(self.init in INITS, f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        for name, value in (("content_weight", self.content_weight), ("style_weight", self.style_weight),
                            ("tv_weight", self.tv_weight)):
            need(value >= 0 and math.isfinite(value), f"{name} must be a finite number >= 0, got {value}")
        for layer, weight in self.style_layer_weights:
            need(layer in LAYER_INDEX, f"unknown VGG19 layer {layer!r} in style_layer_weights")
            need(weight >= 0, f"style layer weight of {layer} must be >= 0, got {weight}")
        need(any(weight > 0 for _, weight in self.style_layer_weights), "style_layer_weights are all zero")
        need(self.content_layer in LAYER_INDEX, f"unknown VGG19 layer {self.content_layer!r}")
        need(self.min_size >= MIN_SIDE, f"min_size must be at least {MIN_SIDE}, got {self.min_size}")
        need(self.scale_factor > 1, f"scale_factor must be > 1, got {self.scale_factor}")
        need(self.coarse_steps > 0, f"coarse_steps must be > 0, got {self.coarse_steps}")
        need(self.adam_lr > 0 and self.lbfgs_history >= 1 and self.style_scale > 0,
             "adam_lr, lbfgs_history and style_scale must be positive")

    @property
    def layers(self) -> tuple[str, ...]:
        """The VGG layers this configuration reads."""
        return (self.content_layer, *(name for name, weight in self.style_layer_weights if weight))


# --------------------------------------------------------------------------------------------
# VGG19 features (``vgg.py``, shared with the fast feed-forward networks)


def load_vgg19(
    weights: str | Path | None = None,
    pooling: str = "max",
    device: str | torch.device = "cpu",
    layers: Sequence[str] = (CONTENT_LAYER, *STYLE_LAYERS),
) -> VGGFeatures:
    """VGG19 features up to the deepest of ``layers``, frozen, on ``device`` (``vgg.load_vgg``:
    None for the ImageNet weights of the torch hub cache, never downloaded; a state dict file;
    or "random", which keeps tests and offline demos running but is not a real style transfer)."""
    return load_vgg("vgg19", weights, layers, pooling, device)


def imagenet_weights_path() -> Path:
    """Where torchvision keeps (and ``load_vgg19`` looks for) the ImageNet VGG19 weights."""
    return vgg_weights_path("vgg19")


# --------------------------------------------------------------------------------------------
# Losses (``losses.py``, shared with the fast feed-forward networks) and their targets


@dataclass
class Targets:
    """What one scale's image is pulled towards: content activations and style Gram matrices."""

    content: Tensor
    style: dict[str, Tensor]


def objective(vgg: VGGFeatures, image: Tensor, targets: Targets, cfg: GatysConfig) -> dict[str, Tensor]:
    """The weighted terms of the total loss [G16 eq. 7, plus TV], and their sum as "total"."""
    layer_weights = dict(cfg.style_layer_weights)
    features = vgg(image, cfg.layers)
    zero = image.new_zeros(())
    losses = {
        "content": cfg.content_weight * content_loss(features[cfg.content_layer], targets.content)
        if cfg.content_weight else zero,
        "style": cfg.style_weight * style_loss(features, targets.style, layer_weights) if cfg.style_weight else zero,
        "tv": cfg.tv_weight * tv_loss(image) if cfg.tv_weight else zero,
    }
    losses["total"] = losses["content"] + losses["style"] + losses["tv"]
    return losses


# --------------------------------------------------------------------------------------------
# Colour: luminance-only transfer [G16c]

# ``color.py``, shared with ``cyclestyle translate --preserve-color``.


# --------------------------------------------------------------------------------------------
# Sizes and scales


def output_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) with the aspect ratio of height×width and a long side of ``size``."""
    if width >= height:
        return max(1, round(size * height / width)), size
    return size, max(1, round(size * width / height))


def scale_sizes(height: int, width: int, cfg: GatysConfig) -> list[tuple[int, int]]:
    """The (H, W) of each scale, coarse to fine, ending at the output size [G17 section 5].

    Long sides are size / factor^k, k = K … 0, with K chosen so the coarsest is closest to
    ``min_size``; scales whose short side would be under VGG's minimum are dropped.
    """
    final = output_size(height, width, cfg.size)
    if min(final) < MIN_SIDE:
        raise DataError(f"a {width}×{height} image at --size {cfg.size} would be {final[1]}×{final[0]}: "
                        f"VGG19 needs at least {MIN_SIDE} pixels on each side (raise --size)")
    if not cfg.multiscale or cfg.size <= cfg.min_size:
        return [final]
    n = max(0, round(math.log(cfg.size / cfg.min_size) / math.log(cfg.scale_factor)))
    sizes = [output_size(height, width, round(cfg.size / cfg.scale_factor**k)) for k in range(n, 0, -1)]
    return [s for s in sizes if min(s) >= MIN_SIDE and s != final] + [final]


def scale_steps(n_scales: int, cfg: GatysConfig) -> list[int]:
    """Evaluations per scale, coarse to fine: ``steps`` at the last, × ``coarse_steps`` per scale before."""
    return [max(1, round(cfg.steps * cfg.coarse_steps**k)) for k in range(n_scales - 1, -1, -1)]


def resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic resize to (H, W), antialiased when shrinking, kept in [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def resize_long_side(image: Tensor, long_side: float) -> Tensor:
    """Resize keeping the aspect ratio, long side ``long_side`` (the short side at least MIN_SIDE)."""
    h, w = image.shape[-2:]
    scale = max(long_side / max(h, w), MIN_SIDE / min(h, w))
    return resize(image, (max(MIN_SIDE, round(h * scale)), max(MIN_SIDE, round(w * scale))))


# --------------------------------------------------------------------------------------------
# Style targets


StyleEntry = Tensor | Sequence[Tensor]  # one image, or a collection whose Gram matrices are averaged


def style_targets(
    vgg: VGGFeatures,
    style_images: Sequence[StyleEntry],
    weights: Sequence[float] | None = None,
    layers: Sequence[str] = STYLE_LAYERS,
) -> dict[str, Tensor]:
    """Gram matrix targets per layer: the weighted mean over entries of each entry's Gram matrix,
    an entry being an image or a collection (the mean of its images' Gram matrices, the "style
    of a domain"). Images are used at the size they are given; weights are normalised to sum 1.
    """
    weights = normalise_weights(weights, len(style_images))
    targets = {name: 0.0 for name in layers}
    with torch.no_grad():
        for entry, weight in zip(style_images, weights):
            images = [entry] if isinstance(entry, Tensor) else list(entry)
            for image in images:
                features = vgg(_as_batch(image), layers)
                for name in layers:
                    targets[name] = targets[name] + (weight / len(images)) * gram_matrix(features[name])
    return targets


def normalise_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Blend weights summing to 1 (equal when None); a count mismatch names --style-weights."""
    if n == 0:
        raise DataError("no style images")
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise DataError(f"--style-weights has {len(weights)} values but there are {n} --style entries")
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise DataError(f"--style-weights must be >= 0 with a positive sum, got {','.join(map(str, weights))}")
    return [w / sum(weights) for w in weights]


def _as_batch(image: Tensor) -> Tensor:
    """A 1×C×H×W float tensor in [0, 1] from C×H×W or 1×C×H×W, float or uint8."""
    if image.dtype == torch.uint8:
        image = image.float() / 255
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] not in (1, 3):
        raise ValueError(f"expected one C×H×W image with C = 1 or 3, got shape {tuple(image.shape)}")
    return image.float()


# --------------------------------------------------------------------------------------------
# Optimisation


@dataclass
class GatysResult:
    """A stylised image (1×3×H×W in [0, 1], on the CPU) and how it was made.

    ``losses``: the weighted loss terms of the returned image at the output size (before the
    chroma of ``preserve_color`` is put back); ``sizes`` and ``iterations``: (H, W) and
    optimiser iterations of each scale; ``history``: one record per loss evaluation (scale,
    size, seconds since the start, losses), the last scale's at the output size.
    """

    image: Tensor
    losses: dict[str, float]
    seconds: float
    sizes: list[tuple[int, int]]
    iterations: list[int] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    vgg_source: str | None = None  # the VGG19 weights: "imagenet", a file, or "random" (no real style transfer)


class _Stop(Exception):
    """Raised from inside an optimiser step when the callback asks to stop."""


class _OutOfSteps(Exception):
    """Raised from inside an L-BFGS line search that would exceed the evaluation budget."""


def stylize(
    content: Tensor,
    style_images: Sequence[StyleEntry],
    cfg: GatysConfig,
    vgg: VGGFeatures,
    style_weights: Sequence[float] | None = None,
    progress: bool = True,
    style_cache: dict | None = None,
    callback: Callable[[dict], bool | None] | None = None,
) -> GatysResult:
    """Optimise an image with ``content``'s aspect ratio and long side ``cfg.size`` [G16].

    ``content`` and the style images are C×H×W or 1×C×H×W in [0, 1] (or uint8), any size.
    With ``cfg.multiscale`` the image is optimised coarse to fine [G17], each scale starting
    from the previous result upsampled, with content and style targets recomputed from the
    images resized to that scale (style images to the same long side). ``style_cache``, a dict
    shared between calls with the same style images and weights, saves recomputing targets
    (not used with ``preserve_color``, where targets depend on the content). ``callback`` is
    called with each history record; returning True stops there, with the image just evaluated
    (at the size of the scale it was at).
    """
    start = time.perf_counter()
    device = vgg.mean.device
    content, styles = _on_device(content, style_images, device)
    weights = normalise_weights(style_weights, len(styles))
    sizes = scale_sizes(content.shape[-2], content.shape[-1], cfg)
    steps = scale_steps(len(sizes), cfg)
    generator = torch.Generator().manual_seed(cfg.seed)
    log = _Log(start, sum(steps), progress, callback)
    iterations: list[int] = []
    image = None
    for k, (size, n) in enumerate(zip(sizes, steps)):
        log.start_scale(k, size, len(sizes))
        content_k = luminance(resize(content, size)) if cfg.preserve_color else resize(content, size)
        targets = _scale_targets(vgg, content_k, styles, weights, cfg, None if cfg.preserve_color else style_cache)
        if image is None:
            image = _initial_image(content_k, styles, weights, cfg, generator).to(device)
        else:  # each later scale starts from the previous result, upsampled
            image = resize(image, size)
        image, n_iter, stopped = _optimise(image, vgg, targets, cfg, n, log.record)
        iterations.append(n_iter)
        if stopped:
            break
    log.bar.close()
    image, losses = _finish(image, content, vgg, targets, cfg)
    return GatysResult(image.cpu(), losses, time.perf_counter() - start, sizes, iterations, log.history,
                       vgg.source)


def _finish(image: Tensor, content: Tensor, vgg: VGGFeatures, targets: Targets, cfg: GatysConfig
            ) -> tuple[Tensor, dict[str, float]]:
    """The result and its losses at the last scale, the content's chroma put back with
    ``preserve_color`` (after the losses, which are of the luminance that was optimised)."""
    with torch.no_grad():
        losses = {name: float(v) for name, v in objective(vgg, image, targets, cfg).items()}
    if cfg.preserve_color:
        image = combine_luminance(resize(content, tuple(image.shape[-2:])), image)
    return image, losses


def _on_device(content: Tensor, style_images: Sequence[StyleEntry], device: torch.device
               ) -> tuple[Tensor, list[list[Tensor]]]:
    """The content and the style entries (each a list of images) as 1×C×H×W floats on ``device``."""
    content = _as_batch(content).to(device)
    styles = [[_as_batch(s).to(device) for s in ([entry] if isinstance(entry, Tensor) else entry)]
              for entry in style_images]
    return content, styles


class _Log:
    """One record per loss evaluation (``GatysResult.history``), the progress bar, and the
    ``callback``, which may stop the optimisation after any record (by ``_Stop``)."""

    def __init__(self, start: float, total: int, progress: bool, callback: Callable[[dict], bool | None] | None):
        self.start, self.callback = start, callback
        self.history: list[dict] = []
        self.bar = tqdm(total=total, disable=not progress, unit="step", dynamic_ncols=True, leave=progress)
        self.scale, self.size = 0, (0, 0)

    def start_scale(self, k: int, size: tuple[int, int], n_scales: int) -> None:
        """The records that follow are of scale ``k``, at ``size``."""
        self.scale, self.size = k, size
        self.bar.set_description(f"{size[1]}×{size[0]}" + (f" (scale {k + 1}/{n_scales})" if n_scales > 1 else ""))

    def record(self, losses: dict[str, Tensor]) -> None:
        values = {name: float(v.detach()) for name, v in losses.items()}
        self.history.append({"scale": self.scale, "size": self.size, "seconds": time.perf_counter() - self.start,
                             **values})
        self.bar.update(1)
        self.bar.set_postfix({name: f"{v:.4g}" for name, v in values.items()}, refresh=False)
        if self.callback is not None and self.callback(self.history[-1]):
            raise _Stop


def _scale_targets(
    vgg: VGGFeatures, content: Tensor, styles: list[list[Tensor]], weights: list[float], cfg: GatysConfig,
    cache: dict | None,
) -> Targets:
    """Content activations and style Grams at this scale; styles resized to its long side."""
    with torch.no_grad():
        content_features = vgg(content, [cfg.content_layer])[cfg.content_layer]
    long_side = max(content.shape[-2:]) * cfg.style_scale
    style_layers = [name for name, weight in cfg.style_layer_weights if weight]
    key = (round(long_side), tuple(style_layers))
    if cache is not None and key in cache:
        return Targets(content_features, cache[key])
    entries = []
    for images in styles:
        resized = [resize_long_side(image, long_side) for image in images]
        if cfg.preserve_color:  # luminance only, matched to the content's [G16c]
            resized = [match_luminance(luminance(image), content) for image in resized]
        entries.append(resized)
    grams = style_targets(vgg, entries, weights, style_layers)
    if cache is not None:
        cache[key] = grams
    return Targets(content_features, grams)


def _initial_image(
    content: Tensor, styles: list[list[Tensor]], weights: list[float], cfg: GatysConfig, generator: torch.Generator
) -> Tensor:
    """The starting point at the first scale: the content, white noise, or the (most heavily
    weighted) style image stretched to the output's shape."""
    if cfg.init == "content":
        return content.clone()
    if cfg.init == "noise":
        return torch.rand(content.shape, generator=generator)
    style = styles[max(range(len(styles)), key=lambda i: weights[i])][0]
    style = resize(style, tuple(content.shape[-2:]))
    if cfg.preserve_color:
        style = match_luminance(luminance(style), content).clamp(0, 1)
    return style.clone()


def _optimise(
    image: Tensor, vgg: VGGFeatures, targets: Targets, cfg: GatysConfig, steps: int,
    record: Callable[[dict[str, Tensor]], None],
) -> tuple[Tensor, int, bool]:
    """``steps`` loss evaluations of L-BFGS or Adam from ``image`` (fewer only if L-BFGS converges).
    Returns the result in [0, 1], the number of iterations, and whether ``record`` stopped the
    run (by raising ``_Stop``).

    The loss is that of the clamped image, which is what is saved, with the gradient passed
    straight through the clamp, so that pixels pushed out of range still feel the loss. (Left
    unconstrained, L-BFGS parks pixels out of range and clamping its result afterwards undid much
    of the optimisation; clamping in place would break its curvature pairs.) Adam is simply
    projected back into [0, 1] after each step.
    """
    x = image.detach().clone().requires_grad_(True)

    def evaluate() -> Tensor:
        losses = objective(vgg, x + (x.detach().clamp(0, 1) - x.detach()), targets, cfg)
        losses["total"].backward()
        record(losses)
        return losses["total"]

    if cfg.optimizer == "adam":
        return _adam(x, evaluate, steps, cfg.adam_lr)
    return _lbfgs(x, evaluate, steps, cfg.lbfgs_history)


def _adam(x: Tensor, evaluate: Callable[[], Tensor], steps: int, lr: float) -> tuple[Tensor, int, bool]:
    """``steps`` Adam steps on ``x``, each projected back into [0, 1] (``_optimise``'s result)."""
    optimizer = torch.optim.Adam([x], lr=lr)
    for i in range(steps):
        optimizer.zero_grad()
        try:
            evaluate()
        except _Stop:
            return x.detach().clamp(0, 1), i + 1, True
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach().clamp(0, 1), steps, False


def _lbfgs(x: Tensor, evaluate: Callable[[], Tensor], steps: int, history: int) -> tuple[Tensor, int, bool]:
    """L-BFGS on ``x`` for ``steps`` evaluations (``_optimise``'s result).

    It runs as one ``step`` call, so its curvature history is never cut, with a strong-Wolfe
    line search: the unit step is usually accepted at once (one evaluation per iteration) and a
    bad step is shortened rather than taken. It is restarted if it stops early. A line search
    the budget cuts short is abandoned, and the best image evaluated is returned.
    """
    budget = _Budget(x, evaluate, steps)
    iterations = 0
    while budget.evaluations < steps:
        budget.optimizer = torch.optim.LBFGS(
            [x], lr=1.0, max_iter=steps - budget.evaluations, max_eval=steps - budget.evaluations,
            history_size=history, line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=1e-12)
        before = budget.best_loss
        try:
            budget.optimizer.step(budget)
        except _OutOfSteps:
            pass
        except _Stop:  # keep the image the callback has just seen
            return x.detach().clamp(0, 1), iterations + budget.optimizer.state[x].get("n_iter", 0), True
        iterations += budget.optimizer.state[x].get("n_iter", 0)
        if budget.best_loss >= before:
            break  # a restart that gains nothing: converged
        # L-BFGS stopped early: its line search found no decrease, typically along a direction made
        # of out-of-range pixels, which change nothing. Clamping them changes no loss either, so
        # restart from the best image, clamped, with a fresh history.
        with torch.no_grad():
            x.copy_(budget.best.clamp(0, 1))
    return budget.best.clamp(0, 1), iterations, False


class _Budget:
    """L-BFGS's closure: ``evaluate`` (gradients cleared first, as by the current ``optimizer``),
    at most ``steps`` times over all restarts (``_OutOfSteps`` past them), keeping the best image
    evaluated, since a line search cut short leaves ``x`` wherever it was trying."""

    def __init__(self, x: Tensor, evaluate: Callable[[], Tensor], steps: int):
        self.x, self.evaluate, self.steps = x, evaluate, steps
        self.evaluations = 0
        self.best_loss, self.best = math.inf, x.detach().clone()
        self.optimizer: torch.optim.LBFGS | None = None

    def __call__(self) -> Tensor:
        if self.evaluations == self.steps:
            raise _OutOfSteps
        self.evaluations += 1
        self.optimizer.zero_grad()
        total = self.evaluate()
        if total.item() < self.best_loss:
            self.best_loss, self.best = total.item(), self.x.detach().clone()
        return total


# --------------------------------------------------------------------------------------------
# Files: ``cyclestyle gatys``


def stylize_files(
    content: Sequence[str | Path], style: Sequence[str | Path], output: str | Path, cfg: GatysConfig | None = None,
    *, style_weights: Sequence[float] | None = None, vgg_weights: str | Path | None = None, overwrite: bool = False,
    device: str | torch.device | None = None, progress: bool = True,
    on_written: Callable[[Path, GatysResult], None] | None = None,
) -> list[Path]:
    """Stylise every content image (files, or folders of them) with the style images and write
    the results (what ``cyclestyle gatys`` does); returns the files written.

    ``style``: image files, a folder standing for the average style of its images; blended by
    ``style_weights`` (default equal). ``output``: an image file for one content image, else a
    folder of ``<stem>.png``; outputs that exist are skipped (a line on stderr) unless
    ``overwrite``, and an output that would replace an input is refused. Every input is checked
    before anything is optimised, so a bad file stops the run at once, by name (``DataError``).
    ``cfg``: the optimisation's settings (default ``GatysConfig()``); ``vgg_weights``: as
    ``load_vgg19``. ``on_written(path, result)`` is called after each image is written. A single
    path is taken for a list of one, for ``content`` and ``style`` alike.
    """
    cfg = cfg or GatysConfig()
    content, style = ([x] if isinstance(x, (str, Path)) else x for x in (content, style))
    contents = _content_paths(content)
    style_entries = [list_images(p) if Path(p).is_dir() else [Path(p)] for p in style]
    weights = normalise_weights(style_weights, len(style_entries))
    outputs = _output_paths(contents, Path(output))
    _check_files(outputs, [*contents, *(p for entry in style_entries for p in entry)])
    todo = _to_write(contents, outputs, overwrite)
    if not todo:
        return []
    styles = _load_styles(style_entries, cfg)
    vgg = _load_vgg(vgg_weights, cfg, device)
    cache: dict = {}
    written: list[Path] = []
    for content_path, out in todo:
        result = stylize(load_uint8(content_path, None), styles, cfg, vgg, weights, progress=progress,
                         style_cache=cache)
        save_result(result.image, out, vgg.source, cfg, contents=str(content_path),
                    styles=[str(p) for p in style], style_weights=weights)
        written.append(out)
        if on_written is not None:
            on_written(out, result)
    return written


def _check_files(outputs: list[Path], inputs: list[Path]) -> None:
    """Every output and input checked before anything is optimised, so that a bad file stops the
    run at once, by name, not after an hour: no output replaces an input, none is blocked (a file
    among its parents, a folder in its place), and every input is a readable image."""
    _refuse_writing_over_inputs(outputs, inputs)
    for out in outputs:
        check_output(out, folder=False, error=DataError)
    for path in inputs:
        verify_image(path)


def _load_styles(style_entries: list[list[Path]], cfg: GatysConfig) -> list[list[Tensor]]:
    """The style images as uint8, shrunk once to style_scale × size: they are never used larger."""
    longest = cfg.size * cfg.style_scale
    return [[load_uint8(p, longest) for p in entry] for entry in style_entries]


def _load_vgg(weights: str | Path | None, cfg: GatysConfig, device: str | torch.device | None) -> VGGFeatures:
    """VGG19 up to the layers ``cfg`` reads (``load_vgg19``), with a note when its weights are random."""
    vgg = load_vgg19(weights, cfg.pooling, default_device(device), cfg.layers)
    if vgg.is_random:
        print("cyclestyle: note: --vgg-weights random: VGG19 has random weights, the outputs are not real "
              "style transfers (they are marked cyclestyle.vgg = random)", file=sys.stderr)
    return vgg


def _to_write(contents: list[Path], outputs: list[Path], overwrite: bool) -> list[tuple[Path, Path]]:
    """(content, output) of the outputs to write: those that exist are skipped, with a line on
    stderr, unless ``overwrite``."""
    todo = [(c, out) for c, out in zip(contents, outputs) if overwrite or not out.exists()]
    for out in sorted(set(outputs) - {out for _, out in todo}):
        print(f"cyclestyle: skipped {out}: it exists (--overwrite replaces it)", file=sys.stderr)
    return todo


def _content_paths(items: Sequence[str | Path]) -> list[Path]:
    paths: list[Path] = []
    for item in items:
        paths.extend(list_images(item) if Path(item).is_dir() else [Path(item)])
    return paths


def _output_paths(contents: list[Path], output: Path) -> list[Path]:
    """One content and an image file name: that file. Otherwise a folder of <stem>.png."""
    if len(contents) == 1 and output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        return [output]
    if output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        raise DataError(f"--output {output} must be a folder when there are {len(contents)} content images")
    if output.exists() and not output.is_dir():
        raise DataError(f"--output {output} exists and is not a folder")
    paths = [output / f"{p.stem}.png" for p in contents]
    seen: dict[Path, Path] = {}
    for content, path in zip(contents, paths):
        if path in seen:
            raise DataError(f"content images {seen[path]} and {content} would both be written to {path}")
        seen[path] = content
    return paths


def _refuse_writing_over_inputs(outputs: list[Path], inputs: list[Path]) -> None:
    """``--content photos/ --output photos/`` must not replace a photo with its stylisation."""
    sources = {p.resolve(): p for p in inputs}
    for out in outputs:
        if out.resolve() in sources:
            raise DataError(f"--output {out} is the input {sources[out.resolve()]}: choose another --output")


def load_uint8(path: Path, long_side: float | None) -> Tensor:
    """A 3×H×W uint8 tensor of the image at ``path``, shrunk (never enlarged) to ``long_side``."""
    return image_uint8(load_image(path), long_side)


def image_uint8(img, long_side: float | None) -> Tensor:
    """A 3×H×W uint8 tensor of a PIL image, shrunk (never enlarged) to ``long_side``: style images
    are only ever used up to the output's size, so they are kept that small, as 8-bit."""
    from PIL import Image

    if long_side is not None and max(img.size) > long_side:
        scale = long_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    return ((image_to_tensor(img) + 1) * 127.5).round().to(torch.uint8)


def save_result(image: Tensor, path: Path, vgg_source: str, cfg: GatysConfig, **about) -> None:
    """Write a [0, 1] image atomically (``data.save_image``); PNGs carry the VGG weights used
    (``cyclestyle.vgg``) and the settings."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    pil = tensor_to_image(_as_batch(image)[0] * 2 - 1)
    settings = json.dumps({**dataclasses.asdict(cfg), **about}, default=str)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    options: dict = {}
    if fmt == "PNG":
        info = PngInfo()
        info.add_text("cyclestyle.vgg", vgg_source)
        info.add_text("cyclestyle.gatys", settings)
        options = {"pnginfo": info}
    elif fmt == "JPEG":
        options = {"quality": 95, "comment": f"cyclestyle.vgg = {vgg_source}; cyclestyle.gatys = {settings}"}
    save_image(pil, path, **options)
