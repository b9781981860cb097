"""A trained translator next to the Gatys baseline (and doing nothing) on the same held-out images.

The translator is any run's generator of one direction: CycleGAN's, CUT's or FastCUT's (one way,
A→B), pix2pix's (the way ``pix2pix.direction`` says), a lone generator file. Its row in the
report is named by the method that trained it (``cyclegan``, ``cut``, ``pix2pix`` …: the run's
``method``; ``translator`` for a file without a config beside it). Such a run learns one
translation from two collections (unpaired, or pairs for pix2pix); Gatys et al. optimise every
image on its own towards the VGG feature statistics of one painting, or of a collection of them
(the average Gram matrices of K training images of the target domain). Which is better is a question
of quality *and* cost, so both are run on the same held-out images at the same size and reported
side by side: seconds and peak memory per method, FID/KID against the real held-out images of
the target domain, and PSNR/SSIM against the true translation where one is known (files given
with ``--paired-truth``, or on paired data such as pix2pix's each held-out image's partner), with
the identity (output = input) as the floor every method has to beat. With ``--fast-style RUN`` a
third generation of style transfer joins them: a fast feed-forward style network (Johnson et al.
2016, ``cyclestyle style-train``), one forward pass per image, on the same images.

Written under the output folder::

    comparison.json             metrics per method (layout in ``run_comparison``)
    index.html                  the metrics table, then one row of images per held-out image
    grid.png                    the same rows in one picture, the columns titled:
                                input | cyclegan (cut, pix2pix …) | fast-style | gatys-… | truth
    images/<column>/<name>.png  every image shown; the quality metrics are computed from these
                                8-bit files, i.e. from exactly what a reader sees

What is measured. ``seconds_per_image``: wall time of the translation or optimisation alone,
averaged over the images (loading the network, decoding and writing files excluded; CUDA work
synchronised). ``peak_memory_mib``: the peak increase over the method's start, its network's
loading included: on a GPU, memory allocated by torch (``max_memory_allocated``, exact); on a
CPU, the process's resident set, sampled every 5 ms by a thread, after garbage collection and
handing freed heap pages back to the OS (a shorter spike can be missed, and freed memory the C
library keeps and this method reuses does not count: a lower bound).
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..config import DataConfig
from ..data import (
    DataError,
    FolderSource,
    Source,
    image_to_tensor,
    is_paired,
    list_images,
    load_image,
    open_domains,
    tensor_to_image,
    verify_image,
)
from ..devices import default_device
from ..files import check_output
from ..inference.run import DIRECTIONS, TrainedRun, open_run
from ..inference.translate import translate_tensor
from ..style import gatys
from . import metrics, registry, reports
from .evaluate import (
    FeatureStream,
    find_truth,
    held_out_features,
    output_names,
    prepare,
    read_truth,
    to_8bit,
    truth_of,
    unit,
)

DEFAULT_COLLECTION = 8  # training images of the target domain averaged when no style is chosen
GRID_MAX_ROWS = 100  # grid.png stays a picture one can open; index.html shows every image
COST_COLUMNS = (("seconds_per_image", "s / image"), ("peak_memory_mib", "peak MiB"))
MEASURES = {  # the costs; the quality metrics are the registered ones (``quality_metrics``)
    "seconds_per_image": "wall time of the translation or optimisation alone, per image (network loading "
                         "and file input/output excluded)",
    "peak_memory_mib": "peak increase over the method's start, network loading included: torch's allocated "
                       "CUDA memory on a GPU; on a CPU the process's resident set sampled every 5 ms (a lower "
                       "bound: freed memory the C library kept and the method reused is not counted)",
}


def quality_metrics() -> tuple[registry.Metric, ...]:
    """The registered metrics a comparison can compute: every one but those that need a
    reconstruction (Gatys and the identity have no way back)."""
    return registry.registered(["truth", "input", "features"])


def measures() -> dict[str, str]:
    """comparison.json's ``measures``: what each measure is."""
    return {**MEASURES, registry.group_name(quality_metrics()): "computed from the 8-bit PNGs written under images/"}


