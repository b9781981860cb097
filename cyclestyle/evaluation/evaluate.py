"""Judging trained translators on held-out images: every test image, both directions.

For each direction (A→B with G_A, B→A with G_B) and every held-out image x, the translation
G(x) and the reconstruction F(G(x)) are written to disk and measured with every registered
metric (``registry.py``). A run of a one-way method (CUT: G_A only) is evaluated A→B alone,
without reconstructions; ``metrics.json`` has ``"BtoA": null`` and a note that it is not trained.

- ``fid`` and ``kid``: translated images against the real held-out images of the target domain;
- ``cycle_l1``: mean |F(G(x)) − x| on the [0, 1] pixel scale;
- ``psnr`` and ``ssim``: G(x) against the true translation of x, when one is given
  (``--paired-truth``, matched by file name).

Every metric scores the 8-bit images a user gets: G(x) is rounded to 8 bits as its PNG is before
it is measured or translated back, as are the true translations, so that ``evaluate`` and
``compare`` (which reads its PNGs back) give one model one score.

Results go to ``metrics.json`` (``null`` where a metric could not be computed, with the reason
in ``notes``) and an HTML page of real | translated | reconstructed (| truth) rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from ..config import Config, ConfigError, DataConfig, config_hash, split_metric
from ..data import (DataError, Source, image_to_tensor, is_paired, list_images, load_image, open_domains,
                    tensor_to_image)
from ..devices import default_device
from ..files import check_output
from ..inference.run import TrainedRun, open_run
from ..inference.translate import (CompiledGenerator, has_batch_norm, resize_short_side, test_mode, translate_tensor,
                                   wants_compile)
from ..models.weights import generator_spec_of
from . import metrics, registry, reports

DIRECTIONS = (("AtoB", "A", "B"), ("BtoA", "B", "A"))
EIGHT_BIT_NOTE = ("metrics scored on the 8-bit images, as their PNGs hold them: each translation is rounded to "
                  "8 bits before it is measured or translated back")


@dataclass(frozen=True)
class DirectionMetrics:
    """One direction's images counted and its metrics: every registered output, in registration
    order, None where it could not be computed (the reason is in ``Evaluation.notes``)."""

    n: int = 0
    values: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, **self.values}


@dataclass
class Evaluation:
    """What ``evaluate`` measured; ``to_json`` gives the ``metrics.json`` layout."""

    directions: dict[str, DirectionMetrics] = field(default_factory=dict)
    step: int | None = None
    config_hash: str | None = None
    fid_protocol: str | None = None  # how FID/KID resized images for Inception (metrics.FID_PROTOCOLS)
    notes: list[str] = field(default_factory=list)
    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # for the HTML page
    untrained: list[str] = field(default_factory=list)  # directions the run has no generator for (null)
    seconds: float | None = None  # ``evaluate``: translating and measuring, loading excluded (not in metrics.json)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: m.to_json() for name, m in self.directions.items()}
        out |= dict.fromkeys(self.untrained)
        out |= {"step": self.step, "config_hash": self.config_hash, "fid_protocol": self.fid_protocol,
                "notes": self.notes}
        return out


# --------------------------------------------------------------------------------------------
# Images in, tensors out


def prepare(img: Image.Image, size: int | None, source: str = "") -> torch.Tensor:
    """A 1×C×H×W tensor in [-1, 1], the short side resized to ``size`` (bicubic) when given.

    Resizing has the caps of every other command (``data.short_side_size``): past them it is an
    ``ImageSizeError`` naming ``source``, which the callers skip and note like an unreadable image,
    rather than a strip blown up to gigabytes."""
    if size is not None:
        img = resize_short_side(img, size, source)
    return image_to_tensor(img).unsqueeze(0)


def unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1]."""
    return (x.clamp(-1, 1) + 1) / 2


def to_8bit(x: torch.Tensor) -> torch.Tensor:
    """``x`` ([-1, 1]) as its PNG holds it: rounded as ``data.tensor_to_image`` rounds, read back
    as ``data.image_to_tensor`` reads (bit for bit), so that the metrics score what is written."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().div(127.5).sub(1)


def _safe_stem(source: Source, i: int) -> str:
    """Item i's file stem (or ``row-N`` for a dataset row), file-system-safe."""
    text = source.describe(i)
    stem = Path(text).stem if "row " not in text else "row-" + text.rsplit("row ", 1)[1]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)


