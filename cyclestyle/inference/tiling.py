"""Tiled translation whose output equals the full-frame output, whatever the image size.

Tiles whose output equals the full-frame output
    Instance normalisation divides every feature map by *that image's* per-channel mean and
    standard deviation. Run tile by tile, each tile would be normalised by its own statistics and
    come out with its own colour cast. ``tiled_translate`` instead makes every instance-norm layer
    normalise with the statistics of the *whole* image at that layer, which it gets progressively:

    1. For norm layer k = 1 … K, every tile of a partition of the image ("cores") is run, with a
       halo around it, up to layer k, with layers 1 … k-1 already using the known whole-image
       statistics (forward hooks on the norm modules). A pre-hook on layer k adds the tile core's
       per-channel count, mean and sum of squared deviations (float64, merged across tiles with
       Chan's formula) and stops the forward there by raising a private exception.
    2. With all K statistics fixed, the network is a *local* function of its input: every output
       pixel depends only on the input within the receptive-field radius R (computed from the
       layers, see ``receptive_radius``: 84 px for the paper's 9-block generator). So a tile with a
       halo of at least R around its core reproduces the full-frame values there exactly; the
       reflection or zero padding at the tile's edge only corrupts the halo, and where a tile edge
       is the image edge it is the same padding the full frame gets. The last pass keeps each
       tile's core, widened by a ``blend``-pixel band (8 px) that is blended with the neighbours'
       under a raised-cosine partition of unity, so that float rounding can never show as a seam.

    The image is reflect-padded to a multiple of the generator's ``size_multiple`` (4 for
    CycleGAN's) once, exactly as ``translate_tensor`` does (by
    index arithmetic on each tile read, without copying the image), and tiles and cores are
    aligned to that multiple, so the stride-2 grids of the tiles coincide with the full frame's
    and the cores map to whole pixels at the 1/2 and 1/4 scales. Pass k needs only the halo of
    layer k's own receptive field, so the early passes run on fewer, larger cores. All windows of
    all passes have one shape (edge windows are shifted inwards, not cut): with one shape per
    pass, oneDNN's per-shape kernel cache and heap fragmentation held 250-400 MB more (measured
    peak RSS 1268 → 882 MiB for the paper's generator on 1024² in 512-px tiles), for 5-15% more
    arithmetic. A norm layer whose statistics are known is handed a 2×2 corner by its pre-hook and
    its real input is normalised in its forward hook, so no tile's own statistics are computed
    for nothing.

    ``--overlap``/``overlap`` is the halo per side. Less than R + blend cannot be exact, so it is
    raised to that with a one-line note rather than trading exactness for speed.

    Measured max |tiled - full| on the [0, 1] scale: 6.8e-6 (mean 5.9e-7) for the paper's
    generator on a 768² image in 512-px tiles, 1.6e-6 for a small one; naive tiles (each with its
    own statistics) differ by up to 0.21 (mean 0.017) on the same images.

    Cost: pass k runs the network up to layer k, so the statistics cost about K/2 forwards (the
    paper's generator has K = 23 norm layers, 18 of them inside the residual blocks, where most
    of its work is) plus one final forward, each with its tiles' halo overhead. In multiply-adds,
    for the paper's generator: 17-21× a full-frame translation with 512-px tiles, 16× with
    1024-px tiles, 13× with 2048-px tiles (4096² image). Measured CPU time: 14.4× for the paper's
    generator (768², 512-px tiles), 3.8× for ngf 16 with 3 blocks (1024², 512-px tiles; small
    tiles run faster per pixel than one large frame). That is the price of tiles that match the
    full frame without holding a whole image's activations anywhere; caching the per-tile
    activations between passes would cut it to about 2-3× at the cost of memory that grows with
    the image.

Frames of a video
    A norm layer that carries statistics from frame to frame (``temporal.py``, ``--stable``) gets
    each frame's whole-image statistics through its ``smooth``, exactly as it does full-frame, so
    tiled stable video equals full-frame stable video too.

Memory
    Only tiles go to the device. ``translate_image`` reads tiles straight from the input PIL image
    and pastes finished rows of the output into the output image, through a float32 buffer of one
    row of tiles; so peak memory is one tile's forward plus the input and output images themselves.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

DEFAULT_TILE = 1024
"""Tile side used by automatic tiling, halo included."""

BLEND = 8
"""Half-width in pixels of the band where neighbouring tiles' outputs are cross-faded."""

