"""Translating images with a trained generator: tensors and PIL images of any size and mode.

Full frame
    ``translate_tensor`` reflect-pads a batch to sides that are multiples of 4 (the generator
    halves twice) and crops the output back, so every output has its input's exact size.

Automatic tiling
    ``translate_image`` (and the ``translate`` command) translate full-frame up to
    ``AUTO_TILE_PIXELS`` pixels (1536 × 1536 after padding) and in ``DEFAULT_TILE`` (1024-px) tiles
    above that, unless told otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..data import (
    _to_mode,  # the very conversion load_image applies (alpha composited over white)
    image_to_tensor,
    short_side_size,
    tensor_to_image,
)
from ..style.color import combine_luminance, luminance
from .tiling import (
    DEFAULT_TILE,
    TilePlan,
    TilingWarning,
    _in_channels,
    _layout,
    _run_tiled,
    _source_index,
    ceil_to,
    plan_tiles,
    size_multiple,
)

AUTO_TILE_PIXELS = 1536 * 1536
"""Images with more pixels than this (after padding to the size multiple) are tiled automatically."""


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Run a block with ``modules`` in eval mode and give each its own train/eval mode back after:
    evaluation in the middle of training must not leave the generators in eval mode."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


# --------------------------------------------------------------------------------------------
# Test-time behaviour of batch norm and dropout (pix2pix's U-Net)

BATCH_NORM_MODES = ("auto", "image", "running")
"""How a generator's batch-norm layers normalise at test time. "image": by each image's own
statistics, what the official ``test.py`` does by default (it never calls ``eval()`` unless given
``--eval``, and tests one image per batch); "running": by the running statistics learnt in
training (the official ``--eval``); "auto": "image" for a network with batch norm. Instance-norm
generators have no running statistics: the choice changes nothing for them."""


def has_batch_norm(generator: nn.Module) -> bool:
    """Whether ``generator`` has batch-norm layers (its weights file says so too: their running
    statistics are tensors of the file, and the architecture's arguments say ``norm: batch``)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in generator.modules())


def _image_statistics(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """Batch norm as training mode computes it for a batch of one image, for every image of the
    batch alone: each channel by the image's own mean and (biased) variance, then the layer's
    scale and shift. Its running statistics are neither used nor changed."""
    return F.instance_norm(x, weight=bn.weight, bias=bn.bias, eps=bn.eps)


def uses_image_statistics(generator: nn.Module) -> bool:
    """Whether ``test_mode`` has set ``generator``'s batch norm to each image's own statistics."""
    return any(getattr(m, "_image_statistics", False) for m in generator.modules())


@contextmanager
def test_mode(*generators: nn.Module, batch_norm: str = "auto", dropout: bool = False,
              seed: int = 0) -> Iterator[None]:
    """Run a block with ``generators`` as a test should run them, and give each its train/eval
    mode, layers and random state back after.

    Eval mode, plus: batch norm by each image's own statistics or the running ones
    (``batch_norm``, see ``BATCH_NORM_MODES``); and with ``dropout`` the dropout layers on, as the
    pix2pix paper has them at test time (§3.1, its only source of noise), drawn from torch's
    generator seeded with ``seed`` for the block (the caller's random state is kept)."""
    if batch_norm not in BATCH_NORM_MODES:
        raise ValueError(f"batch_norm must be one of {', '.join(BATCH_NORM_MODES)}, not {batch_norm!r}")
    modes = [g.training for g in generators]
    norms = [m for g in generators for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    drops = [m for g in generators for m in g.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    devices = sorted({p.device.index or 0 for g in generators for p in g.parameters() if p.device.type == "cuda"})
    for g in generators:
        g.eval()
    if batch_norm in ("auto", "image"):
        for m in norms:
            m.forward, m._image_statistics = partial(_image_statistics, m), True
    try:
        with torch.random.fork_rng(devices=devices, enabled=dropout):
            if dropout:
                torch.manual_seed(seed)
                for m in drops:
                    m.train()
            yield
    finally:
        for m in norms:
            m.__dict__.pop("forward", None)
            m.__dict__.pop("_image_statistics", None)
        for g, mode in zip(generators, modes):
            g.train(mode)


def translate_tensor(generator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Translate a batch N×C×H×W in [-1, 1] of any height and width, full-frame.

    The generator needs sides that are multiples of its ``size_multiple`` (4 for CycleGAN's: two
    stride-2 stages), and at least twice that: the batch is reflect-padded (edge-replicated when
    tiny) on the right and bottom and the output cropped back to H×W.
    """
    h, w = x.shape[-2:]
    multiple = size_multiple(generator)
    # At least two multiples a side: a network's deepest instance norm needs more than one pixel,
    # so a tiny image (1×1, 3×3) is translated padded rather than refused. A network whose
    # deepest norm sees more than one pixel at one multiple (the U-Net) says so (``min_multiples``).
    least = getattr(generator, "min_multiples", 2) * multiple
    pad_h, pad_w = max(ceil_to(h, multiple), least) - h, max(ceil_to(w, multiple), least) - w
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return generator(x)[..., :h, :w]


COMPILE_MIN_IMAGES = 32
"""``--compile auto`` compiles for this many images or more. Measured on a Zen 5 core pair with the
paper's generator at 256 px: compiling costs about 27 s and saves about 1 s per image (3.0 →
2.0 s), so it pays for itself from about 30 images of one size."""


def wants_compile(setting: str, images: int) -> bool:
    """``--compile on|off|auto`` for a job of ``images`` images."""
    return setting == "on" or (setting == "auto" and images >= COMPILE_MIN_IMAGES)


class CompiledGenerator(nn.Module):
    """A generator through ``torch.compile``, for a folder's worth of full frames: the first call
    compiles (tens of seconds), later ones run faster. If compilation fails (no C++ compiler, a
    backend that cannot take the network), ``note`` says why in one line and the eager network
    translates instead. Weights are the generator's own: nothing is copied."""

    def __init__(self, generator: nn.Module, note: Callable[[str], None]):
        super().__init__()
        self.generator = generator
        self.size_multiple = size_multiple(generator)
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = torch.compile(generator)
        self._note = note

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._compiled is not None:
            try:
                return self._compiled(x)
            except Exception as error:
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
                self._note(f"--compile: compilation failed ({reason}); translating without it")
                self._compiled = None
        return self.generator(x)


# --------------------------------------------------------------------------------------------
# PIL images


def _alpha_of(img: Image.Image) -> Image.Image | None:
    if not img.has_transparency_data:
        return None
    return (img if img.mode == "RGBA" else img.convert("RGBA")).getchannel("A")


def _wants_tiles(height: int, width: int, tile: int | None, multiple: int) -> bool:
    if tile is None:
        return ceil_to(height, multiple) * ceil_to(width, multiple) > AUTO_TILE_PIXELS
    return tile > 0


def _to_uint8(values: torch.Tensor) -> np.ndarray:
    """C×H×W float in [-1, 1] → H×W(×C) uint8, rounding as ``tensor_to_image`` does."""
    v = ((values.to("cpu", torch.float32).clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    array = np.ascontiguousarray(v.permute(1, 2, 0).numpy())
    return array[:, :, 0] if values.shape[0] == 1 else array


def _translate_pixels(generator: nn.Module, img: Image.Image, plan: TilePlan | None, device) -> Image.Image:
    """``img`` already in the generator's input mode ("L" or "RGB"); ``plan`` None = full frame."""
    if plan is None:
        x = image_to_tensor(img).unsqueeze(0).to(device, next(generator.parameters()).dtype)
        return tensor_to_image(translate_tensor(generator, x)[0])
    layout = _layout(generator)
    width, height = img.size
    hp, wp = ceil_to(height, layout.multiple), ceil_to(width, layout.multiple)
    reflect = (hp - height) < height and (wp - width) < width
    param = next(generator.parameters())
    out = Image.new("L" if layout.out_channels == 1 else "RGB", (width, height))

    def read(y0, y1, x0, x1):
        rows = _source_index(y0, y1, height, reflect)
        cols = _source_index(x0, x1, width, reflect)
        r0, c0 = int(rows.min()), int(cols.min())
        a = np.array(img.crop((c0, r0, int(cols.max()) + 1, int(rows.max()) + 1)))
        if len(rows) != a.shape[0] or len(cols) != a.shape[1]:
            a = a[rows - r0][:, cols - c0]
        t = torch.from_numpy(np.ascontiguousarray(a)).to(param.device)
        t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
        return t.to(torch.float32).div(127.5).sub(1.0).unsqueeze(0).to(param.dtype)  # as image_to_tensor

    def emit(y0, rows):
        y1 = min(height, y0 + rows.shape[1])
        if y1 > y0:
            out.paste(Image.fromarray(_to_uint8(rows[:, : y1 - y0, :width])), (0, y0))

    _run_tiled(generator, layout, plan, hp, wp, read, emit)
    return out


def translate_image(generator: nn.Module, img: Image.Image, tile: int | None = None, overlap: int | None = None,
                    device: str | torch.device | None = None) -> Image.Image:
    """Translate a PIL image of any size and mode; the result has the same size.

    The pixels are converted as ``load_image`` converts them (alpha composited over white; CMYK,
    palette, 16-bit … to "RGB", or "L" for a one-channel generator), translated, and the original
    alpha channel, if any, is put back ("RGBA"/"LA" out). ``tile``: None = full frame up to
    ``AUTO_TILE_PIXELS`` and ``DEFAULT_TILE`` tiles above; 0 = always full frame; N = N-pixel
    tiles (see ``tiled_translate`` for ``overlap``). ``device``: where to translate (the
    generator is moved there); by default where the generator is. EXIF orientation is the
    caller's business (``load_image`` applies it).
    """
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    if device != next(generator.parameters()).device:
        generator = generator.to(device)
    alpha = _alpha_of(img)
    pixels = _to_mode(img, "L" if _in_channels(generator) == 1 else "RGB")
    plan = None
    if _wants_tiles(img.height, img.width, tile, size_multiple(generator)):
        plan = plan_tiles(generator, tile or DEFAULT_TILE, overlap)
        for note in plan.notes:
            warnings.warn(note, TilingWarning, stacklevel=2)
    with torch.inference_mode():
        out = _translate_pixels(generator, pixels, plan, device)
    if alpha is not None:
        out.putalpha(alpha)
    return out


def resize_short_side(img: Image.Image, size: int, source: str = "") -> Image.Image:
    """Resize (bicubic, aspect kept) so that the shorter side is ``size`` pixels; an
    ``ImageSizeError`` naming ``source`` past the size and aspect caps (``data.short_side_size``)."""
    new = short_side_size(img.width, img.height, size, source)
    return img if new == img.size else img.resize(new, Image.Resampling.BICUBIC)




# --------------------------------------------------------------------------------------------
# Post-processing of a translation: how much of it, and whose colours


def post_process(source: Image.Image, output: Image.Image, strength: float = 1.0,
                 preserve_color: bool = False) -> Image.Image:
    """The translation ``output`` of ``source`` (both "RGB", or both "L" without
    ``preserve_color``; same size) blended with it, ``strength``·output + (1 − strength)·source,
    then, with ``preserve_color``, its luminance put on the source's chroma, exactly as ``cyclestyle
    gatys --preserve-color`` does (Gatys et al. 2016, "Preserving color in neural artistic style
    transfer": ``style.color``). Any translator's output can be so treated."""
    if strength == 1.0 and not preserve_color:
        return output
    x = (image_to_tensor(source).unsqueeze(0) + 1) / 2
    y = (image_to_tensor(output).unsqueeze(0) + 1) / 2
    y = strength * y + (1 - strength) * x
    if preserve_color:
        y = combine_luminance(x, luminance(y))
    return tensor_to_image(y[0] * 2 - 1)