def output_names(source: Source, count: int) -> list[str]:
    """The output names of the first ``count`` items, every one distinct, also on a
    case-insensitive disk: the file's stem, ``-{i}`` added when an earlier item took it
    (``a.jpg`` and ``a.png``, ``x/a.png`` and ``y/a.png``), so that no output overwrites another.
    A name depends on the file list only, not on which images turn out readable."""
    names: list[str] = []
    taken: set[str] = set()
    for i in range(count):
        name = _safe_stem(source, i)
        while name.casefold() in taken:  # twice only when a file's own stem is "a-{i}"
            name = f"{name}-{i}"
        taken.add(name.casefold())
        names.append(name)
    return names


def _note_once(notes: list[str], note: str) -> None:
    """Add ``note`` unless it is there: ``evaluate`` reads each domain twice (the images to
    translate, the real images of the other direction), and one unreadable image is one note."""
    if note not in notes:
        notes.append(note)


def readable_images(source: Source, size: int | None, notes: list[str]) -> Iterator[tuple[int, torch.Tensor]]:
    """Every readable image of a held-out domain; an unreadable one is noted (once) and skipped."""
    for i in range(len(source)):
        try:
            yield i, prepare(source.load(i), size, source.describe(i))
        except DataError as e:
            _note_once(notes, f"skipped {e}")


class FeatureStream:
    """Features of [0, 1] images fed one at a time, extracted in batches of equal-size images,
    so a large test set is never held in memory as pixels. A grey image (1 channel) is given to
    the extractor as RGB with three equal channels: FID's Inception, like every such network,
    takes RGB only."""

    def __init__(self, extractor: nn.Module, batch_size: int, device: torch.device | str):
        self.extractor, self.batch_size, self.device = extractor, batch_size, device
        self.pending: list[torch.Tensor] = []
        self.features: list[torch.Tensor] = []

    def add(self, image: torch.Tensor) -> None:
        if image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        if self.pending and (len(self.pending) == self.batch_size or self.pending[0].shape != image.shape):
            self._flush()
        self.pending.append(image)

    def _flush(self) -> None:
        if self.pending:
            self.features.append(metrics.extract_features(self.extractor, [torch.cat(self.pending)], self.device))
            self.pending = []

    def result(self) -> torch.Tensor:
        self._flush()
        return torch.cat(self.features)


def held_out_features(source: Source, size: int | None, extractor: nn.Module, batch_size: int,
                      device: torch.device | str, notes: list[str]) -> torch.Tensor:
    """The features of every readable image of a held-out domain: the real side of FID/KID."""
    stream = FeatureStream(extractor, batch_size, device)
    for _, x in readable_images(source, size, notes):
        stream.add(unit(x))
    return stream.result()


def find_truth(truth_dir: Path | None, direction: str) -> dict[str, Path]:
    """Ground-truth translations by file stem: ``DIR/AtoB/`` and ``DIR/BtoA/`` when present,
    otherwise the images directly in ``DIR`` are the truth for A→B."""
    if truth_dir is None:
        return {}
    sub = truth_dir / direction
    if sub.is_dir():
        folder = sub
    elif direction == "AtoB" and not (truth_dir / "BtoA").is_dir():
        folder = truth_dir
    else:
        return {}
    return {p.stem: p for p in list_images(folder)}


def truth_of(truth: dict[str, Path], name: str, source: Source, i: int) -> Path | None:
    """Item i's true translation: the one named like its output (``a-1``), else the one of its
    file's stem (``a``)."""
    return truth.get(name) or truth.get(Path(source.describe(i)).stem)


def read_truth(path: Path | Image.Image, channels: int, shape: tuple[int, ...]) -> torch.Tensor:
    """A true translation (a file, or the image of a pair) as a 1×C×H×W tensor in [0, 1], resized
    (bicubic) to ``shape`` (H, W) if it differs, since it is compared with the translation pixel by
    pixel, and then 8-bit again."""
    image = path if isinstance(path, Image.Image) else load_image(path, channels=channels)
    true = unit(prepare(image, None))
    if true.shape[-2:] != shape:
        true = F.interpolate(true, size=shape, mode="bicubic", antialias=True)
    return unit(to_8bit(true * 2 - 1))