_PROBE = 64  # side of the input used to trace a generator's layers
_STAT_CHUNK = 1 << 20  # elements per float64 chunk when adding up a tile's statistics (8 MiB)


class TilingWarning(UserWarning):
    """A tile or overlap was too small for an exact tiled translation and was enlarged."""


# --------------------------------------------------------------------------------------------
# What a generator's layers look like to the tiler


def size_multiple(generator: nn.Module) -> int:
    """The factor the generator's input height and width must be multiples of, as it declares it
    (every registered generator does; see ``cyclestyle.models.registry``)."""
    try:
        multiple = generator.size_multiple
    except AttributeError:
        raise ValueError(f"{type(generator).__name__} does not declare its size_multiple") from None
    if not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"{type(generator).__name__}.size_multiple must be a positive int, got {multiple!r}")
    return multiple


def ceil_to(value: float, multiple: int) -> int:
    """The least multiple of ``multiple`` not below ``value``."""
    return int(math.ceil(value / multiple - 1e-9)) * multiple


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _uses_image_stats(m: nn.Module) -> bool:
    return isinstance(m, nn.InstanceNorm2d) and (m.training or not m.track_running_stats)


@dataclass(frozen=True)
class _Layout:
    in_channels: int
    out_channels: int
    norms: tuple[nn.Module, ...]  # the norm layers that use per-image statistics, in call order
    norm_radius: tuple[float, ...]  # receptive radius (input pixels) of each one's input
    radius: float  # receptive radius of the output
    multiple: int  # the generator's size multiple: tiles, halos and cores align to it


_LAYOUTS: weakref.WeakKeyDictionary[nn.Module, _Layout] = weakref.WeakKeyDictionary()


def _layout(generator: nn.Module) -> _Layout:
    """Trace one small forward and derive the norm layers and receptive radii (cached per module).

    The radius is an upper bound built layer by layer in call order: a convolution or pooling
    with kernel extent E (= (k-1)·dilation) and p pixels of padding before its first tap reaches
    max(p, E-p) input pixels from the output pixel's position, a transposed convolution
    max(p, E-p) output pixels, a nearest upsampling by f (f-1) output pixels; distances are
    converted to input-image pixels by the scale of the layer. Summing over every layer called
    also over-counts parallel branches, so the bound holds for residual blocks too.
    """
    cached = _LAYOUTS.get(generator)
    if cached is not None:
        return cached
    in_channels, calls, out_channels = _trace(generator)
    norms, norm_radius, radius = _receptive_radii(calls)
    layout = _Layout(in_channels, out_channels, norms, norm_radius, radius, size_multiple(generator))
    _LAYOUTS[generator] = layout
    return layout


_Call = tuple[nn.Module, tuple[int, int], tuple[int, int]]  # a leaf module, its input and output (H, W)


