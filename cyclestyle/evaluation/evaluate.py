"""Judging trained translators on held-out images: every test image, both directions.

For each direction (A→B with G_A, B→A with G_B) and every held-out image x, the translation
G(x) and the reconstruction F(G(x)) are written to disk and measured with every registered
metric (``registry.py``):

- ``fid`` and ``kid``: translated images against the real held-out images of the target domain;
- ``cycle_l1``: mean |F(G(x)) − x| on the [0, 1] pixel scale;
- ``psnr`` and ``ssim``: G(x) against the true translation of x, when one is given
  (``--paired-truth``, matched by file name).

Results go to ``metrics.json`` (``null`` where a metric could not be computed, with the reason
in ``notes``) and an HTML page of real | translated | reconstructed (| truth) rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
from ..data import DataError, Source, image_to_tensor, list_images, load_image, open_domains, tensor_to_image
from ..devices import default_device
from ..inference.run import open_run
from ..inference.translate import eval_mode, translate_tensor
from . import metrics, registry, reports

DIRECTIONS = (("AtoB", "A", "B"), ("BtoA", "B", "A"))


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

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: m.to_json() for name, m in self.directions.items()}
        out |= {"step": self.step, "config_hash": self.config_hash, "fid_protocol": self.fid_protocol,
                "notes": self.notes}
        return out


# --------------------------------------------------------------------------------------------
# Images in, tensors out


def prepare(img: Image.Image, size: int | None) -> torch.Tensor:
    """A 1×C×H×W tensor in [-1, 1], the short side resized to ``size`` (bicubic) when given."""
    if size is not None and min(img.size) != size:
        scale = size / min(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BICUBIC)
    return image_to_tensor(img).unsqueeze(0)


def unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1]."""
    return (x.clamp(-1, 1) + 1) / 2


def output_name(source: Source, i: int) -> str:
    """A file-system-safe output name for item i (the file's stem, or the HF row)."""
    text = source.describe(i)
    stem = Path(text).stem if "row " not in text else "row-" + text.rsplit("row ", 1)[1]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)


def readable_images(source: Source, size: int | None, notes: list[str]) -> Iterator[tuple[int, torch.Tensor]]:
    """Every readable image of a held-out domain; an unreadable one is noted and skipped."""
    for i in range(len(source)):
        try:
            yield i, prepare(source.load(i), size)
        except DataError as e:
            notes.append(f"skipped {e}")


class FeatureStream:
    """Features of [0, 1] images fed one at a time, extracted in batches of equal-size images,
    so a large test set is never held in memory as pixels."""

    def __init__(self, extractor: nn.Module, batch_size: int, device: torch.device | str):
        self.extractor, self.batch_size, self.device = extractor, batch_size, device
        self.pending: list[torch.Tensor] = []
        self.features: list[torch.Tensor] = []

    def add(self, image: torch.Tensor) -> None:
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


# --------------------------------------------------------------------------------------------
# The evaluation


@torch.inference_mode()
def evaluate_translators(
    g_a: nn.Module, g_b: nn.Module, test_a: Source, test_b: Source, *,
    output: Path | None = None, size: int | None = None, extractor: nn.Module | None = None,
    extractor_note: str | None = None, truth_dir: Path | None = None, limit: int | None = None,
    device: torch.device | str = "cpu", batch_size: int = 16, progress: bool = True,
    real_features: dict[str, torch.Tensor] | None = None,
) -> Evaluation:
    """Translate and measure every held-out image (or the first ``limit``), both directions.

    Every registered metric is measured. ``extractor`` maps uint8 N×3×H×W images to the features
    that FID/KID (the metrics that need "features") compare; None skips those (with
    ``extractor_note`` as the reason). With ``output``, images are written under
    ``output/images/<direction>/{translated,reconstructed}/``. ``real_features``, a dict kept
    between calls on the same test sets, saves extracting the real images' features again.
    """
    result = Evaluation()
    chosen = registry.registered()
    on_features, on_truth = registry.registered(["features"]), registry.registered(["truth"])
    if extractor is None and on_features:
        result.notes.append(f"{registry.group_name(on_features)} not computed: "
                            f"{extractor_note or 'no feature extractor'}")
    sources = {"A": test_a, "B": test_b}
    real_features = {} if real_features is None else real_features
    for direction, src, dst in DIRECTIONS:
        forward, backward = (g_a, g_b) if direction == "AtoB" else (g_b, g_a)
        source = sources[src]
        count = len(source) if limit is None else min(limit, len(source))
        truth = find_truth(truth_dir, direction)
        n = 0
        fakes = FeatureStream(extractor, batch_size, device) if extractor is not None and on_features else None
        per_image: list[dict[str, float]] = []
        unmatched = 0
        rows = []
        bar = tqdm(range(count), desc=f"evaluate {direction}", disable=not progress, unit="img")
        for i in bar:
            try:
                x = prepare(source.load(i), size).to(device)
            except DataError as e:
                result.notes.append(f"skipped {e}")
                continue
            fake = translate_tensor(forward, x)
            rec = translate_tensor(backward, fake)
            n += 1
            fake01 = unit(fake).cpu()
            if fakes is not None:
                fakes.add(fake01)
            name = output_name(source, i)
            row = {"name": name}
            if output is not None:
                base = output / "images" / direction
                for kind, img in (("real", x), ("translated", fake), ("reconstructed", rec)):
                    path = base / kind / f"{name}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tensor_to_image(img[0]).save(path)
                    row[kind] = str(path.relative_to(output))
            true = None
            if name in truth or Path(source.describe(i)).stem in truth:
                true = unit(prepare(load_image(truth.get(name) or truth[Path(source.describe(i)).stem],
                                               channels=x.shape[1]), None))
                if true.shape[-2:] != fake01.shape[-2:]:
                    true = F.interpolate(true, size=fake01.shape[-2:], mode="bicubic", antialias=True).clamp(0, 1)
                if output is not None:
                    path = output / "images" / direction / "truth" / f"{name}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tensor_to_image(true[0] * 2 - 1).save(path)
                    row["truth"] = str(path.relative_to(output))
            elif truth:
                unmatched += 1
            rows.append(row)
            images = registry.Images(input=unit(x).cpu(), translated=fake01, reconstructed=unit(rec).cpu(), truth=true)
            per_image.append(registry.measure_image(chosen, images))
        result.rows[direction] = rows
        values = dict.fromkeys(registry.outputs(chosen)) | registry.means(per_image)
        if on_truth and truth_dir is not None and all(values[m.name] is None for m in on_truth):
            result.notes.append(f"{direction}: {registry.group_name(on_truth)} not computed: "
                                "no ground truth matched by file name")
        if unmatched:
            result.notes.append(f"{direction}: {unmatched} images had no ground truth of the same name")
        if fakes is not None:
            if dst not in real_features:
                reals = FeatureStream(extractor, batch_size, device)
                for _, x in readable_images(sources[dst], size, result.notes):
                    reals.add(unit(x))
                real_features[dst] = reals.result()
            fake_features = fakes.result() if n else torch.empty(0, 0)
            measured, failed = registry.measure_sets(on_features, real_features[dst], fake_features)
            values |= measured
            if failed:
                result.notes.append(f"{direction}: {registry.failure_note(failed)}")
        result.directions[direction] = DirectionMetrics(n=n, values=values)
        if count < len(source):
            result.notes.append(f"{direction}: the first {count} of {len(source)} held-out images were used")
    return result


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