# --------------------------------------------------------------------------------------------
# The evaluation


@dataclass(frozen=True)
class _Task:
    """One direction of an evaluation: the generators there and back, the first ``count`` held-out
    images of its source domain, their true translations by name, and where images are written."""

    direction: str
    forward: nn.Module
    backward: nn.Module | None  # None: no generator back (a one-way method), so no reconstruction
    source: Source
    count: int
    truth: dict[str, Path]
    output: Path | None
    size: int | None
    device: torch.device | str
    partner: Source | None = None  # paired data: item i of the target domain is item i's true translation

    def truth_image(self, name: str, i: int, channels: int) -> Path | Image.Image | None:
        """Item i's true translation: a file of ``truth`` by name, else the other image of its pair."""
        found = truth_of(self.truth, name, self.source, i)
        if found is None and self.partner is not None:
            return self.partner.load(i, channels)
        return found


@dataclass(frozen=True)
class _Translation:
    """One held-out image, its translation and reconstruction (1×C×H×W in [-1, 1] on the device;
    no reconstruction without a generator back) and its true translation ([0, 1] on the CPU; None
    when none matched)."""

    real: torch.Tensor
    translated: torch.Tensor
    reconstructed: torch.Tensor | None
    truth: torch.Tensor | None

    def images(self) -> registry.Images:
        """What the metrics take: [0, 1] on the CPU."""
        reconstructed = None if self.reconstructed is None else unit(self.reconstructed).cpu()
        return registry.Images(input=unit(self.real).cpu(), translated=unit(self.translated).cpu(),
                               reconstructed=reconstructed, truth=self.truth)

    def pictures(self) -> dict[str, torch.Tensor]:
        """What is written, by kind of image, in [-1, 1]."""
        shown = {"real": self.real, "translated": self.translated}
        if self.reconstructed is not None:
            shown["reconstructed"] = self.reconstructed
        return shown | ({} if self.truth is None else {"truth": self.truth * 2 - 1})


@dataclass
class _Translated:
    """What translating one direction's images gathered: the count, the report rows, each image's
    metrics, and how many images found no true translation although some were given."""

    n: int = 0
    rows: list[dict[str, str]] = field(default_factory=list)
    per_image: list[dict[str, float]] = field(default_factory=list)
    unmatched: int = 0


def _translate(task: _Task, x: torch.Tensor, truth: Path | Image.Image | None) -> _Translation:
    """G(x) and F(G(x)) as their PNGs hold them: F translates the 8-bit G(x), as a user would."""
    fake = to_8bit(translate_tensor(task.forward, x))
    rec = None if task.backward is None else to_8bit(translate_tensor(task.backward, fake))
    true = None if truth is None else read_truth(truth, x.shape[1], tuple(fake.shape[-2:]))
    return _Translation(x, fake, rec, true)


def _write_images(output: Path, direction: str, name: str, pictures: dict[str, torch.Tensor]) -> dict[str, str]:
    """``output/images/<direction>/<kind>/<name>.png`` for each picture; the report row linking them."""
    row = {"name": name}
    for kind, img in pictures.items():
        path = output / "images" / direction / kind / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tensor_to_image(img[0]).save(path)
        row[kind] = str(path.relative_to(output))
    return row


def _translate_direction(task: _Task, fakes: FeatureStream | None, notes: list[str], progress: bool) -> _Translated:
    """Translate, write and measure one direction's images; an unreadable one is noted and skipped."""
    done, chosen = _Translated(), registry.registered()
    names = output_names(task.source, task.count)
    bar = tqdm(range(task.count), desc=f"evaluate {task.direction}", disable=not progress, unit="img")
    for i in bar:
        try:
            x = prepare(task.source.load(i), task.size, task.source.describe(i)).to(task.device)
        except DataError as e:
            _note_once(notes, f"skipped {e}")
            continue
        name = names[i]
        try:
            truth = task.truth_image(name, i, x.shape[1])
        except DataError as e:  # the pair's other image, unreadable since the scan
            _note_once(notes, f"no true translation: {e}")
            truth = None
        if truth is None and (task.truth or task.partner is not None):
            done.unmatched += 1
        made = _translate(task, x, truth)
        images = made.images()
        done.n += 1
        if fakes is not None:
            fakes.add(images.translated)
        done.rows.append({"name": name} if task.output is None else
                         _write_images(task.output, task.direction, name, made.pictures()))
        done.per_image.append(registry.measure_image(chosen, images))
    return done