# --------------------------------------------------------------------------------------------
# Measuring a method


class _PeakMemory:
    """Peak memory increase of a ``with`` block, in MiB (``.mib`` after the block); see the
    module's notes for what is measured on a GPU and on a CPU."""

    def __init__(self, device: torch.device):
        self.device, self.mib = device, 0.0

    def __enter__(self) -> _PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            _release_freed_memory()
            process = psutil.Process()
            self._base = self._peak = process.memory_info().rss
            self._stop = threading.Event()

            def sample() -> None:
                while not self._stop.wait(0.005):
                    self._peak = max(self._peak, process.memory_info().rss)

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, psutil.Process().memory_info().rss)
        self.mib = max(0, peak - self._base) / 2**20


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's ``malloc_trim``), so that
    the previous method's freed memory neither inflates this one's baseline nor hides its peak."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measure is then a lower bound, as documented
        pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class _Method:
    """One translation method. ``load`` builds what it needs (its network, which counts towards
    its memory) and returns the map from a 1×C×H×W input in [0, 1] to an output of the same size."""

    name: str
    load: Callable[[], Callable[[Tensor], Tensor]]
    about: dict[str, Any] = field(default_factory=dict)  # extra comparison.json fields
    png_text: dict[str, str] = field(default_factory=dict)  # written into each output PNG


def _run_method(method: _Method, names: list[str], output: Path, channels: int, device: torch.device,
                progress: bool) -> dict[str, Any]:
    """Translate every input with ``method``, write images/<method>/<name>.png, measure time and memory."""
    folder = output / "images" / method.name
    folder.mkdir(parents=True, exist_ok=True)
    seconds = 0.0
    with _PeakMemory(device) as memory:
        apply = method.load()
        for name in tqdm(names, desc=method.name, disable=not progress, unit="img"):
            x = _read(output / "images" / "input" / f"{name}.png", channels).to(device)
            _sync(device)
            start = time.perf_counter()
            y = apply(x)
            _sync(device)
            seconds += time.perf_counter() - start
            _save(y.detach().cpu(), folder / f"{name}.png", method.png_text)
    del apply  # free the network before the next method's baseline is taken
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"seconds_per_image": seconds / len(names), "peak_memory_mib": memory.mib}


def _translator(name: str, run: TrainedRun, direction: str, device: torch.device) -> _Method:
    """A trained network (a run's generator, a fast style network), fed its input exactly as
    ``evaluate`` feeds it (the PNG read as ``image_to_tensor`` reads it, without the float noise
    of x * 2 - 1) and rounded as ``evaluate`` rounds: both commands write, and score, the same
    pixels."""

    def load() -> Callable[[Tensor], Tensor]:
        generator = run.generator(direction, device)

        @torch.inference_mode()
        def apply(x: Tensor) -> Tensor:
            return unit(to_8bit(translate_tensor(generator, to_8bit(x * 2 - 1))))

        return apply

    return _Method(name, load, {"weights": str(run.file(direction)),
                                "method": run.config.method if run.config else None})


RESERVED_COLUMNS = ("input", "truth", "identity", "fast-style", "gatys-style", "gatys-collection")


def translator_column(run: TrainedRun) -> str:
    """The row (and ``images/`` folder) of a run's translator in a comparison: the name of the
    method that trained it ("cyclegan", as every report before other methods were compared, "cut",
    "pix2pix" …), "translator" when no config says; ``run-NAME`` if that is another column's name."""
    name = run.config.method if run.config is not None else "translator"
    return f"run-{name}" if name in RESERVED_COLUMNS else name


class DirectionUnavailable(DataError):
    """``--direction`` names a way the run does not translate (a one-way method's other way):
    a usage error, one line naming the directions it has."""