def _trace(generator: nn.Module) -> tuple[int, list[_Call], int]:
    """Input channels, every leaf module's call in order, and output channels, from one forward of
    a ``_PROBE``-pixel square: the order and scales of the layers are what the radius is built from."""
    convs = [m for m in generator.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("cannot tile a generator without a Conv2d layer")
    param = next(generator.parameters())
    probe = torch.zeros(1, convs[0].in_channels, _PROBE, _PROBE, device=param.device, dtype=param.dtype)
    calls: list[_Call] = []

    def record(module, inputs, output):
        calls.append((module, tuple(inputs[0].shape[-2:]), tuple(output.shape[-2:])))

    handles = [m.register_forward_hook(record) for m in generator.modules() if next(m.children(), None) is None]
    carriers = [m for m in generator.modules() if getattr(m, "statistics_given", True) is False]
    for m in carriers:  # norms that carry statistics across frames: the probe is not a frame
        m.statistics_given = True
    try:
        with torch.inference_mode():
            out = generator(probe)
    finally:
        for h in handles:
            h.remove()
        for m in carriers:
            m.statistics_given = False
    if tuple(out.shape[-2:]) != (_PROBE, _PROBE):
        raise ValueError(f"cannot tile a generator whose output size differs from its input's "
                         f"({_PROBE}x{_PROBE} in, {out.shape[-1]}x{out.shape[-2]} out)")
    return convs[0].in_channels, calls, int(out.shape[1])


def _receptive_radii(calls: list[_Call]) -> tuple[tuple[nn.Module, ...], tuple[float, ...], float]:
    """The per-image norm layers, the radius bound at each one's input, and at the output: the
    reaches of the layers summed in call order (``_layout``). A pad layer's pixels count as the
    padding of the convolution after it (activations between them pass the pad on)."""
    radius, pad = 0.0, (0, 0)  # pad: (top, left) pixels of padding still pending
    norms: list[nn.Module] = []
    norm_radius: list[float] = []
    for m, size_in, size_out in calls:
        if isinstance(m, nn.CircularPad2d) or getattr(m, "padding_mode", "zeros") == "circular":
            raise ValueError("cannot tile a generator with circular padding: it wraps the image around")
        if isinstance(m, (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ConstantPad2d)):
            left, _, top, _ = m.padding
            pad = (pad[0] + top, pad[1] + left)
            continue
        if _uses_image_stats(m):
            if any(m is n for n in norms):
                raise ValueError("cannot tile a generator that calls one instance-norm layer twice")
            norms.append(m)
            norm_radius.append(radius)
        else:
            radius += _layer_reach(m, size_in, size_out, pad)
        if not isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Dropout)):
            pad = (0, 0)  # a pending pad belongs to the convolution right after it
    return tuple(norms), tuple(norm_radius), radius


def _layer_reach(m: nn.Module, size_in: tuple[int, int], size_out: tuple[int, int], pad: tuple[int, int]) -> float:
    """How far (input-image pixels) one layer's output pixel looks from its position, with ``pad``
    pixels of a pad layer just before it; 0 for a layer that works pixel by pixel. A layer the
    tiler cannot reproduce tile by tile is a ``ValueError`` naming it."""
    s_out = _PROBE / size_out[0]  # input-image pixels per pixel of this layer's output
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _pair(m.kernel_size), _pair(m.stride or m.kernel_size)
        extent = _extent(k, _pair(getattr(m, "dilation", 1)))
        if isinstance(m.padding, str):  # "same" or "valid"
            p = (extent[0] // 2, extent[1] // 2) if m.padding == "same" else (0, 0)
        else:
            p = _pair(m.padding)
        s_in = s_out / s[0]
        return s_in * _kernel_reach(extent, (p[0] + pad[0], p[1] + pad[1]))
    if isinstance(m, nn.ConvTranspose2d):
        extent = _extent(_pair(m.kernel_size), _pair(m.dilation))
        return s_out * _kernel_reach(extent, _pair(m.padding))
    if isinstance(m, nn.Upsample):
        s_in = _PROBE / size_in[0]
        return (s_in - s_out) if m.mode == "nearest" else s_in
    if isinstance(m, (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm3d)) or (
        isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or not m.track_running_stats)
    ):
        raise ValueError(f"cannot tile a generator with {type(m).__name__} using per-image statistics")
    if size_in != size_out:
        raise ValueError(f"cannot tile a generator with a {type(m).__name__} layer that resizes its input")
    return 0.0