def _image_metrics(done: _Translated, direction: str, truth_given: bool, notes: list[str]) -> dict[str, float | None]:
    """Every registered output (None until computed), the per-image ones averaged over the images."""
    values = dict.fromkeys(registry.outputs(registry.registered())) | registry.means(done.per_image)
    on_truth = registry.registered(["truth"])
    if on_truth and truth_given and all(values[m.name] is None for m in on_truth):
        notes.append(f"{direction}: {registry.group_name(on_truth)} not computed: "
                     "no ground truth matched by file name")
    if done.unmatched:
        notes.append(f"{direction}: {done.unmatched} images had no ground truth of the same name")
    return values


def _set_metrics(direction: str, real: torch.Tensor, fakes: FeatureStream, n: int, notes: list[str]
                 ) -> dict[str, float]:
    """FID/KID (the metrics on "features") of the translated set against the real one."""
    fake = fakes.result() if n else torch.empty(0, 0)
    measured, failed = registry.measure_sets(registry.registered(["features"]), real, fake)
    if failed:
        notes.append(f"{direction}: {registry.failure_note(failed)}")
    return measured


@torch.inference_mode()
def evaluate_translators(
    g_a: nn.Module | None, g_b: nn.Module | None, test_a: Source, test_b: Source, *,
    output: Path | None = None, size: int | None = None, extractor: nn.Module | None = None,
    extractor_note: str | None = None, truth_dir: Path | None = None, limit: int | None = None,
    device: torch.device | str = "cpu", batch_size: int = 16, progress: bool = True,
    real_features: dict[str, torch.Tensor] | None = None, paired: bool = False,
) -> Evaluation:
    """Translate and measure every held-out image (or the first ``limit``), both directions, or
    A→B alone when ``g_b`` is None (a one-way method such as CUT), B→A alone when ``g_a`` is.

    Every registered metric is measured. ``extractor`` maps uint8 N×3×H×W images to the features
    that FID/KID (the metrics that need "features") compare; None skips those (with
    ``extractor_note`` as the reason). With ``output``, images are written under
    ``output/images/<direction>/{translated,reconstructed}/``. ``real_features``, a dict kept
    between calls on the same test sets, saves extracting the real images' features again.
    ``paired``: item i of ``test_a`` and of ``test_b`` are a pair (paired data), so each is the
    other's true translation, for PSNR and SSIM with no truth folder (a file of ``truth_dir``
    matched by name comes first).
    """
    result = Evaluation(notes=[EIGHT_BIT_NOTE, *_unmeasured(g_a, g_b, extractor, extractor_note)])
    sources = {"A": test_a, "B": test_b}
    real = _RealSide(sources, size, extractor if registry.registered(["features"]) else None, batch_size, device,
                     {} if real_features is None else real_features)
    for direction, src, dst in DIRECTIONS:
        forward, backward = (g_a, g_b) if direction == "AtoB" else (g_b, g_a)
        if forward is None:
            result.untrained.append(direction)
            continue
        source = sources[src]
        count = len(source) if limit is None else min(limit, len(source))
        task = _Task(direction, forward, backward, source, count, find_truth(truth_dir, direction), output, size,
                     device, partner=sources[dst] if paired else None)
        fakes = real.stream()
        done = _translate_direction(task, fakes, result.notes, progress)
        result.rows[direction] = done.rows
        values = _image_metrics(done, direction, truth_dir is not None or paired, result.notes)
        values |= real.compare(direction, dst, fakes, done.n, result.notes)
        result.directions[direction] = DirectionMetrics(n=done.n, values=values)
        if count < len(source):
            result.notes.append(f"{direction}: the first {count} of {len(source)} held-out images were used")
    return result