def _fast_style(path: Path, channels: int) -> TrainedRun:
    """A ``style-train`` run (its one network, AtoB), which stylises whatever held-out photos the
    comparison takes; a ``CheckpointError`` or ``DataError`` naming it before any work."""
    run = open_run(path)
    run.file("AtoB")
    if channels != 3 or run.in_channels("AtoB") != 3:
        raise DataError(f"--fast-style {path}: a style network takes colour photos, these held-out images "
                        f"have {channels} channel(s)")
    return run


@dataclass(frozen=True)
class _Baseline:
    """How the Gatys variants run: the ``--style`` entries and their files (one list per entry),
    the collection size, the optimisation settings (and their comparison.json form) and the VGG19
    weights as asked for and as loaded."""

    style: list[Path]
    style_files: list[list[Path]]
    collection: int | None
    config: gatys.GatysConfig
    settings: dict[str, Any]
    vgg_weights: str | None
    vgg_source: str


def _gatys(name: str, styles: list[list[Tensor]], baseline: _Baseline, device: torch.device,
           about: dict[str, Any]) -> _Method:
    """A Gatys variant: each style entry is one image or a collection (average Gram matrices),
    entries blended with equal weights; each output has its input's size (the config's ``size``
    is replaced by the input's long side)."""
    cfg = baseline.config

    def load() -> Callable[[Tensor], Tensor]:
        vgg = gatys.load_vgg19(baseline.vgg_weights, cfg.pooling, device, cfg.layers)
        cache: dict = {}  # style targets depend on the long side only: shared by same-size images

        def apply(x: Tensor) -> Tensor:
            image_cfg = dataclasses.replace(cfg, size=max(x.shape[-2:]))
            return gatys.stylize(x, styles, image_cfg, vgg, progress=False, style_cache=cache).image

        return apply

    text = {"cyclestyle.vgg": baseline.vgg_source, "cyclestyle.gatys": json.dumps(about, default=str)}
    return _Method(name, load, about, text)


def _gatys_methods(baseline: _Baseline, setting: _Setting, device: torch.device, notes: list[str]) -> list[_Method]:
    """"gatys-style" when styles were given, "gatys-collection" when a collection was asked for."""
    longest = baseline.config.size * baseline.config.style_scale  # style images are never used larger
    methods = []
    if baseline.style:
        images = [[gatys.load_uint8(p, longest) for p in entry] for entry in baseline.style_files]
        methods.append(_gatys("gatys-style", images, baseline, device,
                              {"style": [str(p) for p in baseline.style], "settings": baseline.settings}))
    if baseline.collection is not None:
        train_target = _domain(setting.data, setting.data.train_split, setting.target, 3)
        images, described = _collection(train_target, baseline.collection, longest, notes)
        methods.append(_gatys("gatys-collection", [images], baseline, device,
                              {"collection": baseline.collection, "style": described, "settings": baseline.settings}))
    if baseline.vgg_source == "random":
        notes.append("Gatys outputs were made with random VGG19 weights (--vgg-weights random): "
                     "they are not real style transfers")
    return methods


# --------------------------------------------------------------------------------------------
# Images


def _read(path: Path, channels: int) -> Tensor:
    """A 1×C×H×W tensor in [0, 1] of an image this module wrote."""
    return unit(image_to_tensor(load_image(path, channels)).unsqueeze(0))