class HeldOutEvaluator:
    """Evaluation during training: the same held-out images each time (the first
    ``eval.num_images`` of each domain) and the same metrics as ``cyclestyle evaluate``.

    Built once per run, so the test sets are opened, the FID network loaded and the real
    images' features extracted once; every process builds one (a missing test split stops all
    of them at the start), only the main one loads the FID network and evaluates. ``notes``
    says, once, what cannot be computed and why.
    """

    def __init__(self, cfg: Config, device: torch.device, load_extractor: bool = True):
        e, d = cfg.eval, cfg.data
        self.metric, self.device, self.fid_protocol = e.metric, device, e.fid_protocol
        try:
            self.test_a, self.test_b = open_domains(d, d.test_split, channels=cfg.model.in_channels)
        except DataError as error:
            raise ConfigError(f"eval.every={e.every} needs a held-out split '{d.test_split}': {error}") from None
        self.limit = e.num_images or None
        self.size = d.crop_size
        self.truth = Path(e.paired_truth).expanduser() if e.paired_truth else None
        self.extractor, self.extractor_note = None, None
        chosen = registry.get(split_metric(e.metric)[1])  # validated with the config
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
    def __call__(self, g_a: nn.Module, g_b: nn.Module) -> Evaluation:
        """Evaluate the generators in eval mode; their train mode is restored after."""
        with eval_mode(g_a, g_b):
            result = evaluate_translators(
                g_a, g_b, self.test_a, self.test_b, size=self.size, extractor=self.extractor,
                extractor_note=self.extractor_note, truth_dir=self.truth, limit=self.limit, device=self.device,
                progress=False, real_features=self._real_features)
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
        kinds = ("real", "translated", "reconstructed", *(("truth",) if any("truth" in r for r in rows) else ()))
        blocks += [reports.Heading(direction),
                   reports.ImageRows(kinds, tuple((r["name"], tuple(r.get(k) for k in kinds)) for r in rows))]
    return blocks


# --------------------------------------------------------------------------------------------
# The command


def run_cli(args: Any) -> int:
    device = default_device(args.device)
    run = open_run(args.weights)
    g_a, g_b = run.generator("AtoB", device), run.generator("BtoA", device)
    cfg = run.config
    data_cfg = dataclasses.replace(cfg.data if cfg else DataConfig(), root=str(args.data_root),
                                   format=args.data_format or (cfg.data.format if cfg else "folder"))
    if args.split:
        data_cfg = dataclasses.replace(data_cfg, test_split=args.split)
    channels = cfg.model.in_channels if cfg else 3
    test_a, test_b = open_domains(data_cfg, data_cfg.test_split, channels=channels)
    size = args.size or (cfg.data.crop_size if cfg else None)

    extractor, note = None, None
    try:
        extractor = metrics.load_inception(args.inception_weights, args.fid_protocol)
    except metrics.MissingWeightsError as e:
        note = str(e)
        print(f"cyclestyle: note: {e}; computing the other metrics")

    output = Path(args.output)
    start = time.perf_counter()
    result = evaluate_translators(
        g_a, g_b, test_a, test_b, output=output, size=size, extractor=extractor, extractor_note=note,
        truth_dir=Path(args.paired_truth) if args.paired_truth else None, limit=args.limit, device=device)
    result.step = run.step
    result.config_hash = config_hash(cfg) if cfg else None
    result.fid_protocol = args.fid_protocol
    if size is not None:
        result.notes.append(f"images resized so the short side is {size} px before translation")
    write_report(result, output, title=f"cyclestyle evaluation of {args.weights}")
    for direction, m in result.directions.items():
        values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in m.to_json().items() if v is not None)
        print(f"{direction}: {values}")
    print(f"wrote {output / 'metrics.json'} and {output / 'index.html'} in {time.perf_counter() - start:.1f} s")
    return 0