def _unmeasured(g_a: nn.Module | None, g_b: nn.Module | None, extractor: nn.Module | None,
                extractor_note: str | None) -> list[str]:
    """The notes of what cannot be measured at all, said once before anything is translated: the
    metrics on features without a feature network, and a one-way run's missing direction and
    reconstructions."""
    notes = []
    on_features = registry.registered(["features"])
    if extractor is None and on_features:
        notes.append(f"{registry.group_name(on_features)} not computed: {extractor_note or 'no feature extractor'}")
    for trained, missing, generator in (("AtoB", "BtoA", g_b), ("BtoA", "AtoB", g_a)):
        if generator is not None:
            continue
        back = missing.replace("to", "→")
        notes.append(f"{missing}: not trained: the run has no {back} generator (a one-way method such as "
                     f"CUT or pix2pix), so no {back} metrics")
        on_reconstruction = registry.registered(["reconstruction"])
        if on_reconstruction:
            notes.append(f"{trained}: {registry.group_name(on_reconstruction)} not computed: "
                         f"it needs the {back} generator, which the run does not train")
    return notes


@dataclass
class _RealSide:
    """What FID/KID compare a direction's translations with: the real held-out images of its target
    domain, whose features are extracted once per domain (``cache``, which a caller may keep
    between evaluations of the same test sets). No ``extractor``: no FID/KID."""

    sources: dict[str, Source]
    size: int | None
    extractor: nn.Module | None
    batch_size: int
    device: torch.device | str
    cache: dict[str, torch.Tensor]

    def stream(self) -> FeatureStream | None:
        """Where a direction's translations go to have their features extracted, as they are made."""
        return FeatureStream(self.extractor, self.batch_size, self.device) if self.extractor is not None else None

    def compare(self, direction: str, domain: str, fakes: FeatureStream | None, n: int, notes: list[str]
                ) -> dict[str, float]:
        """FID/KID of the ``n`` translations streamed to ``fakes`` against ``domain``'s real images."""
        if fakes is None:
            return {}
        if domain not in self.cache:
            self.cache[domain] = held_out_features(self.sources[domain], self.size, self.extractor, self.batch_size,
                                                   self.device, notes)
        return _set_metrics(direction, self.cache[domain], fakes, n, notes)


# --------------------------------------------------------------------------------------------
# During training


def flat_metrics(result: Evaluation) -> dict[str, float]:
    """``{"AtoB/fid": …, "BtoA/psnr": …}``: the metrics that were computed, for logs and dashboards."""
    return {f"{direction}/{name}": value for direction, m in result.directions.items()
            for name, value in m.to_json().items() if value is not None}