def _extent(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """A kernel's extent E = (k-1)·dilation per axis: the distance from its first tap to its last."""
    return (kernel[0] - 1) * dilation[0], (kernel[1] - 1) * dilation[1]


def _kernel_reach(extent: tuple[int, int], padding: tuple[int, int]) -> int:
    """max(p, E-p) over both axes: the farthest tap from the output pixel's position."""
    return max(max(padding[0], extent[0] - padding[0]), max(padding[1], extent[1] - padding[1]))


def _in_channels(generator: nn.Module) -> int:
    """Channels the generator takes: those of its first convolution."""
    conv = next((m for m in generator.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError("the generator has no Conv2d layer to tell its input channels")
    return conv.in_channels


def receptive_radius(generator: nn.Module) -> int:
    """How far (input pixels, rounded up to the generator's size multiple) an output pixel looks,
    once the instance-norm statistics are fixed: the halo a tile needs for its core to be exact."""
    layout = _layout(generator)
    return ceil_to(layout.radius, layout.multiple)


# --------------------------------------------------------------------------------------------
# Tile geometry


@dataclass(frozen=True)
class TilePlan:
    """Tile side and halo as used: ``tile`` pixels per side including ``overlap`` pixels of halo on
    each side of the tile's core; ``radius`` is the generator's receptive radius and ``notes`` say
    what was changed from the request."""

    tile: int
    overlap: int
    radius: int
    blend: int
    notes: tuple[str, ...] = ()


def plan_tiles(generator: nn.Module, tile: int = DEFAULT_TILE, overlap: int | None = None,
               blend: int = BLEND) -> TilePlan:
    """The tile side and halo for an exact tiled translation.

    The halo (``overlap``, per side) must be at least the receptive radius plus the blend band;
    ``None`` means exactly that, a smaller value is raised to it (with a note), a larger one is
    kept (rounded up to the generator's size multiple m). The tile side is rounded down to a
    multiple of m and raised, with a note, when it leaves less than a small core between its two halos.
    """
    if tile < 1:
        raise ValueError(f"tile must be at least 1 pixel, got {tile}")
    if blend < 0 or blend % 4:
        raise ValueError(f"blend must be a non-negative multiple of 4, got {blend}")
    radius, m = receptive_radius(generator), _layout(generator).multiple
    need = ceil_to(radius + blend, m)
    notes = []
    halo = need if overlap is None else max(ceil_to(overlap, m), need)
    if overlap is not None and overlap < need:
        notes.append(f"overlap {overlap} px is less than the {need} px this generator needs for tiles to match a "
                     f"full-frame translation exactly (receptive field {radius} px + {blend} px blend); using {need}")
    side = tile // m * m
    least = 2 * halo + ceil_to(max(16, 4 * blend + 8), m)  # cores keep room for a blend band on each side
    if side < least:
        notes.append(f"tile {tile} px leaves no room for a core between two {halo} px overlaps; using {least}")
        side = least
    return TilePlan(side, halo, radius, blend, tuple(notes))


def _partition(length: int, tile: int, halo: int, multiple: int, shrink: bool = True
               ) -> tuple[list[tuple[int, int]], int]:
    """Cores [a, b) covering [0, length) and the side of the windows read for them.

    As few windows as fit in ``tile`` with ``halo`` pixels beyond each core (none beyond the image
    edge), all of one side: with ``shrink`` the least side that reaches, else ``tile``; cores as
    even as possible. All values are multiples of ``multiple``.
    """
    if length <= tile:
        return [(0, length)], length
    n = 2 + math.ceil(max(0, length - 2 * (tile - halo)) / (tile - 2 * halo))
    side = ceil_to((length + 2 * halo * (n - 1)) / n, multiple) if shrink else tile
    caps = [side - halo] + [side - 2 * halo] * (n - 2) + [side - halo]  # an edge core needs one halo
    units = (sum(caps) - length) // multiple  # what the n cores must give back, in whole steps
    sizes = [cap - multiple * (units // n + (1 if i < units % n else 0)) for i, cap in enumerate(caps)]
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + size)
    assert bounds[-1] == length and min(sizes) > 0 and side <= tile
    return list(zip(bounds[:-1], bounds[1:])), side


def _window(a: int, b: int, halo: int, length: int, side: int) -> tuple[int, int]:
    """The window read for core [a, b): ``side`` long, reaching ``halo`` beyond the core except
    where the core touches the image edge. Windows at the edge are shifted inwards rather than cut,
    so that all windows have one shape."""
    start = min(max(a - halo, 0), length - side)
    assert start <= max(a - halo, 0) and start + side >= min(b + halo, length)
    return start, start + side


def _ramp(n_band: int, rising: bool) -> torch.Tensor:
    """Raised-cosine weights across a band of 2·blend pixels; rising + falling = 1 pixel by pixel."""
    t = (torch.arange(n_band, dtype=torch.float64) + 0.5) / n_band
    w = 0.5 - 0.5 * torch.cos(math.pi * t)
    return (w if rising else 1.0 - w).to(torch.float32)


def _weights_1d(a: int, b: int, length: int, blend: int) -> tuple[int, int, torch.Tensor]:
    """Extent [lo, hi) of core [a, b) widened by the blend band inside the image, and its weights."""
    lo = a - blend if a > 0 else a
    hi = b + blend if b < length else b
    w = torch.ones(hi - lo, dtype=torch.float32)
    assert hi - lo >= 2 * blend * ((a > 0) + (b < length)), "blend bands overlap"
    if a > 0 and blend:
        w[: 2 * blend] = _ramp(2 * blend, rising=True)
    if b < length and blend:
        w[hi - lo - 2 * blend :] = _ramp(2 * blend, rising=False)
    return lo, hi, w


def _source_index(start: int, stop: int, size: int, reflect: bool) -> np.ndarray:
    """Indices into a side of ``size`` pixels for positions [start, stop) of the padded side:
    mirrored (without repeating the edge, as F.pad's "reflect") or clamped past the end."""
    i = np.arange(start, stop)
    over = i >= size
    if over.any():
        i[over] = 2 * (size - 1) - i[over] if reflect else size - 1
    return i


# --------------------------------------------------------------------------------------------
# Whole-image instance-norm statistics through hooks


class _Reached(Exception):
    """Raised by the measuring pre-hook: the forward has gone as far as it needs to."""


class _GlobalNorm:
    """Context manager: hooks that make the generator's instance-norm layers use given statistics
    (once set) and that measure the input of one layer over a tile's core, then stop the forward.
    The hooks are removed on exit."""

    def __init__(self, norms: Sequence[nn.Module]):
        self.norms = list(norms)
        self.mean_: list[torch.Tensor | None] = [None] * len(self.norms)  # fixed statistics, once known
        self.scale: list[torch.Tensor | None] = [None] * len(self.norms)
        self.bias: list[torch.Tensor | None] = [None] * len(self.norms)
        self.target: int | None = None
        self.window: tuple[int, int] = (0, 0)  # the tile's size in input pixels
        self.core: tuple[int, int, int, int] = (0, 0, 0, 0)  # y0, y1, x0, x1 within the tile
        self._handles: list = []
        self._held: dict[int, torch.Tensor] = {}
        self._reset_sums()

    def __enter__(self) -> _GlobalNorm:
        for k, m in enumerate(self.norms):
            if hasattr(m, "statistics_given"):  # a norm that carries statistics across frames
                m.statistics_given = True
            self._handles.append(m.register_forward_pre_hook(partial(self._measure, k)))
            self._handles.append(m.register_forward_hook(partial(self._normalise, k)))
        return self

    def __exit__(self, *exc) -> None:
        for m in self.norms:
            if hasattr(m, "statistics_given"):
                m.statistics_given = False
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._held.clear()

    def _reset_sums(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def start(self, k: int) -> None:
        self.target = k
        self._reset_sums()

    def _measure(self, k: int, module: nn.Module, inputs: tuple[torch.Tensor, ...]):
        x = inputs[0]
        if k != self.target:
            if self.scale[k] is None:
                return None
            # The statistics are known: hand the layer a 2×2 corner to normalise (so that it does
            # not spend time on the tile's own statistics) and normalise the real input in the
            # forward hook below.
            self._held[k] = x
            return (x[:, :, :2, :2], *inputs[1:])
        fy, fx = self.window[0] // x.shape[-2], self.window[1] // x.shape[-1]
        if fy * x.shape[-2] != self.window[0] or fx * x.shape[-1] != self.window[1]:
            raise RuntimeError(f"norm layer input {tuple(x.shape)} is not at a whole scale of the tile {self.window}")
        y0, y1, x0, x1 = self.core
        part = x[0, :, y0 // fy : y1 // fy, x0 // fx : x1 // fx].flatten(1)
        where = "cpu" if part.device.type == "mps" else part.device  # MPS has no float64
        n = part.shape[1]
        step = max(1, _STAT_CHUNK // n)
        means, m2s = [], []
        for c in range(0, part.shape[0], step):  # float64 chunks: exact sums, bounded memory
            chunk = part[c : c + step].to(where, torch.float64)
            mean = chunk.mean(1)
            means.append(mean)
            m2s.append((chunk - mean[:, None]).square_().sum(1))
        mean, m2 = torch.cat(means), torch.cat(m2s)
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
        else:  # Chan, Golub and LeVeque's pairwise update
            total = self.count + n
            delta = mean - self.mean
            self.mean = self.mean + delta * (n / total)
            self.m2 = self.m2 + m2 + delta.square() * (self.count * n / total)
            self.count = total
        raise _Reached

    def finish(self, k: int, device: torch.device, dtype: torch.dtype) -> None:
        """Fix layer k's statistics from what was measured since ``start(k)``."""
        m = self.norms[k]
        mean, var = self.mean, self.m2 / self.count  # biased, as instance norm uses
        if hasattr(m, "smooth"):  # the whole frame's statistics, smoothed across frames (temporal.py)
            mean, var = (t[0] for t in m.smooth(mean[None], var[None]))
        scale, bias = (var + m.eps).rsqrt().cpu(), None
        if m.affine:
            scale = scale * m.weight.detach().to("cpu", torch.float64)
            bias = m.bias.detach()
        self.set(k, mean, scale, bias, device, dtype)
        self.target = None
        self._reset_sums()

    def set(self, k: int, mean: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, device, dtype) -> None:
        """Make layer k compute ``(x - mean) * scale (+ bias)`` per channel instead of normalising
        by the input's own statistics (used by ``finish``, and by tests)."""
        self.mean_[k] = mean.to(device, dtype).view(1, -1, 1, 1)
        self.scale[k] = scale.to(device, dtype).view(1, -1, 1, 1)
        self.bias[k] = None if bias is None else bias.to(device, dtype).view(1, -1, 1, 1)

    def _normalise(self, k: int, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
        x = self._held.pop(k, None)
        if x is None:
            return None
        out = torch.sub(x, self.mean_[k]).mul_(self.scale[k])  # the order instance norm computes in
        return out if self.bias[k] is None else out.add_(self.bias[k])


# --------------------------------------------------------------------------------------------
# The tiled translation itself


Reader = Callable[[int, int, int, int], torch.Tensor]  # (y0, y1, x0, x1) → 1×C×h×w on the device
Emitter = Callable[[int, torch.Tensor], None]  # (y0, C×rows×W_padded float32) → stores those rows


class _Rows:
    """Float32 accumulator for the output rows still being blended (about one row of tiles)."""

    def __init__(self, channels: int, width: int, emit: Emitter):
        self.top = 0
        self.buf = torch.zeros(channels, 0, width)
        self.emit = emit

    def add(self, y0: int, x0: int, values: torch.Tensor) -> None:
        bottom = y0 + values.shape[1]
        if bottom > self.top + self.buf.shape[1]:
            more = torch.zeros(self.buf.shape[0], bottom - self.top - self.buf.shape[1], self.buf.shape[2])
            self.buf = torch.cat([self.buf, more], 1)
        self.buf[:, y0 - self.top : bottom - self.top, x0 : x0 + values.shape[2]] += values

    def flush(self, upto: int) -> None:
        """Rows above ``upto`` are complete: hand them over and forget them."""
        n = upto - self.top
        if n > 0:
            self.emit(self.top, self.buf[:, :n])
            self.buf = self.buf[:, n:].clone()
            self.top = upto


def _run_tiled(generator: nn.Module, layout: _Layout, plan: TilePlan, height: int, width: int,
               read: Reader, emit: Emitter, global_stats: bool = True) -> None:
    """Translate one padded image of ``height``×``width`` (multiples of the size multiple) read tile by tile:
    one pass per instance-norm layer fixes its whole-image statistics (``_Grid.measure``), then the
    final pass translates and blends the tiles (``_Grid.final_pass``)."""
    param = next(generator.parameters())
    if height <= plan.tile and width <= plan.tile:  # one tile: that is the full frame
        out = generator(read(0, height, 0, width))[0]
        emit(0, out.to("cpu", torch.float32))
        return
    m = layout.multiple
    grid = _Grid(generator, plan, m, height, width, read,
                 *(_partition(n, plan.tile, plan.overlap, m) for n in (height, width)))
    if not (global_stats and layout.norms):
        grid.final_pass(layout.out_channels, emit)
        return
    with _GlobalNorm(layout.norms) as norm:
        for k, r_k in enumerate(layout.norm_radius):
            halo = ceil_to(r_k, m)  # layer k's input at a core pixel depends on this much around it
            grid.measure(norm, k, halo)
            norm.finish(k, param.device, param.dtype)
        grid.final_pass(layout.out_channels, emit)


@dataclass(frozen=True)
class _Grid:
    """One padded image and the tiles of its final pass: the cores of its rows and columns, and
    the side of the windows read for them (``_partition``), which every pass reads through."""

    generator: nn.Module
    plan: TilePlan
    multiple: int
    height: int
    width: int
    read: Reader
    rows: tuple[list[tuple[int, int]], int]  # cores [a, b) down the image, and the window height
    cols: tuple[list[tuple[int, int]], int]  # cores across, and the window width

    def measure(self, norm: _GlobalNorm, k: int, halo: int) -> None:
        """Add up norm layer k's input over every core, each read with the ``halo`` layer k needs
        (``norm`` stops each forward at layer k); ``norm.finish(k)`` fixes the statistics."""
        norm.start(k)
        # Windows of the final pass's shape: a few more pixels computed in the early passes, but
        # one shape per image, so the convolution back end (oneDNN caches kernels and scratch
        # memory per input shape) and the allocator keep reusing the same few blocks of memory.
        rows, _ = _partition(self.height, self.rows[1], halo, self.multiple, shrink=False)
        cols, _ = _partition(self.width, self.cols[1], halo, self.multiple, shrink=False)
        side_y, side_x = min(self.height, self.rows[1]), min(self.width, self.cols[1])
        for ya, yb in rows:
            wy0, wy1 = _window(ya, yb, halo, self.height, side_y)
            for xa, xb in cols:
                wx0, wx1 = _window(xa, xb, halo, self.width, side_x)
                norm.window = (wy1 - wy0, wx1 - wx0)
                norm.core = (ya - wy0, yb - wy0, xa - wx0, xb - wx0)
                try:
                    self.generator(self.read(wy0, wy1, wx0, wx1))
                except _Reached:
                    continue
                raise RuntimeError(f"the forward never reached instance-norm layer {k}")

    def final_pass(self, channels: int, emit: Emitter) -> None:
        """Translate every tile and keep its core widened by the blend band, weighted so that the
        overlapping bands add up to one (``_weights_1d``); a row of the output is emitted as soon as
        no later tile reaches it."""
        (rows, side_y), (cols, side_x), blend = self.rows, self.cols, self.plan.blend
        acc = _Rows(channels, self.width, emit)
        for r, (ya, yb) in enumerate(rows):
            ly0, ly1, wy = _weights_1d(ya, yb, self.height, blend)
            wy0, wy1 = _window(ya, yb, self.plan.overlap, self.height, side_y)
            for xa, xb in cols:
                lx0, lx1, wx = _weights_1d(xa, xb, self.width, blend)
                wx0, wx1 = _window(xa, xb, self.plan.overlap, self.width, side_x)
                out = self.generator(self.read(wy0, wy1, wx0, wx1))[0, :, ly0 - wy0 : ly1 - wy0, lx0 - wx0 : lx1 - wx0]
                acc.add(ly0, lx0, out.to("cpu", torch.float32) * (wy[:, None] * wx[None, :]))
            acc.flush(rows[r + 1][0] - blend if r + 1 < len(rows) else self.height)


def tiled_translate(generator: nn.Module, x: torch.Tensor, tile: int = DEFAULT_TILE, overlap: int | None = None,
                    *, blend: int = BLEND, global_stats: bool = True) -> torch.Tensor:
    """Translate a batch N×C×H×W in [-1, 1] tile by tile; equal to ``translate_tensor(generator, x)``
    up to float rounding, in memory bounded by one ``tile``×``tile`` forward (see the module's notes).

    ``overlap`` is each tile's halo in pixels (None: the generator's receptive radius plus
    ``blend``, the least that is exact; less is raised to it with a ``TilingWarning``). Each image
    of the batch is translated on its own on the generator's device; the result is float32 on
    ``x``'s device. ``global_stats=False`` normalises every tile by its own statistics, the naive
    tiling (kept for comparisons: it changes colour from tile to tile).
    """
    layout = _layout(generator)
    plan = plan_tiles(generator, tile, overlap, blend)
    for note in plan.notes:
        warnings.warn(note, TilingWarning, stacklevel=2)
    n, _, height, width = x.shape
    hp, wp = ceil_to(height, layout.multiple), ceil_to(width, layout.multiple)
    reflect = (hp - height) < height and (wp - width) < width  # translate_tensor's choice
    param = next(generator.parameters())
    out = torch.empty(n, layout.out_channels, height, width, dtype=torch.float32, device=x.device)
    with torch.inference_mode():
        for i in range(n):

            def emit(y0, rows, i=i):
                y1 = min(height, y0 + rows.shape[1])
                if y1 > y0:
                    out[i, :, y0:y1] = rows[:, : y1 - y0, :width].to(out.device)

            read = _padded_reader(x[i], reflect, param)
            _run_tiled(generator, layout, plan, hp, wp, read, emit, global_stats)
    return out


def _padded_reader(image: torch.Tensor, reflect: bool, param: torch.Tensor) -> Reader:
    """Windows of the C×H×W ``image`` as if it were padded (reflected or clamped, ``_source_index``),
    by index arithmetic on each read rather than a padded copy, moved to ``param``'s device and dtype."""
    height, width = image.shape[-2:]

    def read(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        rows = _source_index(y0, y1, height, reflect)
        cols = _source_index(x0, x1, width, reflect)
        if rows[-1] == y1 - 1 and cols[-1] == x1 - 1:  # no padding in this window
            part = image[:, y0:y1, x0:x1]
        else:
            rows_t, cols_t = (torch.as_tensor(i, device=image.device) for i in (rows, cols))
            part = image[:, rows_t][:, :, cols_t]
        return part.unsqueeze(0).to(param.device, param.dtype)

    return read