def _save(image: Tensor, path: Path, text: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    tensor_to_image(image[0].clamp(0, 1) * 2 - 1).save(path, pnginfo=info)


def _domain(cfg: DataConfig, split: str, domain: str, channels: int) -> Source:
    """One domain of a split (for a folder dataset, the other domain's folder need not exist)."""
    if cfg.format == "folder" and not is_paired(cfg):
        return FolderSource(Path(cfg.root).expanduser() / f"{split}{domain}", channels=channels)
    source_a, source_b = open_domains(cfg, split, channels)
    return source_a if domain == "A" else source_b


def _write_inputs(source: Source, count: int, size: int | None, truth: dict[str, Path], output: Path,
                  notes: list[str], partner: Source | None = None) -> tuple[list[str], set[str]]:
    """Read the first ``count`` held-out images once, resized to ``size``, into images/input/ and
    their true translations (a file of ``truth`` by name, else item i of ``partner``, the other
    image of a pair), resized to the same size, into images/truth/: every method then reads the
    same pixels and is judged against the same truth. Returns the names and those with a truth."""
    names: list[str] = []
    with_truth: set[str] = set()
    for i, name in enumerate(output_names(source, count)):
        try:
            x = prepare(source.load(i), size, source.describe(i))
        except DataError as e:
            notes.append(f"skipped {e}")
            continue
        names.append(name)
        _save(unit(x), output / "images" / "input" / f"{name}.png")
        true = truth_of(truth, name, source, i)
        if true is None and partner is not None:
            true = partner.load(i, x.shape[1])
        if true is not None:
            _save(read_truth(true, x.shape[1], tuple(x.shape[-2:])), output / "images" / "truth" / f"{name}.png")
            with_truth.add(name)
        else:  # an earlier comparison's truth in the same folder is not this one's
            (output / "images" / "truth" / f"{name}.png").unlink(missing_ok=True)
    return names, with_truth


def _collection(source: Source, k: int, long_side: float, notes: list[str]) -> tuple[list[Tensor], list[str]]:
    """The first ``k`` readable images of ``source`` as style images, and what they are."""
    images, described = [], []
    for i in range(len(source)):
        if len(images) == k:
            break
        try:
            images.append(gatys.image_uint8(source.load(i, 3), long_side))
            described.append(source.describe(i))
        except DataError as e:
            notes.append(f"skipped {e}")
    if not images:
        raise DataError(f"--collection {k}: no readable image in {source.name}")
    if len(images) < k:
        notes.append(f"--collection {k}: only {len(images)} readable images in {source.name}, all of them used")
    return images, described


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


# --------------------------------------------------------------------------------------------
# Quality


def _quality(column: str, names: list[str], with_truth: set[str], output: Path, channels: int,
             extractor: nn.Module | None, real: Tensor | None, device: torch.device, notes: list[str]
             ) -> dict[str, float | None]:
    """The quality metrics of a column's images: the per-image ones averaged over the images
    (those with a truth, for the metrics that need one), the feature ones against the real
    target-domain features."""
    images = output / "images"
    chosen = quality_metrics()
    wants_input = any(m.needs == "input" for m in chosen)
    fakes = FeatureStream(extractor, 16, device) if extractor is not None and real is not None else None
    per_image = []
    for n in names:
        translated = _read(images / column / f"{n}.png", channels)
        if fakes is not None:
            fakes.add(translated)
        sample = registry.Images(
            input=_read(images / "input" / f"{n}.png", channels) if wants_input else translated,
            translated=translated,
            truth=_read(images / "truth" / f"{n}.png", channels) if n in with_truth else None)
        per_image.append(registry.measure_image(chosen, sample))
    out: dict[str, float | None] = dict.fromkeys(registry.outputs(chosen)) | registry.means(per_image)
    if fakes is not None:
        measured, failed = registry.measure_sets(chosen, real, fakes.result())
        out |= measured
        if failed:
            notes.append(f"{column}: {registry.failure_note(failed)}")
    return out


# --------------------------------------------------------------------------------------------
# The comparison


@dataclass(frozen=True)
class _Setting:
    """What a comparison works on, resolved from the options and the run before any method runs."""

    run: TrainedRun
    direction: str
    generator_path: Path
    data: DataConfig
    channels: int
    size: int | None  # the short side the held-out images are resized to
    held_out: Source  # the source domain's held-out images
    truth: dict[str, Path]  # their true translations by name
    partner: Source | None  # paired data: item i of the target domain is item i's true translation
    column: str  # the translator's row and images/ folder (``translator_column``)

    @property
    def target(self) -> str:
        return DIRECTIONS[self.direction].target


def _check_options(direction: str | None, style: list[Path], collection: int | None, limit: int | None,
                   gatys_steps: int, size: int | None, fid_protocol: str) -> list[list[Path]]:
    """A bad option is a ``DataError`` naming it, before any work; returns the style files, one
    list per ``--style`` entry (a folder's images)."""
    if direction is not None and direction not in DIRECTIONS:
        raise DataError(f"--direction must be AtoB or BtoA, got {direction!r}")
    for option, value in (("--collection", collection), ("--limit", limit), ("--gatys-steps", gatys_steps),
                          ("--size", size)):
        if value is not None and value < 1:
            raise DataError(f"{option} must be at least 1, got {value}")
    if fid_protocol not in metrics.FID_PROTOCOLS:
        raise DataError(f"--fid-protocol must be one of {', '.join(metrics.FID_PROTOCOLS)}, got {fid_protocol!r}")
    style_files = [list_images(p) if p.is_dir() else [p] for p in style]
    for entry in style_files:
        for p in entry:
            if not p.is_file():
                raise DataError(f"--style {p}: no such file")
            verify_image(p)
    return style_files


def _open_setting(weights: Path, data_root: Path, direction: str | None, size: int | None,
                  paired_truth: Path | None) -> _Setting:
    """The run, its held-out images of the source domain and their true translations."""
    run = open_run(weights)
    if direction is None:  # a one-way run's only way, else AtoB
        direction = "AtoB" if "AtoB" in run.translators or "AtoB" in run.missing else next(iter(run.translators))
    _check_direction(run, weights, direction)
    generator_path, cfg = run.file(direction), run.config
    data_cfg = dataclasses.replace(cfg.data if cfg else DataConfig(), root=str(data_root))
    channels = (cfg.model.in_channels if direction == "AtoB" else cfg.model.out_channels) if cfg else 3
    size = size or (cfg.data.crop_size if cfg else None)
    source, target = DIRECTIONS[direction].source, DIRECTIONS[direction].target
    if is_paired(data_cfg):  # pairs (pix2pix's data): item i of the target domain is item i's truth
        pair = dict(zip("AB", open_domains(data_cfg, data_cfg.test_split, channels)))
        held_out, partner = pair[source], pair[target]
    else:
        held_out, partner = _domain(data_cfg, data_cfg.test_split, source, channels), None
    if paired_truth is not None and not paired_truth.is_dir():
        raise DataError(f"--paired-truth {paired_truth}: no such folder")
    truth = find_truth(paired_truth, direction)
    if paired_truth is not None and not truth:
        raise DataError(f"--paired-truth {paired_truth}: no {direction}/ folder there (or images directly in it, "
                        "for AtoB)")
    return _Setting(run, direction, generator_path, data_cfg, channels, size, held_out, truth, partner,
                    translator_column(run))


def _check_direction(run: TrainedRun, weights: Path, direction: str) -> None:
    """A ``DirectionUnavailable`` naming the directions ``run`` translates when ``direction`` is not
    one of them (a generator file the run should have but lacks is ``run.file``'s error)."""
    if direction in run.translators or direction in run.missing:
        return
    has = [d for d in DIRECTIONS if d in run.translators]
    what = f"{weights} is a {run.config.method} run, which" if run.config is not None else str(weights)
    raise DirectionUnavailable(f"--direction {direction}: {what} translates {' and '.join(has)} only; "
                               f"use --direction {has[0]}")


def _inputs(setting: _Setting, limit: int | None, output: Path, notes: list[str]) -> tuple[list[str], set[str]]:
    """The held-out images every method translates, written once (``_write_inputs``), with notes
    on how many were used, their size and how many have a true translation."""
    held_out, size = setting.held_out, setting.size
    count = len(held_out) if limit is None else min(limit, len(held_out))
    names, with_truth = _write_inputs(held_out, count, size, setting.truth, output, notes, setting.partner)
    if not names:
        raise DataError(f"no readable held-out image in {held_out.name}")
    if count < len(held_out):
        notes.append(f"the first {count} of {len(held_out)} held-out images were used (--limit)")
    if size is not None:
        notes.append(f"images resized so the short side is {size} px; every method's output has that size")
    on_truth = registry.group_name(m for m in quality_metrics() if m.needs == "truth")
    if setting.partner is not None and on_truth:
        notes.append(f"{on_truth} against each held-out image's partner: the data is paired"
                     + (" (--paired-truth files first, by name)" if setting.truth else ""))
    if setting.truth and on_truth and not with_truth:
        notes.append(f"{on_truth} not computed: no ground truth matched a held-out image by file name")
    elif setting.truth and on_truth and len(with_truth) < len(names):
        notes.append(f"{on_truth} over the {len(with_truth)} of {len(names)} images with a ground truth "
                     "of the same name")
    return names, with_truth


def _gatys_config(names: list[str], output: Path, steps: int, seed: int) -> tuple[gatys.GatysConfig, dict[str, Any]]:
    """Gatys's settings for these inputs, and their comparison.json form (``size``: the inputs'
    long side, or every long side there is); an input too small for VGG19 is a ``DataError``."""
    shapes = {n: _image_size(output / "images" / "input" / f"{n}.png") for n in names}
    for name, (w, h) in shapes.items():
        if min(w, h) < gatys.MIN_SIDE:
            raise DataError(f"held-out image {name} is {w}×{h} px after resizing: Gatys's VGG19 needs at least "
                            f"{gatys.MIN_SIDE} px a side (raise --size)")
    long_sides = sorted({max(s) for s in shapes.values()})
    cfg = gatys.GatysConfig(size=long_sides[-1], steps=steps, seed=seed)
    return cfg, {**dataclasses.asdict(cfg), "size": long_sides[0] if len(long_sides) == 1 else long_sides}


def _run_methods(methods: list[_Method], names: list[str], with_truth: set[str], output: Path, channels: int,
                 device: torch.device, progress: bool) -> dict[str, dict[str, Any]]:
    """Every method's costs, the identity first when there is a truth to judge it against."""
    results: dict[str, dict[str, Any]] = {}
    if with_truth:
        results["identity"] = {"seconds_per_image": 0.0, "peak_memory_mib": 0.0}  # nothing is computed
    for method in methods:
        results[method.name] = _run_method(method, names, output, channels, device, progress)
    return results


def _real_features(extractor: nn.Module | None, inception_weights: str | None, fid_protocol: str,
                   setting: _Setting, device: torch.device, notes: list[str]
                   ) -> tuple[nn.Module | None, Tensor | None]:
    """The feature network and the features of the target domain's real held-out images; None
    (and a note) where they cannot be had."""
    on_features = registry.group_name(m for m in quality_metrics() if m.needs == "features")
    if extractor is None and on_features:
        try:
            extractor = metrics.load_inception(inception_weights, fid_protocol)
        except metrics.MissingWeightsError as e:
            notes.append(f"{on_features} not computed: {e}")
    if extractor is None or not on_features:
        return extractor, None
    try:  # the methods' outputs are written: a missing target domain costs FID/KID only
        target = _domain(setting.data, setting.data.test_split, setting.target, setting.channels)
        return extractor, held_out_features(target, setting.size, extractor, 16, device, notes)
    except DataError as e:
        notes.append(f"{on_features} not computed: {e}")
        return extractor, None


def _summary(setting: _Setting, names: list[str], methods: list[_Method], results: dict[str, dict[str, Any]],
             with_truth: set[str], vgg_source: str, fid_protocol: str, device: torch.device, notes: list[str]
             ) -> dict[str, Any]:
    """What comparison.json holds (layout in ``run_comparison``)."""
    columns = ["input", *(m.name for m in methods), *(["truth"] if with_truth else [])]
    if len(names) > GRID_MAX_ROWS:
        notes.append(f"grid.png shows the first {GRID_MAX_ROWS} of {len(names)} images; index.html shows all")
    return {
        "direction": setting.direction, "n": len(names), "images": names, "size": setting.size,
        "device": str(device), "weights": str(setting.generator_path), "step": setting.run.step,
        "translator": setting.column,
        "methods": results, "grid_columns": columns, "vgg_weights": vgg_source, "measures": measures(),
        "notes": notes, "fid_protocol": fid_protocol,
    }


def _write_comparison(comparison: dict[str, Any], output: Path) -> dict[str, Any]:
    """comparison.json, grid.png and index.html; returns exactly what the file holds (tuples as lists)."""
    text = json.dumps(comparison, indent=2)
    (output / "comparison.json").write_text(text + "\n")
    columns, names = comparison["grid_columns"], comparison["images"]
    reports.write_grid(output / "grid.png", [[output / "images" / column / f"{name}.png" for column in columns]
                                             for name in names[:GRID_MAX_ROWS]], titles=columns)
    title = f"cyclestyle compare {comparison['direction']}: {comparison['weights']}"
    reports.write_page(output / "index.html", title, report_blocks(comparison, output))
    return json.loads(text)


def run_comparison(
    weights: str | Path, data_root: str | Path, output: str | Path, *, direction: str | None = None,
    style: Sequence[str | Path] = (),
    collection: int | None = None, limit: int | None = None, paired_truth: str | Path | None = None,
    size: int | None = None, vgg_weights: str | None = None, inception_weights: str | None = None,
    gatys_steps: int = 300, seed: int = 0, device: str | torch.device | None = None, progress: bool = True,
    extractor: nn.Module | None = None, fid_protocol: str = metrics.DEFAULT_FID_PROTOCOL,
    fast_style: str | Path | None = None,
) -> dict[str, Any]:
    """Translate the held-out images of the source domain with the run's generator of ``direction``
    and with Gatys, measure both, and write the report; returns what ``comparison.json`` holds::

        {"direction": "AtoB", "n": N, "images": [names], "size": S, "device": "cpu", "step": …,
         "translator": "cyclegan",
         "methods": {"identity": {…}, "cyclegan": {…}, "gatys-style": {…}, "gatys-collection": {…}},
         "grid_columns": ["input", "cyclegan", "gatys-style", …, "truth"], "vgg_weights": …,
         "measures": {what each measure is}, "notes": [...], "fid_protocol": "clean"}

    ``translator``: the run's row in ``methods`` and column in the grid, named by the method that
    trained it (``translator_column``: "cyclegan", "cut", "pix2pix" …); its ``method`` field says
    the same. ``direction`` None: AtoB, or the only way a one-way run translates (a pix2pix run
    trained BtoA); a direction the run does not translate (CUT's B→A) is a ``DirectionUnavailable``.
    Paired data (the run's ``data.format: aligned`` or ``data.paired``) gives every held-out image
    its truth, the other image of its pair.

    Every method has ``seconds_per_image``, ``peak_memory_mib``, the outputs of the quality metrics
    (``fid``, ``kid``, ``kid_std``, ``psnr``, ``ssim``: ``null`` where not computable, the reason
    in ``notes``) and ``n``, the same for all. ``identity`` (output = input) is there when a true translation matched.

    ``style``: style image files (a folder: the average style of its images), blended equally
    into one variant, "gatys-style"; ``collection``: K, the "gatys-collection" variant, the
    average style of the first K training images of the target domain (default 8 when no style
    is given). ``size``: the short side the held-out images are resized to (default: the run's
    ``data.crop_size``); Gatys makes its outputs at that size too. ``vgg_weights``: None for the
    ImageNet weights in torch's cache, a path, or "random" (the outputs then say so).
    ``fast_style``: a ``style-train`` run, the "fast-style" row: its network (Johnson et al.
    2016) stylises the same held-out images. ``extractor``: the FID/KID feature network (default:
    the FID Inception, if its weights are here). ``fid_protocol``: how the FID Inception's input is resized (``metrics.FID_PROTOCOLS``),
    written as comparison.json's ``fid_protocol``. Bad input raises ``DataError`` or
    ``CheckpointError`` naming it, before any method runs.
    """
    output, paired_truth = Path(output), Path(paired_truth) if paired_truth is not None else None
    check_output(output, folder=True, error=DataError)
    style = [Path(p).expanduser() for p in style]
    style_files = _check_options(direction, style, collection, limit, gatys_steps, size, fid_protocol)
    if not style and collection is None:
        collection = DEFAULT_COLLECTION
    vgg_source = gatys.load_vgg19(vgg_weights, layers=("relu1_1",)).source  # missing weights: fail now
    device = default_device(device)
    setting = _open_setting(weights, data_root, direction, size, paired_truth)
    fast_style_run = _fast_style(Path(fast_style).expanduser(), setting.channels) if fast_style else None

    output.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    names, with_truth = _inputs(setting, limit, output, notes)
    gatys_cfg, settings = _gatys_config(names, output, gatys_steps, seed)
    baseline = _Baseline(style, style_files, collection, gatys_cfg, settings, vgg_weights, vgg_source)
    methods = [_translator(setting.column, setting.run, setting.direction, device),
               *([_translator("fast-style", fast_style_run, "AtoB", device)] if fast_style_run else []),
               *_gatys_methods(baseline, setting, device, notes)]
    results = _run_methods(methods, names, with_truth, output, setting.channels, device, progress)

    extractor, real = _real_features(extractor, inception_weights, fid_protocol, setting, device, notes)
    about = {m.name: m.about for m in methods}
    for name, result in results.items():
        column = "input" if name == "identity" else name
        result |= _quality(column, names, with_truth, output, setting.channels, extractor, real, device, notes)
        result |= {"n": len(names), **about.get(name, {})}
    comparison = _summary(setting, names, methods, results, with_truth, vgg_source, fid_protocol, device, notes)
    return _write_comparison(comparison, output)


# --------------------------------------------------------------------------------------------
# Reports


def report_blocks(comparison: dict[str, Any], output: Path) -> list[reports.Block]:
    """index.html: the metrics per method first, then one row of images per held-out image."""
    columns = tuple(comparison["grid_columns"])
    table_columns = [("n", "n"), *COST_COLUMNS, *reports.metric_columns(quality_metrics())]

    def shown(name: str, column: str) -> str | None:  # a missing truth is an empty cell
        src = f"images/{column}/{name}.png"
        return src if (output / src).is_file() else None

    blocks: list[reports.Block] = [reports.Paragraph(
        f"{comparison['n']} held-out images · device {comparison['device']} · "
        f"VGG19 weights {comparison['vgg_weights']}")]
    if comparison["vgg_weights"] == "random":
        blocks.append(reports.Paragraph("The Gatys outputs were made with random VGG19 weights: they are not real "
                                        "style transfers.", strong=True))
    if comparison.get("fid_protocol"):
        blocks.append(reports.Paragraph(metrics.describe_fid_protocol(comparison["fid_protocol"])))
    return [*blocks,
            reports.metrics_table("method", comparison["methods"], table_columns),
            reports.Notes(tuple(f"{k}: {v}" for k, v in comparison["measures"].items())),
            reports.Notes(tuple(comparison["notes"])),
            reports.ImageRows(columns, tuple((name, tuple(shown(name, c) for c in columns))
                                             for name in comparison["images"]))]