def score(result: Evaluation, metric: str) -> float | None:
    """The value of ``metric`` ("psnr": mean over the directions that have it; "AtoB/psnr": one
    direction's), or None where it was not computed."""
    direction, name = split_metric(metric)
    values = [m.values.get(name) for d, m in result.directions.items() if direction in (None, d)]
    values = [v for v in values if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def is_better(value: float | None, best: float | None, metric: str) -> bool:
    """Whether ``value`` of ``metric`` ("psnr", "AtoB/fid") beats ``best``, the way its registration says."""
    if value is None:
        return False
    if best is None:
        return True
    better = registry.get(split_metric(metric)[1])
    if better is None:
        raise KeyError(f"no metric {metric!r} is registered")
    return value < best if better.better == "min" else value > best


def held_out_setting(cfg: Config, needs: str | None) -> dict[str, Any]:
    """What, besides the generators, decides the value of ``eval.metric`` during training, by
    config key: the held-out images (where they come from, how many, at what size) and what the
    metric ``needs`` of its own (the FID protocol and network; the true translations).

    Two evaluations are comparable only when these agree, so the best record keeps them: a best
    of another setting (a legacy FID beside clean ones, 50 images beside 10) is no measure for a
    resumed run. Paths are resolved so that a resume from another working directory still agrees;
    anything else (a hub id) is kept as written."""
    e, d = cfg.eval, cfg.data
    setting: dict[str, Any] = {"data.format": d.format, "data.root": _resolved(d.root),
                               "data.test_split": d.test_split, "data.crop_size": d.crop_size,
                               "eval.num_images": e.num_images}
    if d.format == "hf":
        setting |= {"data.column_a": d.column_a, "data.column_b": d.column_b, "data.label_column": d.label_column,
                    "data.label_a": d.label_a, "data.label_b": d.label_b}
    if needs == "features":
        setting |= {"eval.fid_protocol": e.fid_protocol, "eval.inception_weights": _resolved(e.inception_weights)}
    if needs == "truth":
        setting["eval.paired_truth"] = _resolved(e.paired_truth)
        if is_paired(d):  # the truth is the test split's own pairs (a key older records lack: they had none)
            setting["data.paired"] = True
    return setting


def _resolved(path: str | None) -> str | None:
    """An existing path as an absolute one; anything else (None, a hub id) as given."""
    if not path or not Path(path).expanduser().exists():
        return path
    return str(Path(path).expanduser().resolve())


class HeldOutEvaluator:
    """Evaluation during training: the same held-out images each time (the first
    ``eval.num_images`` of each domain) and the same metrics as ``cyclestyle evaluate``.

    Built once per run, so the test sets are opened, the FID network loaded and the real
    images' features extracted once; every process builds one (a missing test split stops all
    of them at the start), only the main one loads the FID network and evaluates. ``notes``
    says, once, what cannot be computed and why; ``setting`` what its values depend on besides
    the generators (``held_out_setting``), which the best record keeps.
    """

    def __init__(self, cfg: Config, device: torch.device, load_extractor: bool = True):
        e, d = cfg.eval, cfg.data
        self.metric, self.device, self.fid_protocol = e.metric, device, e.fid_protocol
        try:
            self.test_a, self.test_b = open_domains(d, d.test_split, channels=cfg.model.in_channels,
                                                    channels_b=cfg.model.out_channels)
        except DataError as error:
            raise ConfigError(f"eval.every={e.every} needs a held-out split '{d.test_split}': {error}") from None
        self.limit = e.num_images or None
        self.size = d.crop_size
        self.truth = Path(e.paired_truth).expanduser() if e.paired_truth else None
        self.paired = is_paired(d)  # pairs: each held-out image's partner is its true translation
        self.extractor, self.extractor_note = None, None
        chosen = registry.get(split_metric(e.metric)[1])  # validated with the config
        self.setting = held_out_setting(cfg, chosen.needs if chosen else None)
        needs_features = chosen is not None and chosen.needs == "features"
        if load_extractor and (needs_features or e.inception_weights):
            try:
                self.extractor = metrics.load_inception(e.inception_weights, e.fid_protocol)
            except metrics.MissingWeightsError as error:
                self.extractor_note = str(error)
        self.notes: list[str] = []
        if self.extractor is None and needs_features:
            self.notes.append(f"eval.metric {e.metric} cannot be computed ({self.extractor_note}): "
                              "no best checkpoint is kept; the other metrics are still logged")
        self._real_features: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def __call__(self, g_a: nn.Module | None, g_b: nn.Module | None) -> Evaluation:
        """Evaluate the generators (one alone when the other is None) as ``translate`` runs them by
        default (``test_mode``: eval mode, batch norm by each image's own statistics, no
        dropout); their train mode is restored after."""
        with test_mode(*(g for g in (g_a, g_b) if g is not None)):
            result = evaluate_translators(
                g_a, g_b, self.test_a, self.test_b, size=self.size, extractor=self.extractor,
                extractor_note=self.extractor_note, truth_dir=self.truth, limit=self.limit, device=self.device,
                progress=False, real_features=self._real_features, paired=self.paired)
        result.fid_protocol = self.fid_protocol
        return result


# --------------------------------------------------------------------------------------------
# Reports


def write_report(result: Evaluation, output: Path, title: str) -> None:
    """``metrics.json`` and ``index.html`` (metrics table first, then one row per image)."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    reports.write_page(output / "index.html", title, report_blocks(result))


def report_blocks(result: Evaluation) -> list[reports.Block]:
    """The page of an evaluation: step and config, a row of metrics per direction, the notes,
    then per direction one row per image: real | translated | reconstructed (| truth)."""
    columns = [("n", "n"), *reports.metric_columns(registry.registered())]
    blocks: list[reports.Block] = [
        reports.Paragraph(f"step {reports.fmt(result.step)} · config {reports.fmt(result.config_hash)}"),
        *([reports.Paragraph(metrics.describe_fid_protocol(result.fid_protocol))] if result.fid_protocol else []),
        reports.metrics_table("direction", {d: m.to_json() for d, m in result.directions.items()}, columns),
        reports.Notes(tuple(result.notes))]
    for direction, rows in result.rows.items():
        kinds = ("real", "translated", *(("reconstructed",) if any("reconstructed" in r for r in rows) else ()),
                 *(("truth",) if any("truth" in r for r in rows) else ()))
        blocks += [reports.Heading(direction),
                   reports.ImageRows(kinds, tuple((r["name"], tuple(r.get(k) for k in kinds)) for r in rows))]
    return blocks


# --------------------------------------------------------------------------------------------
# A trained translator on a dataset's held-out images


def _note(text: str) -> None:
    print(f"cyclestyle: note: {text}", file=sys.stderr)


def evaluate(
    weights: str | Path | TrainedRun, data_root: str | Path, output: str | Path, *,
    paired_truth: str | Path | None = None, inception_weights: str | Path | None = None,
    fid_protocol: str = metrics.DEFAULT_FID_PROTOCOL, size: int | None = None, split: str | None = None,
    data_format: str | None = None, limit: int | None = None, compile: str = "auto",
    device: str | torch.device | None = None, progress: bool = True, batch_norm: str = "auto",
    dropout: bool = False, seed: int = 0,
) -> Evaluation:
    """Evaluate a trained translator on the held-out images of ``data_root`` and write
    ``output/metrics.json``, ``output/index.html`` and the images under ``output/images/``
    (what ``cyclestyle evaluate`` does); returns the ``Evaluation``.

    ``weights``: what ``open_run`` opens (a run folder, a checkpoint folder, a hub folder or
    ``hf://USER/NAME``), or a ``TrainedRun``. Both directions are evaluated, A→B alone for a
    one-way run (CUT). The data is read as the run's config says (``data.format``,
    ``data.test_split``), unless ``data_format`` or ``split`` is given; ``size``: the short side
    images are resized to first (default: the run's ``data.crop_size``). ``paired_truth``: a
    folder of true translations matched by file name (``DIR/AtoB/``, ``DIR/BtoA/``, or images
    directly in it for A→B), for PSNR and SSIM. FID and KID need the FID Inception's weights
    (``inception_weights``, default: torch's hub cache); without them they are null and the
    note says why. ``limit``: the first N images per domain; ``compile``: "auto", "on" or
    "off" (``wants_compile``). A run on paired data (``data.paired``: pix2pix) is scored against
    each image's partner, PSNR and SSIM with no truth folder. ``batch_norm``, ``dropout`` and
    ``seed``: how the generators run (``test_mode``; by default as ``translate`` runs them).
    """
    _check_arguments(limit, size, Path(output).expanduser())
    device = default_device(device)
    run = weights if isinstance(weights, TrainedRun) else open_run(weights)
    g_a, g_b = _generators(run, device)
    data_cfg, test_a, test_b = _held_out_domains(run, g_a is not None, g_b is not None, data_root, data_format, split)
    size = size if size is not None else (run.config.data.crop_size if run.config else None)
    extractor, note = _inception(inception_weights, fid_protocol)
    generators = [g for g in (g_a, g_b) if g is not None]
    varies = dropout or (batch_norm != "running" and any(has_batch_norm(g) for g in generators))
    if wants_compile(compile, min(len(test_a), limit or len(test_a))) and not varies:
        g_a, g_b = _compiled(g_a, g_b)
    output = Path(output)
    start = time.perf_counter()
    with test_mode(*generators, batch_norm=batch_norm, dropout=dropout, seed=seed):
        result = evaluate_translators(
            g_a, g_b, test_a, test_b, output=output, size=size, extractor=extractor, extractor_note=note,
            truth_dir=Path(paired_truth) if paired_truth else None, limit=limit, device=device, progress=progress,
            paired=is_paired(data_cfg))
    _refuse_nothing_evaluated(result, [min(limit or len(test_a), len(s)) for s in (test_a, test_b)], data_root)
    for skipped in (n for n in result.notes if n.startswith("skipped ")):
        _note(skipped)  # the terminal gets the line index.html gets
    _describe(result, run, fid_protocol, size)
    write_report(result, output, title=f"cyclestyle evaluation of {run.path if weights is run else weights}")
    result.seconds = time.perf_counter() - start
    return result


def _check_arguments(limit: int | None, size: int | None, output: Path) -> None:
    """What is wrong with the arguments, said before the evaluation rather than after it."""
    for name, value in {"limit": limit, "size": size}.items():
        if value is not None and value < 1:  # nothing, or no pixel, to evaluate
            raise ValueError(f"{name} must be at least 1; got {value}")
    check_output(output, folder=True, error=DataError)


def _generators(run: TrainedRun, device: torch.device) -> tuple[nn.Module | None, nn.Module | None]:
    """The A→B and B→A generators of ``run``, None for a direction it does not train.

    A run of a one-way method (CUT, pix2pix) has one generator: it is evaluated that way only. A
    two-way run missing one of its generators is a CheckpointError naming the file (TrainedRun.translator)."""
    g_a, g_b = (run.generator(d, device) if d in run.files or d in run.missing else None for d in ("AtoB", "BtoA"))
    return g_a, g_b


def _held_out_domains(run: TrainedRun, has_a: bool, has_b: bool, data_root: str | Path, data_format: str | None,
                      split: str | None) -> tuple[DataConfig, Source, Source]:
    """The data config the held-out images are read with (the run's, at ``data_root``, with
    ``data_format`` and ``split`` where given), and its test split's two domains, each read with the
    channels of the generator that takes it (``has_a``, ``has_b``: which generators there are)."""
    cfg = run.config
    data_cfg = dataclasses.replace(cfg.data if cfg else DataConfig(), root=str(data_root),
                                   format=data_format or (cfg.data.format if cfg else "folder"))
    if split:
        data_cfg = dataclasses.replace(data_cfg, test_split=split)
    # A is read as the A→B generator takes it, B as the B→A one does (grayscale ↔ colour runs)
    channels_a = run.in_channels("AtoB") if has_a else run.out_channels("BtoA")
    channels_b = run.in_channels("BtoA") if has_b else generator_spec_of(run.file("AtoB")).out_channels
    test_a, test_b = open_domains(data_cfg, data_cfg.test_split, channels=channels_a, channels_b=channels_b)
    return data_cfg, test_a, test_b


def _compiled(g_a: nn.Module | None, g_b: nn.Module | None) -> tuple[nn.Module | None, nn.Module | None]:
    """The generators through ``torch.compile`` (``--compile``), which pays off over many images."""
    g_a, g_b = (CompiledGenerator(g, _note) if g is not None else None for g in (g_a, g_b))
    _note("compiling the generators (--compile): the first image of each direction takes longer")
    return g_a, g_b


def _inception(weights: str | Path | None, fid_protocol: str) -> tuple[nn.Module | None, str | None]:
    """FID's Inception network, or None and why not: without it the other metrics are still computed."""
    try:
        return metrics.load_inception(weights, fid_protocol), None
    except metrics.MissingWeightsError as e:
        print(f"cyclestyle: note: {e}; computing the other metrics")
        return None, str(e)


def _refuse_nothing_evaluated(result: Evaluation, counts: list[int], data_root: str | Path) -> None:
    """A direction whose every image was skipped is a ``DataError``: a report of nothing is no
    evaluation. ``counts``: the images each domain (A, B) offered."""
    for direction, measured in result.directions.items():
        if measured.n == 0:
            skipped = next((n.removeprefix("skipped ") for n in result.notes if n.startswith("skipped ")), None)
            why = f": skipped {skipped}" if skipped else ""
            raise DataError(f"{direction}: no held-out image was evaluated, of the "
                            f"{counts[0 if direction == 'AtoB' else 1]} in {data_root}{why}")


def _describe(result: Evaluation, run: TrainedRun, fid_protocol: str, size: int | None) -> None:
    """What the report says besides the metrics: the run's step and config, the FID protocol, the resizing."""
    result.step = run.step
    result.config_hash = config_hash(run.config) if run.config else None
    result.fid_protocol = fid_protocol
    if size is not None:
        result.notes.append(f"images resized so the short side is {size} px before translation")
